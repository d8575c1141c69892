import Foundation

/// A webhook whose signature checked out.
public struct WebhookEvent: Sendable, Hashable {
    /// The merchant's order id.
    public var orderID: OrderID
    /// The amount Kaspi reports. Never trust it alone: compare it with the stored order
    /// (``WebhookVerifier/verify(body:order:)`` does).
    public var amount: Amount
    /// `APPROVED`, `DECLINED` or `CANCELLED`.
    public var status: PaymentStatus
    /// Kaspi's transaction id; store it, refunds need it. May be absent for a decline.
    public var transactionID: String?

    /// Creates an event.
    public init(orderID: OrderID, amount: Amount, status: PaymentStatus, transactionID: String? = nil) {
        self.orderID = orderID
        self.amount = amount
        self.status = status
        self.transactionID = transactionID
    }
}

/// What a merchant stored about an order, to check a webhook against.
public struct ExpectedOrder: Sendable, Hashable {
    /// The amount the order was created with.
    public var amount: Amount
    /// Creates the merchant's record of an order: its amount.
    public init(amount: Amount) { self.amount = amount }
}

/// Why a webhook was rejected. Answer the sender with HTTP 400 and change nothing.
public enum WebhookVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The body is larger than the verifier's limit.
    case bodyTooLarge(limit: Int)
    /// The body is not a JSON object.
    case notJSON
    /// A required field is missing (or null).
    case missingField(String)
    /// A field has the wrong JSON type or an invalid value.
    case mistypedField(String, expected: String)
    /// A status other than `APPROVED`, `DECLINED` or `CANCELLED`.
    case unknownStatus(String)
    /// The signature does not match.
    case badSignature
    /// The merchant has no such order.
    case orderNotFound(OrderID)
    /// The webhook's amount differs from the stored order's.
    case amountMismatch(orderID: OrderID, expected: Amount, received: Amount)

    /// A stable machine-readable code.
    public var code: String {
        switch self {
        case .bodyTooLarge: "WEBHOOK_BODY_TOO_LARGE"
        case .notJSON: "WEBHOOK_NOT_JSON"
        case .missingField: "WEBHOOK_MISSING_FIELD"
        case .mistypedField: "WEBHOOK_MISTYPED_FIELD"
        case .unknownStatus: "WEBHOOK_UNKNOWN_STATUS"
        case .badSignature: "WEBHOOK_BAD_SIGNATURE"
        case .orderNotFound: "WEBHOOK_ORDER_NOT_FOUND"
        case .amountMismatch: "WEBHOOK_AMOUNT_MISMATCH"
        }
    }

    public var description: String {
        switch self {
        case .bodyTooLarge(let limit):
            "\(code): the body is larger than \(limit) bytes; a Kaspi webhook is far smaller, so this is not one."
        case .notJSON:
            "\(code): the body is not a JSON object; check that the raw body is passed, not a parsed one."
        case .missingField(let name):
            "\(code): the field \(name) is missing; the sender is not following the webhook contract."
        case .mistypedField(let name, let expected):
            "\(code): the field \(name) is not \(expected); the sender is not following the webhook contract."
        case .unknownStatus(let status):
            "\(code): the status \(Redaction.quoted(status, limit: 32)) is not APPROVED, DECLINED or CANCELLED; update KaspiKit if Kaspi added one."
        case .badSignature:
            "\(code): the signature does not match; the webhook is forged or signed with another trade point's key. Check KASPI_API_KEY."
        case .orderNotFound(let id):
            "\(code): there is no stored order \(id); the webhook is for another shop or forged."
        case .amountMismatch(let id, let expected, let received):
            "\(code): order \(id) is for \(expected) tenge but the webhook says \(received); do not fulfil it, review it."
        }
    }
}

