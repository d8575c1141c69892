import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiSupport

// The merchant API's bodies: what it reads and what it answers, as `openapi/gateway.yaml`
// describes them. The contract tests hold every answer against that document.

/// A request body whose fields are all its `CodingKeys`: any other field is refused with 400
/// naming it, as `additionalProperties: false` in `openapi/gateway.yaml` says (a misspelt
/// optional field would otherwise be dropped without a word).
protocol StrictBody: Decodable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

/// An amount of tenge: a JSON number that is a whole number (`100`, and `100.0` or `1e2`, which
/// are the same number), never rounded from a fraction (`99.99999999999999999` is refused,
/// not taken as 100).
struct Tenge: Decodable, Sendable {
    let value: Int

    init(from decoder: any Decoder) throws {
        let field = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        let refusal = GatewayError.invalid("\(field.isEmpty ? "amount" : field) must be a whole number of tenge.")
        guard let decimal = try? decoder.singleValueContainer().decode(Decimal.self) else { throw refusal }
        var rounded = Decimal()
        var exact = decimal
        NSDecimalRound(&rounded, &exact, 0, .plain)
        // Far beyond any amount the gateway takes; the range checks come later, with their words.
        guard rounded == decimal, decimal.magnitude <= 1_000_000_000_000, let value = Int(decimal.description) else { throw refusal }
        self.value = value
    }
}

/// `POST /v1/checkouts` and `POST /v1/qr-checkouts`.
struct CheckoutBody: StrictBody {
    var amount: Tenge
    var description: String?
    var merchantReference: String?
    var metadata: [String: JSONValue]?
    var mobileReturnURL: String?
    /// The payer's language: `kk`, `ru` or `en`.
    var locale: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case amount, description, merchantReference, metadata, locale
        case mobileReturnURL = "mobileReturnUrl"
    }

    /// The metadata as canonical JSON text (keys sorted), as it is stored.
    func metadataText() throws(GatewayError) -> String? {
        guard let metadata else { return nil }
        do { return try CanonicalJSON.text(metadata) } catch {
            throw .invalid("metadata must be a JSON object.")
        }
    }
}

/// `POST /v1/orders/{id}/refunds`: every field optional (the whole remaining amount).
struct RefundBody: StrictBody {
    var amount: Tenge?
    var returnID: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case amount
        case returnID = "returnId"
    }
}

/// `POST /v1/orders/{id}/manual-refunds`.
struct ManualRefundBody: StrictBody {
    var amount: Tenge
    var note: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case amount, note }
}

/// `POST /v1/remote-invoices/client-info`.
struct ClientInfoBody: StrictBody {
    var phoneNumber: String

    enum CodingKeys: String, CodingKey, CaseIterable { case phoneNumber }
}

/// `POST /v1/remote-invoices`.
struct RemoteInvoiceBody: StrictBody {
    var amount: Tenge
    var phoneNumber: String
    var description: String?
    var merchantReference: String?
    var comment: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case amount, phoneNumber, description, merchantReference, comment }
}

/// `POST /v1/payment-links`.
struct PaymentLinkBody: StrictBody {
    var amount: Tenge
    var description: String?
    var merchantReference: String?
    var expiresAt: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case amount, description, merchantReference, expiresAt }
}

/// An order as the API shows it, with its QR code when it was just created as one.
struct OrderResponse: ResponseEncodable {
    var id: String
    var state: OrderState
    var kind: OrderKind
    var amount: Int
    var refundedAmount: Int
    var currency = "KZT"
    var provider: String
    var providerOrderID: String
    var needsReview: Bool
    var createdAt: Date
    var updatedAt: Date
    var description: String?
    var merchantReference: String?
    var metadata: JSONValue?
    var mobileReturnURL: String?
    var paymentURL: String?
    var transactionID: String?
    var providerPaymentID: String?
    var qrCode: String?
    var qrToken: String?
    /// The order's client secret, for the payer's app (``Gateway/clientSecret(orderID:)``).
    var clientSecret: String?
    var locale: String?

