import Foundation
import KaspiPay
import KaspiSupport

/// An order as the sandbox keeps it.
public struct SandboxOrder: Sendable, Codable, Hashable {
    /// Whether the order was created as a redirect payment or a QR payment.
    public enum Kind: String, Sendable, Codable { case redirect, qr }

    /// The trade point that created it.
    public var tradePointID: String
    /// The merchant's order id.
    public var orderID: String
    /// Redirect or QR.
    public var kind: Kind
    /// The amount, in whole tenge.
    public var amount: Int
    /// What is paid for, shown on the payment page.
    public var description: String?
    /// Where the payment page sends the payer after paying.
    public var returnURL: String?
    /// Where the payment page sends the payer after a decline or a cancel.
    public var failURL: String?
    /// Pending until the payer or a helper settles it.
    public var status: PaymentStatus
    /// When it was created, in sandbox time.
    public var createdAt: Date
    /// When it last changed, in sandbox time.
    public var updatedAt: Date
    /// The transaction id, once paid.
    public var transactionID: String?
    /// How much was refunded in all, in tenge.
    public var refundedAmount: Int = 0
    /// Every refund, oldest first.
    public var refunds: [SandboxRefund] = []
    /// The secret part of the payment page's URL.
    public var paymentToken: String
    /// The QR payment's token (QR payments only).
    public var qrToken: String?
    /// When the QR code expires and the order is cancelled, in sandbox time.
    public var qrExpiresAt: Date?
    /// When a scenario amount settles the order by itself.
    public var settleAt: Date?
    /// What a scenario amount settles it to.
    public var settleStatus: PaymentStatus?

    enum CodingKeys: String, CodingKey {
        case tradePointID = "tradePointId"
        case orderID = "orderId"
        case kind
        case amount
        case description
        case returnURL = "returnUrl"
        case failURL = "failUrl"
        case status
        case createdAt
        case updatedAt
        case transactionID = "transactionId"
        case refundedAmount
        case refunds
        case paymentToken
        case qrToken
        case qrExpiresAt
        case settleAt
        case settleStatus
    }
}

/// A refund the sandbox made.
public struct SandboxRefund: Sendable, Codable, Hashable {
    /// The refund's id.
    public var refundID: String
    /// The amount refunded, in tenge.
    public var amount: Int
    /// When it was made, in sandbox time.
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case refundID = "refundId"
        case amount
        case at
    }
}

/// One webhook and every attempt to deliver it.
public struct WebhookDelivery: Sendable, Codable, Hashable {
    /// One attempt to deliver a webhook.
    public struct Attempt: Sendable, Codable, Hashable {
        /// When it was made.
        public var at: Date
        /// The merchant's HTTP status, nil when there was none.
        public var responseCode: Int?
        /// How long the merchant took to answer, in milliseconds.
        public var latencyMs: Int
        /// Why there was no answer, when there was none.
        public var error: String?
        /// Whether it was sent by hand.
        public var manual: Bool
    }

    /// Whether the merchant has it: not yet, yes, given up on after the retries, or dropped by fault injection.
    public enum State: String, Sendable, Codable { case pending, delivered, failed, dropped }

    /// The webhook's id.
    public var id: String
    /// The trade point whose order it is.
    public var tradePointID: String
    /// The order it reports.
    public var orderID: String
    /// The status it reports.
    public var status: PaymentStatus
    /// The trade point's webhook URL it goes to.
    public var url: String
    /// The exact JSON body sent.
    public var body: String
    /// When it was queued.
    public var createdAt: Date
    /// Whether it was delivered.
    public var state: State
    /// Every attempt, oldest first.
    public var attempts: [Attempt] = []
    /// When the next attempt is due; nil when no attempt is left.
    public var nextAttemptAt: Date?
    /// Fault injection: also send a second copy.
    public var duplicate: Bool = false
    /// Fault injection: hold until a later webhook of the same trade point was sent.
    public var heldForReorder: Bool = false

    enum CodingKeys: String, CodingKey {
        case id
        case tradePointID = "tradePointId"
        case orderID = "orderId"
        case status
        case url
        case body
        case createdAt
        case state
        case attempts
        case nextAttemptAt
        case duplicate
        case heldForReorder
    }
}

