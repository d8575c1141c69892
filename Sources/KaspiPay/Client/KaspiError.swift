/// What the server said alongside an error code: its HTTP status and its message, with the
/// API key scrubbed out (a server that echoes a request back cannot leak it through us).
public struct ServerReply: Sendable, Hashable {
    /// The HTTP status of the response.
    public var httpStatus: Int
    /// The server's human-readable message, possibly empty.
    public var message: String

    /// Creates a reply from its HTTP status and the server's message.
    public init(httpStatus: Int, message: String) {
        self.httpStatus = httpStatus
        self.message = message
    }
}

/// Every error the Kaspi Pay client throws.
///
/// Each case has a stable machine ``code`` (the contract's own code for errors the server
/// reports) and a ``description`` that says what to do next. None of them ever contains the
/// API key.
public enum KaspiError: Error, Sendable, Hashable, CustomStringConvertible {
    // MARK: Errors the server reports (openapi/kaspi-pay.yaml, `ErrorCode`)

    /// `INVALID_SIGNATURE`: the signature does not match.
    case invalidSignature(ServerReply)
    /// `ORDER_ALREADY_EXISTS`: the orderId is already used for this trade point.
    case orderAlreadyExists(ServerReply)
    /// `TRADE_POINT_NOT_FOUND`: unknown trade point id.
    case tradePointNotFound(ServerReply)
    /// `AMOUNT_TOO_SMALL`: below the 100 tenge minimum.
    case amountTooSmall(ServerReply)
    /// `INVALID_RETURN_URL`: returnUrl or failUrl not registered for the trade point.
    case invalidReturnURL(ServerReply)
    /// `UNAUTHORIZED`: missing or wrong bearer key.
    case unauthorized(ServerReply)
    /// `ORDER_NOT_FOUND`: unknown orderId or qrToken.
    case orderNotFound(ServerReply)
    /// `INVALID_REQUEST`: the server found the request malformed.
    case invalidRequest(ServerReply)
    /// `REFUND_NOT_ALLOWED`: the order is not approved, or the refund exceeds what remains.
    case refundNotAllowed(ServerReply)
    /// `RATE_LIMITED`: over the per-trade-point limit, still so after the client's retries.
    case rateLimited(ServerReply, retryAfter: Duration?)
    /// An error body with a code this version does not know.
    case otherAPIError(code: String, ServerReply)

    // MARK: Transport and protocol failures

    /// The request could not be sent or its response not received.
    case transport(String)
    /// No response within the configured timeout.
    case timeout
    /// An HTTP status the contract does not explain, with the start of the body.
    case unexpectedStatus(Int, bodySnippet: String)
    /// A response that could not be decoded, with the reason and the start of the body.
    case undecodableBody(status: Int, reason: String, bodySnippet: String)

    // MARK: Outcomes left unknown after an ambiguous failure

    /// A create whose response was lost: the order exists, but the server does not report
    /// what the lost response held (its payment URL or QR code).
    case createOutcomeUnknown(OrderID)
    /// A refund whose response was lost and whose effect cannot be confirmed. It was not
    /// re-sent, so that the payer is never refunded twice.
    case refundOutcomeUnknown(OrderID, Amount)

    // MARK: Input rejected before any request is sent

    /// A negative amount.
    case negativeAmount(Int)
    /// An order or QR amount below ``Amount/minimumPayment``.
    case amountBelowMinimum(Amount)
    /// A refund of zero tenge.
    case zeroRefund
    /// An order id outside the contract's charset or length.
    case invalidOrderID(String, reason: String)
    /// A return or fail URL that is not an absolute http(s) URL.
    case invalidURL(field: String, value: String, reason: String)
    /// A description longer than 256 characters.
    case descriptionTooLong(Int)
    /// A QR token that cannot be put in a URL path.
    case invalidQRToken(String, reason: String)
    /// A transaction id that is empty, too long, or holds control characters.
    case invalidTransactionID(reason: String)

