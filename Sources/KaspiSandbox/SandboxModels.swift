import Foundation
import KaspiPay
import KaspiSupport

/// An order as the sandbox keeps it.
public struct SandboxOrder: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable { case redirect, qr }

    public var tradePointId: String
    public var orderId: String
    public var kind: Kind
    public var amount: Int
    public var description: String?
    public var returnUrl: String?
    public var failUrl: String?
    /// Pending until the payer or a helper settles it.
    public var status: PaymentStatus
    public var createdAt: Date
    public var updatedAt: Date
    public var transactionId: String?
    public var refundedAmount: Int = 0
    public var refunds: [SandboxRefund] = []
    /// The secret part of the payment page's URL.
    public var paymentToken: String
    public var qrToken: String?
    public var qrExpiresAt: Date?
    /// When a scenario amount settles the order by itself.
    public var settleAt: Date?
    public var settleStatus: PaymentStatus?
}

public struct SandboxRefund: Sendable, Codable, Hashable {
    public var refundId: String
    public var amount: Int
    public var at: Date
}

/// One webhook and every attempt to deliver it.
public struct WebhookDelivery: Sendable, Codable, Hashable {
    public struct Attempt: Sendable, Codable, Hashable {
        public var at: Date
        /// The merchant's HTTP status, nil when there was none.
        public var responseCode: Int?
        public var latencyMs: Int
        public var error: String?
        /// Whether it was sent by hand.
        public var manual: Bool
    }

    public enum State: String, Sendable, Codable { case pending, delivered, failed, dropped }

    public var id: String
    public var tradePointId: String
    public var orderId: String
    public var status: PaymentStatus
    public var url: String
    /// The exact JSON body sent.
    public var body: String
    public var createdAt: Date
    public var state: State
    public var attempts: [Attempt] = []
    public var nextAttemptAt: Date?
    /// Fault injection: also send a second copy.
    public var duplicate: Bool = false
    /// Fault injection: hold until a later webhook of the same trade point was sent.
    public var heldForReorder: Bool = false
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
    public var apiTimeoutSeconds: Double = 30
    /// Milliseconds added to every API call.
    public var apiLatencyMs: Int = 0
    /// The next N API calls fail with 503, then calls succeed again.
    public var apiFailNext: Int = 0
    /// The next N creates or refunds take effect, but their response is lost (502): for
    /// testing how a client recovers.
    public var apiLoseResponseNext: Int = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case webhookDropRate, webhookDuplicateRate, webhookDelaySeconds, webhookReorder, apiFailureRate,
            apiTimeoutRate, apiTimeoutSeconds, apiLatencyMs, apiFailNext, apiLoseResponseNext
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
    var orderId: String
    var amount: Int
    var status: PaymentStatus
    @EncodedAsNull var transactionId: String?
    var signature: String

    /// The body's JSON text, keys sorted.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