/// Verifies the webhooks Kaspi posts to the merchant, from the raw body bytes.
///
/// No web framework is needed: pass the body as received. The signature is
/// `sha256("\(orderId)\(amount)\(apiKey)")` in lowercase hex, compared in constant time.
public struct WebhookVerifier: Sendable {
    private let apiKey: APIKey
    /// The largest body accepted, in bytes.
    public let maxBodySize: Int

    /// Creates a verifier for one trade point's key.
    ///
    /// - Parameters:
    ///   - apiKey: the trade point's API key.
    ///   - maxBodySize: larger bodies are rejected before parsing; 16 KiB by default.
    public init(apiKey: APIKey, maxBodySize: Int = 16 * 1024) {
        self.apiKey = apiKey
        self.maxBodySize = maxBodySize
    }

    /// Parses a webhook and checks its signature.
    ///
    /// - Parameter body: the raw request body.
    /// - Returns: the verified event.
    /// - Throws: ``WebhookVerificationError``.
    public func verify(body: some Collection<UInt8>) throws(WebhookVerificationError) -> WebhookEvent {
        guard body.count <= maxBodySize else { throw .bodyTooLarge(limit: maxBodySize) }
        guard case .object(let object)? = JSONParser.parse(body) else { throw .notJSON }
        guard let orderField = object["orderId"], orderField != .null else { throw .missingField("orderId") }
        guard case .string(let orderText) = orderField else { throw .mistypedField("orderId", expected: "a string") }
        guard let amountField = object["amount"], amountField != .null else { throw .missingField("amount") }
        guard case .integer(let amountValue) = amountField else {
            throw .mistypedField("amount", expected: "an integer number of tenge")
        }
        guard let statusField = object["status"], statusField != .null else { throw .missingField("status") }
        guard case .string(let statusText) = statusField else { throw .mistypedField("status", expected: "a string") }
        guard let signatureField = object["signature"], signatureField != .null else { throw .missingField("signature") }
        guard case .string(let signature) = signatureField else {
            throw .mistypedField("signature", expected: "a string")
        }
        var transactionID: String? = nil
        switch object["transactionId"] {
        case nil, .null?: break
        case .string(let text)?: transactionID = text
        case .integer(let number)?: transactionID = String(number)
        default: throw .mistypedField("transactionId", expected: "a string")
        }
        // The signature covers the fields as sent, so check it before interpreting them.
        guard Signature.isValid(signature, kind: .webhook, amount: Int(amountValue), orderID: orderText, apiKey: apiKey)
        else { throw .badSignature }
        guard let orderID = try? OrderID(orderText) else {
            throw .mistypedField("orderId", expected: "1 to 64 characters of A-Z a-z 0-9 _ . : -")
        }
        guard let amount = try? Amount(tenge: Int(amountValue)) else {
            throw .mistypedField("amount", expected: "a non-negative integer")
        }
        let status = PaymentStatus(rawValue: statusText)
        guard status.isFinal else { throw .unknownStatus(statusText) }
        return WebhookEvent(orderID: orderID, amount: amount, status: status, transactionID: transactionID)
    }

    /// Verifies a webhook and checks it against the merchant's stored order: that the order
    /// exists and that its amount matches. The contract's concatenated signature is
    /// ambiguous, so this check is what makes a webhook trustworthy.
    ///
    /// - Parameters:
    ///   - body: the raw request body.
    ///   - order: looks up the stored order by id; nil when there is none.
    /// - Throws: ``WebhookVerificationError``; errors thrown by `order` are passed through.
    public func verify(
        body: some Collection<UInt8>,
        order: (OrderID) async throws -> ExpectedOrder?
    ) async throws -> WebhookEvent {
        let event = try verify(body: body)
        guard let stored = try await order(event.orderID) else {
            throw WebhookVerificationError.orderNotFound(event.orderID)
        }
        guard stored.amount == event.amount else {
            throw WebhookVerificationError.amountMismatch(orderID: event.orderID, expected: stored.amount, received: event.amount)
        }
        return event
    }
}