    /// A stable machine-readable code: the contract's code for server errors, our own
    /// upper-case code for everything else.
    public var code: String {
        switch self {
        case .invalidSignature: "INVALID_SIGNATURE"
        case .orderAlreadyExists: "ORDER_ALREADY_EXISTS"
        case .tradePointNotFound: "TRADE_POINT_NOT_FOUND"
        case .amountTooSmall: "AMOUNT_TOO_SMALL"
        case .invalidReturnURL: "INVALID_RETURN_URL"
        case .unauthorized: "UNAUTHORIZED"
        case .orderNotFound: "ORDER_NOT_FOUND"
        case .invalidRequest: "INVALID_REQUEST"
        case .refundNotAllowed: "REFUND_NOT_ALLOWED"
        case .rateLimited: "RATE_LIMITED"
        case .otherAPIError(let code, _): code
        case .transport: "TRANSPORT_FAILURE"
        case .timeout: "TIMEOUT"
        case .unexpectedStatus: "UNEXPECTED_STATUS"
        case .undecodableBody: "UNDECODABLE_BODY"
        case .createOutcomeUnknown: "CREATE_OUTCOME_UNKNOWN"
        case .refundOutcomeUnknown: "REFUND_OUTCOME_UNKNOWN"
        case .negativeAmount: "NEGATIVE_AMOUNT"
        case .amountBelowMinimum: "AMOUNT_BELOW_MINIMUM"
        case .zeroRefund: "ZERO_REFUND"
        case .invalidOrderID: "INVALID_ORDER_ID"
        case .invalidURL: "INVALID_URL"
        case .descriptionTooLong: "DESCRIPTION_TOO_LONG"
        case .invalidQRToken: "INVALID_QR_TOKEN"
        case .invalidTransactionID: "INVALID_TRANSACTION_ID"
        }
    }

    /// The server's reply, for errors the server reported.
    public var serverReply: ServerReply? {
        switch self {
        case .invalidSignature(let r), .orderAlreadyExists(let r), .tradePointNotFound(let r),
            .amountTooSmall(let r), .invalidReturnURL(let r), .unauthorized(let r),
            .orderNotFound(let r), .invalidRequest(let r), .refundNotAllowed(let r),
            .rateLimited(let r, _), .otherAPIError(_, let r):
            r
        default: nil
        }
    }

    /// Whether the same request may succeed if sent again later: timeouts, transport
    /// failures, 5xx answers and rate limiting.
    public var isTransient: Bool {
        switch self {
        case .transport, .timeout, .rateLimited: true
        case .unexpectedStatus(let status, _): status >= 500 || status == 408
        case .undecodableBody(let status, _, _): status >= 500
        case .otherAPIError(_, let reply): reply.httpStatus >= 500
        default: false
        }
    }

    /// Whether a request that failed this way may have been carried out by the server
    /// anyway: a write must not be re-sent blindly after such a failure.
    var isAmbiguous: Bool {
        switch self {
        case .transport, .timeout: true
        case .unexpectedStatus(let status, _): status >= 500
        case .undecodableBody(let status, _, _): status >= 500 || (200..<300).contains(status)
        case .otherAPIError(_, let reply): reply.httpStatus >= 500
        default: false
        }
    }

    public var description: String {
        "\(code): " + advice
    }