/// Faults to inject for one trade point. Rates are probabilities from 0 to 1.
public struct SandboxFaults: Sendable, Codable, Hashable {
    /// Webhooks never sent (recorded as dropped).
    public var webhookDropRate: Double = 0
    /// Webhooks sent twice.
    public var webhookDuplicateRate: Double = 0
    /// Seconds added before a webhook's first attempt.
    public var webhookDelaySeconds: Double = 0
    /// Hold each webhook until the next one of the trade point has been sent, so they arrive
    /// out of order.
    public var webhookReorder: Bool = false
    /// API calls answered 503 without effect.
    public var apiFailureRate: Double = 0
    /// API calls held for `apiTimeoutSeconds` and then answered 504 without effect.
    public var apiTimeoutRate: Double = 0
    /// How long a timed-out call is held before its 504, in seconds.
    public var apiTimeoutSeconds: Double = 30
    /// Milliseconds added to every API call.
    public var apiLatencyMs: Int = 0
    /// The next N API calls fail with 503, then calls succeed again.
    public var apiFailNext: Int = 0
    /// The next N creates or refunds take effect, but their response is lost (502): for
    /// testing how a client recovers.
    public var apiLoseResponseNext: Int = 0
    /// Milliseconds a create's or refund's answer is held after it took effect: a caller that
    /// dies meanwhile (a `kill -9`) never hears that it happened.
    public var apiAnswerDelayMs: Int = 0

    /// No faults.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case webhookDropRate, webhookDuplicateRate, webhookDelaySeconds, webhookReorder, apiFailureRate,
            apiTimeoutRate, apiTimeoutSeconds, apiLatencyMs, apiFailNext, apiLoseResponseNext, apiAnswerDelayMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SandboxFaults()
        webhookDropRate = try c.decodeIfPresent(Double.self, forKey: .webhookDropRate) ?? d.webhookDropRate
        webhookDuplicateRate = try c.decodeIfPresent(Double.self, forKey: .webhookDuplicateRate) ?? d.webhookDuplicateRate
        webhookDelaySeconds = try c.decodeIfPresent(Double.self, forKey: .webhookDelaySeconds) ?? d.webhookDelaySeconds
        webhookReorder = try c.decodeIfPresent(Bool.self, forKey: .webhookReorder) ?? d.webhookReorder
        apiFailureRate = try c.decodeIfPresent(Double.self, forKey: .apiFailureRate) ?? d.apiFailureRate
        apiTimeoutRate = try c.decodeIfPresent(Double.self, forKey: .apiTimeoutRate) ?? d.apiTimeoutRate
        apiTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .apiTimeoutSeconds) ?? d.apiTimeoutSeconds
        apiLatencyMs = try c.decodeIfPresent(Int.self, forKey: .apiLatencyMs) ?? d.apiLatencyMs
        apiFailNext = try c.decodeIfPresent(Int.self, forKey: .apiFailNext) ?? d.apiFailNext
        apiLoseResponseNext = try c.decodeIfPresent(Int.self, forKey: .apiLoseResponseNext) ?? d.apiLoseResponseNext
        apiAnswerDelayMs = try c.decodeIfPresent(Int.self, forKey: .apiAnswerDelayMs) ?? d.apiAnswerDelayMs
    }

    /// The first invalid value, or nil.
    func problem() -> String? {
        for (name, rate) in [
            ("webhookDropRate", webhookDropRate), ("webhookDuplicateRate", webhookDuplicateRate),
            ("apiFailureRate", apiFailureRate), ("apiTimeoutRate", apiTimeoutRate),
        ] where !(0...1).contains(rate) {
            return "\(name) must be between 0 and 1"
        }
        if !(0...3600).contains(webhookDelaySeconds) { return "webhookDelaySeconds must be between 0 and 3600" }
        if !(0...600).contains(apiTimeoutSeconds) { return "apiTimeoutSeconds must be between 0 and 600" }
        if !(0...60_000).contains(apiLatencyMs) { return "apiLatencyMs must be between 0 and 60000" }
        if !(0...10_000).contains(apiFailNext) { return "apiFailNext must be between 0 and 10000" }
        if !(0...10_000).contains(apiLoseResponseNext) { return "apiLoseResponseNext must be between 0 and 10000" }
        if !(0...60_000).contains(apiAnswerDelayMs) { return "apiAnswerDelayMs must be between 0 and 60000" }
        return nil
    }
}

/// Amounts that settle an order by themselves, so automated tests can choose an outcome.
public enum ScenarioAmount {
    /// Amount, outcome, and after how many sandbox seconds.
    public static let table: [(amount: Int, status: PaymentStatus, afterSeconds: Double)] = [
        (7001, .approved, 0),
        (7002, .declined, 0),
        (7003, .cancelled, 0),
        (7004, .approved, 10),
    ]

    static func outcome(for amount: Int) -> (status: PaymentStatus, afterSeconds: Double)? {
        table.first { $0.amount == amount }.map { ($0.status, $0.afterSeconds) }
    }
}

/// The body of a webhook the sandbox posts, in the guide's shape: `transactionId` is null
/// until the order is paid.
struct WebhookBody: Encodable {
    var orderID: String
    var amount: Int
    var status: PaymentStatus
    @EncodedAsNull var transactionID: String?
    var signature: String

    /// The body's JSON text, keys sorted.
    var json: String {
        (try? CanonicalJSON.text(self)) ?? "{}"
    }

    enum CodingKeys: String, CodingKey {
        case orderID = "orderId"
        case amount
        case status
        case transactionID = "transactionId"
        case signature
    }
}
