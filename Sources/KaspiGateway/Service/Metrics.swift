import Foundation
import Hummingbird
import KaspiGatewayStore
import Prometheus

/// The gateway's Prometheus metrics, served at `/metrics`. The registry belongs to the
/// gateway (no global bootstrap), so several gateways can live in one process.
public final class GatewayMetrics: Sendable {
    /// The registry `/metrics` serves.
    public let registry = PrometheusCollectorRegistry()

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "kaspi", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
    }

    private var requestsName: MetricNameDescriptor { Self.name("http_requests", "total", "HTTP requests by route and status") }
    private var webhooksName: MetricNameDescriptor { Self.name("webhooks", "total", "Kaspi webhooks by outcome") }
    private var latePollsName: MetricNameDescriptor { Self.name("late_polls", "total", "Polls of expired orders, looking for late payments") }
    private var refundsName: MetricNameDescriptor { Self.name("refunds", "total", "Refunds by outcome") }
    private var pollsName: MetricNameDescriptor {
        Self.name("status_polls", "total", "Status polls by outcome: changed the order, or not (those stay out of the timeline)")
    }
    private var signInsName: MetricNameDescriptor {
        Self.name("admin_sign_ins", "total", "Dashboard sign-ins by outcome: accepted, refused, throttled")
    }
    private var transitionsName: MetricNameDescriptor { Self.name("transitions", "total", "Order state transitions by target state") }
    private var deliveriesName: MetricNameDescriptor { Self.name("event_deliveries", "total", "Outgoing event delivery attempts by outcome") }
    private var lagName: MetricNameDescriptor { Self.name("outbox_lag", "seconds", "Age of the oldest outgoing event at its last delivery attempt") }
    private var kaspiName: MetricNameDescriptor { Self.name("kaspi_call_duration", "seconds", "Latency of calls to Kaspi by call") }
    private var kaspiErrorsName: MetricNameDescriptor { Self.name("kaspi_errors", "total", "Failed calls to Kaspi by call and code") }

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
    /// An outgoing event's delivery attempt.
    enum DeliveryOutcome: String, CaseIterable { case delivered, failed }
    /// The calls to Kaspi that are measured.
    static let kaspiCalls = [
        "create_payment", "create_qr", "status", "refund", "remote.client_info", "remote.create", "remote.cancel", "return.create", "return.status",
    ]

    /// A registry with every series whose labels are known created at zero, so that a
    /// dashboard or an alert has a series to read before the first event.
    public init() {
        for outcome in WebhookOutcome.allCases { _ = registry.makeCounter(descriptor: webhooksName, labels: [("outcome", outcome.rawValue)]) }
        for outcome in RefundOutcome.allCases { _ = registry.makeCounter(descriptor: refundsName, labels: [("outcome", outcome.rawValue)]) }
        for outcome in SignInOutcome.allCases { _ = registry.makeCounter(descriptor: signInsName, labels: [("outcome", outcome.rawValue)]) }
        for outcome in DeliveryOutcome.allCases { _ = registry.makeCounter(descriptor: deliveriesName, labels: [("outcome", outcome.rawValue)]) }
        for changed in ["changed", "unchanged"] { _ = registry.makeCounter(descriptor: pollsName, labels: [("outcome", changed)]) }
        for state in OrderState.allCases { _ = registry.makeCounter(descriptor: transitionsName, labels: [("to", state.rawValue)]) }
        _ = registry.makeCounter(descriptor: latePollsName)
        _ = registry.makeGauge(descriptor: lagName)
        for call in Self.kaspiCalls { kaspiHistogram(call) }
    }

    @discardableResult
    private func kaspiHistogram(_ call: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: kaspiName, labels: [("call", call)],
            buckets: [
                .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                .seconds(5), .seconds(10),
            ])
    }

    func request(route: String, status: Int) {
        registry.makeCounter(descriptor: requestsName, labels: [("route", route), ("status", String(status))]).increment()
    }

    /// A poll of an expired order, looking for a late payment.
    func latePoll() {
        registry.makeCounter(descriptor: latePollsName).increment()
    }

    /// A status poll, and whether it changed the order.
    func poll(changed: Bool) {
        registry.makeCounter(descriptor: pollsName, labels: [("outcome", changed ? "changed" : "unchanged")]).increment()
    }

    func refund(_ outcome: RefundOutcome) {
        registry.makeCounter(descriptor: refundsName, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func signIn(_ outcome: SignInOutcome) {
        registry.makeCounter(descriptor: signInsName, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func webhook(_ outcome: WebhookOutcome) {
        registry.makeCounter(descriptor: webhooksName, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func transition(to state: OrderState) {
        registry.makeCounter(descriptor: transitionsName, labels: [("to", state.rawValue)]).increment()
    }

    func delivery(_ outcome: DeliveryOutcome, age: TimeInterval) {
        registry.makeCounter(descriptor: deliveriesName, labels: [("outcome", outcome.rawValue)]).increment()
        registry.makeGauge(descriptor: lagName).set(max(0, age))
    }

    func kaspiCall(_ call: String, duration: Duration, errorCode: String?) {
        kaspiHistogram(call).record(duration)
        if let errorCode {
            registry.makeCounter(descriptor: kaspiErrorsName, labels: [("call", call), ("code", errorCode)]).increment()
        }
    }

    /// Wraps a store decision so that a state change is counted.
    /// Counts a transition seen after an update whose `decide` may have run more than once.
    func counted(from before: GatewayOrder, to after: GatewayOrder) {
        if after.state != before.state { transition(to: after.state) }
    }

    func counting(_ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) -> @Sendable (GatewayOrder) throws -> OrderChange? {
        { [self] current in
            let change = try decide(current)
            if let change, change.order.state != current.state { transition(to: change.order.state) }
            return change
        }
    }
}

/// Counts every request by its route pattern and status.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch {
            metrics.request(route: context.endpointPath ?? "unmatched", status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
    }
}

/// A provider decorator that measures every call to Kaspi.
struct MeasuredProvider: PaymentProvider {
    let base: any PaymentProvider
    let metrics: GatewayMetrics

    var name: String { base.name }
    var sendsWebhooks: Bool { base.sendsWebhooks }
    var refundMethod: RefundMethod { base.refundMethod }
    var supportsRemoteInvoices: Bool { base.supportsRemoteInvoices }
    func clientName(phoneNumber: String) async throws(ProviderError) -> String {
        try await measure("remote.client_info") { () async throws(ProviderError) in try await base.clientName(phoneNumber: phoneNumber) }
    }
    func createRemoteInvoice(_ request: ProviderPaymentRequest, phoneNumber: String, comment: String?) async throws(ProviderError) -> ProviderPayment
    {
        try await measure("remote.create") { () async throws(ProviderError) in
            try await base.createRemoteInvoice(request, phoneNumber: phoneNumber, comment: comment)
        }
    }
    func createCustomerReturn() async throws(ProviderError) -> ProviderCustomerReturn {
        try await measure("return.create") { () async throws(ProviderError) in try await base.createCustomerReturn() }
    }
    func customerReturn(id: String) async throws(ProviderError) -> ProviderCustomerReturnStatus {
        try await measure("return.status") { () async throws(ProviderError) in try await base.customerReturn(id: id) }
    }
    func refund(_ order: GatewayOrder, amount: Int, customerReturnID: String?) async throws(ProviderError) -> ProviderRefund {
        try await measure("refund") { () async throws(ProviderError) in
            try await base.refund(order, amount: amount, customerReturnID: customerReturnID)
        }
    }
    func cancelRemoteInvoice(_ order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await measure("remote.cancel") { () async throws(ProviderError) in try await base.cancelRemoteInvoice(order) }
    }
    func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? { base.pollPlan(for: order, now: now) }

    private func measure<T>(_ call: String, _ body: () async throws(ProviderError) -> T) async throws(ProviderError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            metrics.kaspiCall(call, duration: ContinuousClock.now - started, errorCode: nil)
            return result
        } catch {
            metrics.kaspiCall(call, duration: ContinuousClock.now - started, errorCode: error.code)
            throw error
        }
    }

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await measure("create_payment") { () throws(ProviderError) in try await base.createPayment(request) }
    }
    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        try await measure("create_qr") { () throws(ProviderError) in try await base.createQR(request) }
    }
    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await measure("status") { () throws(ProviderError) in try await base.status(of: order) }
    }
    func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        try await measure("refund") { () throws(ProviderError) in try await base.refund(order, amount: amount) }
    }
    func readWebhook(_ body: [UInt8]) throws(ProviderError) -> ProviderWebhook { try base.readWebhook(body) }
}