    private var advice: String {
        switch self {
        case .invalidSignature(let r):
            "the server rejected the signature\(r.suffix). Check that the API key belongs to this trade point and that amount and orderId are signed exactly as sent."
        case .orderAlreadyExists(let r):
            "this orderId is already used for the trade point\(r.suffix). Use a new, unique orderId (a UUID or a timestamp) for each payment attempt."
        case .tradePointNotFound(let r):
            "the server does not know this trade point id\(r.suffix). Check KASPI_TRADE_POINT_ID and the environment (test vs production)."
        case .amountTooSmall(let r):
            "the amount is below Kaspi's minimum of 100 tenge\(r.suffix). Charge at least 100 tenge."
        case .invalidReturnURL(let r):
            "returnUrl or failUrl is not registered for this trade point\(r.suffix). Register the URL prefix in the Kaspi merchant portal."
        case .unauthorized(let r):
            "the server did not accept the API key\(r.suffix). Check KASPI_API_KEY and that it belongs to this trade point."
        case .orderNotFound(let r):
            "no such order or QR token\(r.suffix). Check the id, the trade point and the environment."
        case .invalidRequest(let r):
            "the server found the request malformed\(r.suffix). Check the fields against the contract; this may be a bug worth reporting."
        case .refundNotAllowed(let r):
            "the refund was refused\(r.suffix). Only an APPROVED order can be refunded, and never beyond what remains of its amount."
        case .rateLimited(let r, let retryAfter):
            "over the limit of requests per minute for this trade point\(r.suffix)\(retryAfter.map { "; retry after \($0.seconds) s" } ?? ""). Slow down or share one client across tasks."
        case .otherAPIError(_, let r):
            "the server reported an error this SDK does not know (HTTP \(r.httpStatus))\(r.suffix). Update KaspiKit or report it."
        case .transport(let detail):
            "could not reach the server (\(detail)). Check the network and the base URL; the request may be retried."
        case .timeout:
            "the server did not answer in time. It may still have carried out the request: check the order's status before repeating it."
        case .unexpectedStatus(let status, let snippet):
            "unexpected HTTP \(status)\(snippet.isEmpty ? "" : " with body: \(snippet)"). Check the base URL points at a Kaspi Pay API."
        case .undecodableBody(let status, let reason, let snippet):
            "could not decode the HTTP \(status) response (\(reason))\(snippet.isEmpty ? "" : "; body: \(snippet)"). Check the base URL points at a Kaspi Pay API."
        case .createOutcomeUnknown(let orderID):
            "the order \(orderID) was created by an earlier attempt whose response was lost, and the server does not report its payment details. Create the payment again with a new orderId; the old one will never be paid."
        case .refundOutcomeUnknown(let orderID, let amount):
            "the refund of \(amount) tenge for \(orderID) may or may not have been carried out, and it was not re-sent. Check the order's refunded amount before trying again."
        case .negativeAmount(let value):
            "the amount \(value) is negative. Amounts are whole tenge, zero or more."
        case .amountBelowMinimum(let amount):
            "the amount \(amount) is below Kaspi's minimum of \(Amount.minimumPayment) tenge. Charge at least 100 tenge."
        case .zeroRefund:
            "a refund of 0 tenge does nothing. Refund at least 1 tenge."
        case .invalidOrderID(let value, let reason):
            "the order id \(Redaction.quoted(value)) is invalid: \(reason). Use 1 to 64 characters of A-Z a-z 0-9 _ . : -."
        case .invalidURL(let field, let value, let reason):
            "\(field) \(Redaction.quoted(value)) is invalid: \(reason). Use an absolute http(s) URL."
        case .descriptionTooLong(let count):
            "the description is \(count) characters long; at most 256 are allowed. Shorten it."
        case .invalidQRToken(let value, let reason):
            "the QR token \(Redaction.quoted(value)) is invalid: \(reason). Use the qrToken returned by QR creation."
        case .invalidTransactionID(let reason):
            "the transaction id is invalid: \(reason). Use the transactionId Kaspi reported for the payment."
        }
    }
}

extension ServerReply {
    fileprivate var suffix: String {
        message.isEmpty ? "" : " (server said: \(Redaction.quoted(message, limit: 200)))"
    }
}

extension Duration {
    /// Whole seconds, rounded up.
    var seconds: Int64 {
        let (s, atto) = components
        return atto > 0 ? s + 1 : s
    }
}