    enum CodingKeys: String, CodingKey {
        case id, state, kind, amount, refundedAmount, currency, provider, clientSecret, locale
        case providerOrderID = "providerOrderId"
        case needsReview, createdAt, updatedAt
        case description, merchantReference, metadata
        case transactionID = "transactionId"
        case providerPaymentID = "providerPaymentId"
        case qrCode, qrToken
        case mobileReturnURL = "mobileReturnUrl"
        case paymentURL = "paymentUrl"
    }

    init(_ order: GatewayOrder, qr: ProviderQR? = nil, clientSecret: String? = nil) {
        self.clientSecret = clientSecret
        id = order.id
        state = order.state
        kind = order.kind
        amount = order.amount
        refundedAmount = order.refundedAmount
        provider = order.provider
        providerOrderID = order.providerOrderID
        needsReview = order.needsReview
        createdAt = order.createdAt
        updatedAt = order.updatedAt
        description = order.description
        merchantReference = order.merchantReference
        // Stored as canonical JSON by the gateway itself.
        metadata = order.metadata.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        mobileReturnURL = order.mobileReturnURL
        paymentURL = order.paymentURL
        transactionID = order.transactionID
        providerPaymentID = order.providerPaymentID
        qrCode = qr.map { Data($0.png).base64EncodedString() }
        qrToken = qr?.token
        locale = order.locale
    }
}

/// `{"data": [...]}`.
struct ListResponse<Item: Encodable>: ResponseEncodable {
    var data: [Item]
}

/// A page of orders; `nextCursor` is null on the last page.
struct OrderPageResponse: ResponseEncodable {
    var data: [OrderResponse]
    @EncodedAsNull var nextCursor: String?
}

/// One line of an order's timeline.
struct EventResponse: Encodable {
    var at: Date
    var kind: String
    @EncodedAsNull var from: OrderState?
    @EncodedAsNull var to: OrderState?
    var detail: String

    init(_ event: OrderEvent) {
        at = event.at
        kind = event.kind.rawValue
        from = event.fromState
        to = event.toState
        detail = event.detail
    }
}

/// One refund of an order.
struct RefundResponse: Encodable {
    var id: String
    var amount: Int
    var status: RefundStatus
    @EncodedAsNull var detail: String?
    var createdAt: Date
    var updatedAt: Date

    init(_ refund: RefundRecord) {
        id = refund.id
        amount = refund.amount
        status = refund.status
        detail = refund.detail
        createdAt = refund.createdAt
        updatedAt = refund.updatedAt
    }
}

/// One outgoing event, what it says, and its delivery so far.
struct OutboxResponse: Encodable {
    var id: String
    var type: String
    var orderID: String
    var state: OutboxMessage.State
    var attempts: Int
    @EncodedAsNull var lastStatus: Int?
    var createdAt: Date
    /// The body delivered to the merchant's endpoint.
    var payload: JSONValue?

    init(_ message: OutboxMessage) {
        id = message.id
        type = message.type
        orderID = message.orderID
        state = message.state
        attempts = message.attempts
        lastStatus = message.lastStatus
        createdAt = message.createdAt
        payload = try? JSONDecoder().decode(JSONValue.self, from: Data(message.payload.utf8))
    }

    enum CodingKeys: String, CodingKey {
        case id
        case type
        case orderID = "orderId"
        case state
        case attempts
        case lastStatus
        case createdAt
        case payload
    }
}

/// A page of outgoing events and the cursor to continue after it.
struct EventPageResponse: ResponseEncodable {
    var data: [OutboxResponse]
    @EncodedAsNull var nextCursor: String?
}

/// `POST /v1/events/{id}/resend`.
struct RequeuedResponse: ResponseEncodable {
    var requeued: String
}

/// A return QR just made (the Kaspi QR API's r2).
struct CustomerReturnResponse: ResponseEncodable {
    var id: String
    var status = "QrTokenCreated"
    var qrToken: String
    var qrCode: String
    var expiresAt: Date
    var pollingIntervalSeconds: Int

