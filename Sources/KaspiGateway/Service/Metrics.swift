import Foundation
import KaspiGatewayStore
import Prometheus
import Synchronization

/// The gateway's Prometheus metrics, served at `/metrics`. The registry belongs to the
/// gateway (no global bootstrap), so several gateways can live in one process.
public final class GatewayMetrics: Sendable {
    /// The registry `/metrics` serves.
    public let registry = PrometheusCollectorRegistry()

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "kaspi", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
    }

    private static var requestsName: MetricNameDescriptor { Self.name("http_requests", "total", "HTTP requests by route and status") }
    private static var webhooksName: MetricNameDescriptor { Self.name("webhooks", "total", "Kaspi webhooks by outcome") }
    private static var latePollsName: MetricNameDescriptor { Self.name("late_polls", "total", "Polls of expired orders, looking for late payments") }
    private static var refundsName: MetricNameDescriptor { Self.name("refunds", "total", "Refunds by outcome") }
    private static var pollsName: MetricNameDescriptor {
        Self.name("status_polls", "total", "Status polls by outcome: changed the order, or not (those stay out of the timeline)")
    }
    private static var signInsName: MetricNameDescriptor {
        Self.name("admin_sign_ins", "total", "Dashboard sign-ins by outcome: accepted, refused, throttled")
    }
    private static var transitionsName: MetricNameDescriptor { Self.name("transitions", "total", "Order state transitions by target state") }
    private static var deliveriesName: MetricNameDescriptor { Self.name("event_deliveries", "total", "Outgoing event delivery attempts by outcome") }
    private static var lagName: MetricNameDescriptor {
        Self.name("outbox_lag", "seconds", "Age of the oldest outgoing event at its last delivery attempt")
    }
    private static var certificateName: MetricNameDescriptor {
        Self.name("client_certificate_expiry", "seconds", "Seconds until the Kaspi QR API client certificate expires (negative once expired)")
    }
    private static var kaspiName: MetricNameDescriptor { Self.name("kaspi_call_duration", "seconds", "Latency of calls to Kaspi by call") }
    private static var kaspiErrorsName: MetricNameDescriptor { Self.name("kaspi_errors", "total", "Failed calls to Kaspi by call and code") }
    private static var resumedName: MetricNameDescriptor {
        Self.name("idempotent_resumed", "total", "Requests whose Idempotency-Key holder was gone, taken over and resumed, by work")
    }

    /// What became of a Kaspi webhook.
    enum WebhookOutcome: String, CaseIterable { case applied, unchanged, rejected, unconfirmed }
    /// What became of a refund.
    enum RefundOutcome: String, CaseIterable {
        case succeeded, failed, unknown, unrecorded, manual, mismatch
        case reconciledSucceeded = "reconciled_succeeded"
        case reconciledFailed = "reconciled_failed"
    }
    /// A dashboard sign-in's outcome.
    enum SignInOutcome: String, CaseIterable { case accepted, refused, throttled }
    /// Work a retry resumes after the request that started it was gone.
    enum ResumedWork: String, CaseIterable {
        case checkout, refund
        case manualRefund = "manual_refund"
        case paymentLink = "payment_link"
    }
    /// An outgoing event's delivery attempt.
    enum DeliveryOutcome: String, CaseIterable { case delivered, failed }
    /// The calls to Kaspi that are measured.
    static let kaspiCalls = [
        "create_payment", "create_qr", "status", "refund", "remote.client_info", "remote.create", "remote.cancel", "return.create", "return.status",
    ]

    /// The series a request path counts, made once: the registry's lookup (labels hashed,
    /// under a lock) showed in profiles of the webhook path.
    private let webhookCounters: [WebhookOutcome: Counter]
    private let transitionCounters: [OrderState: Counter]
    private let requestCounters = Mutex<[String: Counter]>([:])
    private let kaspiHistograms = Mutex<[String: DurationHistogram]>([:])

    /// A registry with every series whose labels are known created at zero, so that a
    /// dashboard or an alert has a series to read before the first event.
    public init() {
        let registry = registry
        webhookCounters = Dictionary(
            uniqueKeysWithValues: WebhookOutcome.allCases.map {
                ($0, registry.makeCounter(descriptor: Self.webhooksName, labels: [("outcome", $0.rawValue)]))
            })
        transitionCounters = Dictionary(
            uniqueKeysWithValues: OrderState.allCases.map {
                ($0, registry.makeCounter(descriptor: Self.transitionsName, labels: [("to", $0.rawValue)]))
            })
        for outcome in RefundOutcome.allCases { _ = registry.makeCounter(descriptor: Self.refundsName, labels: [("outcome", outcome.rawValue)]) }
        for outcome in SignInOutcome.allCases { _ = registry.makeCounter(descriptor: Self.signInsName, labels: [("outcome", outcome.rawValue)]) }
        for outcome in DeliveryOutcome.allCases { _ = registry.makeCounter(descriptor: Self.deliveriesName, labels: [("outcome", outcome.rawValue)]) }
        for changed in ["changed", "unchanged"] { _ = registry.makeCounter(descriptor: Self.pollsName, labels: [("outcome", changed)]) }
        _ = registry.makeCounter(descriptor: Self.latePollsName)
        for work in ResumedWork.allCases { _ = registry.makeCounter(descriptor: Self.resumedName, labels: [("work", work.rawValue)]) }
        _ = registry.makeGauge(descriptor: Self.lagName)
        for call in Self.kaspiCalls { kaspiHistogram(call) }
    }

    @discardableResult
    private func kaspiHistogram(_ call: String) -> DurationHistogram {
        if let made = kaspiHistograms.withLock({ $0[call] }) { return made }
        let histogram = registry.makeDurationHistogram(
            descriptor: Self.kaspiName, labels: [("call", call)],
            buckets: [
                .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                .seconds(5), .seconds(10),
            ])
        kaspiHistograms.withLock { $0[call] = histogram }
        return histogram
    }

    func request(route: String, status: Int) {
        let key = "\(status) \(route)"
        if let counter = requestCounters.withLock({ $0[key] }) {
            counter.increment()
            return
        }
        let counter = registry.makeCounter(descriptor: Self.requestsName, labels: [("route", route), ("status", String(status))])
        // Routes are the router's patterns, so the keys are few; the cap is a guard.
        requestCounters.withLock { if $0.count < 1024 { $0[key] = counter } }
        counter.increment()
    }

    /// Interrupted work a retry took over and resumed.
    func resumed(_ work: ResumedWork) {
        registry.makeCounter(descriptor: Self.resumedName, labels: [("work", work.rawValue)]).increment()
    }

    /// A poll of an expired order, looking for a late payment.
    func latePoll() {
        registry.makeCounter(descriptor: Self.latePollsName).increment()
    }

    /// A status poll, and whether it changed the order.
    func poll(changed: Bool) {
        registry.makeCounter(descriptor: Self.pollsName, labels: [("outcome", changed ? "changed" : "unchanged")]).increment()
    }

    func refund(_ outcome: RefundOutcome) {
        registry.makeCounter(descriptor: Self.refundsName, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func signIn(_ outcome: SignInOutcome) {
        registry.makeCounter(descriptor: Self.signInsName, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func webhook(_ outcome: WebhookOutcome) {
        webhookCounters[outcome]?.increment()
    }

    func transition(to state: OrderState) {
        transitionCounters[state]?.increment()
    }

    func delivery(_ outcome: DeliveryOutcome, age: TimeInterval) {
        registry.makeCounter(descriptor: Self.deliveriesName, labels: [("outcome", outcome.rawValue)]).increment()
        registry.makeGauge(descriptor: Self.lagName).set(max(0, age))
    }

    /// Sets the client certificate's time left, just before the metrics are read.
    func clientCertificate(secondsLeft: TimeInterval) {
        registry.makeGauge(descriptor: Self.certificateName).set(secondsLeft)
    }

    func kaspiCall(_ call: String, duration: Duration, errorCode: String?) {
        kaspiHistogram(call).record(duration)
        if let errorCode {
            registry.makeCounter(descriptor: Self.kaspiErrorsName, labels: [("call", call), ("code", errorCode)]).increment()
        }
    }

    /// Counts a transition seen after an update whose `decide` may have run more than once.
    func counted(from before: GatewayOrder, to after: GatewayOrder) {
        if after.state != before.state { transition(to: after.state) }
    }

    /// Wraps a store decision so that a state change is counted.
    func counting(_ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) -> @Sendable (GatewayOrder) throws -> OrderChange? {
        { [self] current in
            let change = try decide(current)
            if let change, change.order.state != current.state { transition(to: change.order.state) }
            return change
        }
    }
}
