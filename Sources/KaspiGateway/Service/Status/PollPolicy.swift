import Foundation
import KaspiGatewayStore
import KaspiPay

/// The polling policy, pure like ``OrderStateMachine``: given an order, the provider's plan
/// for it and a status answer with the time it arrived, what the answer changes and when to
/// ask next. It is the one place where a deadline is read and expiry decided.
///
/// Two deadlines matter. The order stays payable until ``ProviderPollPlan/deadline`` (the
/// latest the provider can still take the payment): an answer that is still pending at or
/// after it expires the order. A failure is an expiry, not the payer's refusal, when it comes
/// at or after ``ProviderPollPlan/earliestEnd`` (the earliest the provider can have ended the
/// payment by itself): Kaspi's confirmation timeout runs from the payer's scan, which happened
/// after the last poll that did not see it, not from the first poll that did.
public enum PollPolicy {
    /// The settings the policy reads.
    public struct Settings: Sendable, Hashable {
        /// Polls back off from this …
        public var pollInterval: TimeInterval = 15
        /// … up to this.
        public var maxPollInterval: TimeInterval = 600
        /// The gateway's own deadline for redirect and link orders, from creation.
        public var expireAfter: TimeInterval = 3600
        /// The gateway's own deadline for QR orders, from creation.
        public var qrExpireAfter: TimeInterval = 900
        /// How often an expired order is asked about, for a late payment.
        public var latePollInterval: TimeInterval = 900
        /// For how long after its deadline an expired order is asked about.
        public var latePaymentWindow: TimeInterval = 24 * 3600
        /// How long a stored order may wait for its create call before the provider's "not
        /// found" means that the call never arrived.
        public var createGracePeriod: TimeInterval = 120

        /// The defaults of ``GatewayConfiguration``.
        public init() {}

        /// The settings of a configuration.
        public init(_ configuration: GatewayConfiguration) {
            pollInterval = configuration.pollInterval
            maxPollInterval = configuration.maxPollInterval
            expireAfter = configuration.expireAfter
            qrExpireAfter = configuration.qrExpireAfter
            latePollInterval = configuration.latePollInterval
            latePaymentWindow = configuration.latePaymentWindow
            createGracePeriod = configuration.createGracePeriod
        }
    }

    /// What a status answer does to an order.
    public enum Outcome: Sendable, Hashable {
        /// The provider's report, applied through the state machine (a pending report
        /// changes nothing but a `created` order's move to `pending`).
        case report(PaymentStatus)
        /// The order expired: the provider ended it at its deadline, or the deadline passed
        /// without an outcome. `latePollAt` asks again for a late payment (nil: never).
        case expire(reason: String, latePollAt: Date?)
    }

    /// Until when the order can be paid: the provider's running deadline, else the gateway's
    /// own from the order's creation.
    public static func deadline(of order: GatewayOrder, plan: ProviderPollPlan?, settings: Settings) -> Date {
        plan?.deadline ?? order.createdAt.addingTimeInterval(order.kind == .qr ? settings.qrExpireAfter : settings.expireAfter)
    }

    /// What an answer means for the order.
    ///
    /// - Parameters:
    ///   - report: the provider's status, as the state machine reads it.
    ///   - providerWord: the provider's own word for it (`Error`), for the timeline.
    ///   - order: the order as it stands, with the provider state this answer left.
    ///   - plan: the provider's plan for that order.
    ///   - answeredAt: when the answer arrived.
    public static func outcome(
        of report: PaymentStatus, providerWord: String? = nil, for order: GatewayOrder, plan: ProviderPollPlan?, answeredAt: Date,
        settings: Settings
    ) -> Outcome {
        guard order.state == .created || order.state == .pending else { return .report(report) }
        let deadline = deadline(of: order, plan: plan, settings: settings)
        switch report {
        case .declined:
            if let earliest = plan?.earliestEnd, answeredAt >= earliest {
                return .expire(
                    reason: "Kaspi cancelled it at its deadline (\(providerWord ?? "Error"))",
                    latePollAt: latePoll(after: answeredAt, deadline: max(deadline, answeredAt), plan: plan, settings: settings))
            }
            return .report(report)
        case .pending, .unknown:
            guard answeredAt >= deadline else { return .report(report) }
            let reason =
                plan.map { "the \($0.phase) deadline passed without a payment" }
                ?? "still pending after \(Int(deadline.timeIntervalSince(order.createdAt))) s"
            return .expire(reason: reason, latePollAt: latePoll(after: answeredAt, deadline: deadline, plan: plan, settings: settings))
        case .approved, .cancelled:
            return .report(report)
        }
    }

    /// What a failed status call means: an order whose create call never reached the
    /// provider (it does not know the order, and the call cannot still be in flight) expires;
    /// anything else changes nothing and is asked about again.
    public static func outcome(ofFailure notFound: Bool, for order: GatewayOrder, at: Date, settings: Settings) -> Outcome? {
        guard notFound, order.state == .created, at.timeIntervalSince(order.createdAt) >= settings.createGracePeriod else { return nil }
        return .expire(reason: "the provider never received the order", latePollAt: nil)
    }

    /// When to ask about the order next after a poll (nil: never again).
    ///
    /// - Parameters:
    ///   - order: the order after the poll.
    ///   - plan: the provider's plan for it, made at `at`.
    ///   - attempts: the number of this poll (1 for the first).
    public static func nextPoll(after order: GatewayOrder, plan: ProviderPollPlan?, attempts: Int, at: Date, settings: Settings) -> Date? {
        switch order.state {
        case .created, .pending:
            let backoff = min(settings.maxPollInterval, settings.pollInterval * pow(2, Double(min(max(attempts, 1) - 1, 16))))
            return plan?.nextPollAt ?? at.addingTimeInterval(backoff)
        case .expired:
            return latePoll(after: at, deadline: deadline(of: order, plan: plan, settings: settings), plan: plan, settings: settings)
        case .paid, .declined, .cancelled:
            return nil
        }
    }

    /// The next late poll of an expired order: every ``Settings/latePollInterval`` within
    /// ``Settings/latePaymentWindow`` of its deadline, unless the provider must not be read on
    /// a timer (``ProviderPollPlan/latePolls``).
    static func latePoll(after at: Date, deadline: Date, plan: ProviderPollPlan?, settings: Settings) -> Date? {
        guard plan?.latePolls ?? true else { return nil }
        let next = at.addingTimeInterval(settings.latePollInterval)
        return next < deadline.addingTimeInterval(settings.latePaymentWindow) ? next : nil
    }
}