    init(_ created: ProviderCustomerReturn) {
        id = created.id
        qrToken = created.qrToken
        qrCode = Data(created.png).base64EncodedString()
        expiresAt = created.expiresAt
        pollingIntervalSeconds = created.pollingInterval
    }
}

/// A return's status, with the customer's purchases and the gateway's orders for them.
struct CustomerReturnStatusResponse: ResponseEncodable {
    struct Purchase: Encodable {
        var paymentID: String
        var amount: Decimal
        @EncodedAsNull var transactionDate: Date?
        @EncodedAsNull var orderID: String?
        var refundableAmount: Int

        enum CodingKeys: String, CodingKey {
            case paymentID = "paymentId"
            case amount
            case transactionDate
            case orderID = "orderId"
            case refundableAmount
        }
    }
    var id: String
    var status: String
    var identified: Bool
    var purchases: [Purchase]

    init(id: String, status: ProviderCustomerReturnStatus, orders: [String: GatewayOrder]) {
        self.id = id
        self.status = status.status
        identified = status.identified
        purchases = status.purchases.map { purchase in
            let order = orders[purchase.providerPaymentID]
            return Purchase(
                paymentID: purchase.providerPaymentID, amount: purchase.amount, transactionDate: purchase.at, orderID: order?.id,
                refundableAmount: order.map { $0.state == .paid ? $0.amount - $0.refundedAmount : 0 } ?? 0)
        }
    }
}

/// The client a phone number belongs to.
struct ClientInfoResponse: ResponseEncodable {
    var phoneNumber: String
    var clientName: String
}

/// A payment link with its QR code and share links.
struct PaymentLinkResponse: ResponseEncodable {
    var id: String
    var url: String
    var amount: Int
    var status: Gateway.LinkStatus
    var qrCode: String
    var whatsappURL: String
    var smsURL: String
    var createdAt: Date
    var description: String?
    var merchantReference: String?
    var expiresAt: Date?
    var orderID: String?

    enum CodingKeys: String, CodingKey {
        case id, url, amount, status, qrCode, createdAt, description, merchantReference, expiresAt
        case orderID = "orderId"
        case whatsappURL = "whatsappUrl"
        case smsURL = "smsUrl"
    }

    init(_ view: Gateway.PaymentLinkView) {
        id = view.link.id
        url = view.url
        amount = view.link.amount
        status = view.status
        qrCode = Data(view.png).base64EncodedString()
        whatsappURL = view.whatsappURL
        smsURL = view.smsURL
        createdAt = view.link.createdAt
        description = view.link.description
        merchantReference = view.link.merchantReference
        expiresAt = view.link.expiresAt
        orderID = view.order?.id
    }
}

/// `{"status": …}`, the health and readiness answers.
struct HealthResponse: ResponseEncodable {
    var status: String
}

/// `{"received": true}`, the answer to a webhook that was applied.
struct WebhookReceivedResponse: ResponseEncodable {
    var received = true
}

/// `GET /client/v1/orders/{id}`: what the payer's app may know (``ClientOrderView``).
struct ClientOrderResponse: ResponseEncodable {
    var id: String
    var state: OrderState
    /// Whether the state will not change any more (a late payment of an expired order aside).
    var final: Bool
    var kind: OrderKind
    var amount: Int
    var currency = "KZT"
    var paymentURL: String?
    var qrToken: String?
    var expiresAt: Date?
    var expiresIn: Int?
    var pollAfter: Int

    enum CodingKeys: String, CodingKey {
        case id, state, final, kind, amount, currency, qrToken, expiresAt, expiresIn, pollAfter
        case paymentURL = "paymentUrl"
    }

    init(_ view: ClientOrderView) {
        id = view.id
        state = view.state
        final = view.state.isFinal
        kind = view.kind
        amount = view.amount
        paymentURL = view.paymentURL
        qrToken = view.qrToken
        expiresAt = view.expiresAt
        expiresIn = view.expiresIn
        pollAfter = view.pollAfter
    }
}
