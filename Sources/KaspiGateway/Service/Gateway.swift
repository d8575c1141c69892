import Crypto
import Foundation
import KaspiGatewayStore
import KaspiSupport
import Logging
import NIOCore
import QRCodeEncoder
import Synchronization

/// An error the gateway's API answers with: `{"error": {"code", "message"}}` and a status.
/// What a merchant asks for when creating a checkout.
public struct CheckoutRequest: Sendable, Hashable {
    /// The amount, in whole tenge.
    public var amount: Int
    /// What is paid for, shown to the payer (256 characters at most).
    public var description: String?
    /// The merchant's own reference (its cart or invoice number).
    public var merchantReference: String?
    /// A JSON object, as text.
    public var metadata: String?
    /// Where a mobile app wants the payer back, e.g. `yourapp://payment`.
    public var mobileReturnURL: String?
    /// The payment link the order pays, when it pays one.
    public var paymentLinkID: String?
    /// The payer's language, `kk`, `ru` or `en`, when the shop knows it.
    public var locale: String?

    /// Creates a request.
    public init(
        amount: Int, description: String? = nil, merchantReference: String? = nil, metadata: String? = nil, mobileReturnURL: String? = nil,
        paymentLinkID: String? = nil, locale: String? = nil
    ) {
        self.locale = locale
        self.amount = amount
        self.description = description
        self.merchantReference = merchantReference
        self.metadata = metadata
        self.mobileReturnURL = mobileReturnURL
        self.paymentLinkID = paymentLinkID
    }
}

/// A webhook's amount differs from the stored order's (thrown inside the update, so nothing changes).
struct WebhookAmountMismatch: Error {
    let orderID: String
}

/// The merchant's payment service: stores orders before calling the provider, applies every
/// status report through the state machine in one transaction, reconciles pending orders,
/// and delivers signed events to the merchant's systems.
///
/// It is a few parts with one job each, sharing one ``GatewayContext``: checkouts
/// (`CheckoutService`), status reports and polling (`StatusService`), refunds with returns and
/// their reconciliation (`RefundService`), and event delivery (`OutboxDelivery`, which owns the
/// HTTP client); dashboard sign-in and the payer's client access are in `AdminAuth.swift` and
/// `ClientCheckout.swift`. Its methods are the parts' public face.
public final class Gateway: Sendable {
    /// The configuration in force.
    public let configuration: GatewayConfiguration
    /// Where orders, events and settings live.
    public let store: any GatewayStore
    /// Kaspi, behind the provider protocol (measured for metrics).
    public let provider: any PaymentProvider
    let logger: Logger
    let now: @Sendable () -> Date
    /// The Prometheus metrics served at `/metrics`.
    public let metrics: GatewayMetrics
    /// What the parts share.
    let context: GatewayContext
    /// Checkouts and remote invoices.
    let checkouts: CheckoutService
    /// Webhooks, polls and reads on request.
    let status: StatusService
    /// Refunds, returns and their reconciliation.
    let refunds: RefundService
    /// Outgoing events.
    let outbox: OutboxDelivery
    /// The dashboard's sign-in.
    let adminSignIn: AdminSignIn
    /// The payer's device's access to its order.
    let clients: ClientAccess
    /// This run of the gateway: Idempotency-Keys carry it, so that after a restart the keys
    /// left by the run before are known to be abandoned and are resumed at once.
    public let runID = GatewayID.make("run")
    /// Opens when the store is ready (migrated, old leases released): the background
    /// services start their passes then.
    let readiness = ReadinessGate()
    /// The admin listener's port (the dashboard and `/metrics`) once it listens; 0 before.
    public var adminListenerPort: Int { context.adminBoundPort.value }

    /// The admin listener's base URL once it listens, e.g. `http://127.0.0.1:8283`.
    public var adminBase: String? {
        let port = adminListenerPort
        return port == 0 ? nil : "http://\(URLHost.authority(configuration.adminHost)):\(port)"
    }

    /// Waits (a few seconds at most) until the admin listener listens; its base URL.
    public func waitForAdminListener() async -> String? {
        for _ in 0..<500 {
            if let adminBase { return adminBase }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return adminBase
    }

    private let watchedCertificate = Mutex<ClientCertificate?>(nil)

    /// The Kaspi QR API's client certificate the gateway watches (r2, r3): its time left is a
    /// metric and, in the last 30 days, a dashboard banner.
    public var clientCertificate: ClientCertificate? {
        get { watchedCertificate.withLock { $0 } }
        set { watchedCertificate.withLock { $0 = newValue } }
    }

    /// Wrong merchant API keys, per client address.
    let apiKeyFailures = FailureThrottle()

    /// Creates a gateway over a migrated store.
    ///
    /// - Parameters:
    ///   - now: the clock; injectable for tests.
    public init(
        configuration: GatewayConfiguration, store: any GatewayStore, provider: any PaymentProvider,
        logger: Logger = Logger(label: "kaspi-gateway"), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        let metrics = GatewayMetrics()
        let measured = MeasuredProvider(base: provider, metrics: metrics)
        self.metrics = metrics
        self.configuration = configuration
        self.store = store
        self.provider = measured
        self.logger = logger
        self.now = now
        let context = GatewayContext(
            configuration: configuration, store: store, provider: measured, capabilities: measured.capabilities, now: now, metrics: metrics,
            logger: logger, boundPort: BoundPort())
        self.context = context
        self.checkouts = CheckoutService(context: context)
        self.status = StatusService(context: context)
        self.refunds = RefundService(context: context)
        self.outbox = OutboxDelivery(context: context)
        self.adminSignIn = AdminSignIn(context: context)
        self.clients = ClientAccess(context: context, status: status)
    }

    /// Releases the outgoing HTTP client.
    public func shutdown() async {
        await outbox.shutdown()
    }

    /// What the provider can do beyond creating payments and reading their status (webhooks,
    /// refunds, customer returns, remote invoices), resolved once when the gateway was made.
    public var capabilities: ProviderCapabilities { context.capabilities }

    /// The public base URL: ``GatewayConfiguration/publicURL``, or on loopback the address the
    /// server is bound to. Never anything a request says (its `Host` header is the payer's to
    /// choose, and would pick where every later payer is sent).
    public var publicBase: String { context.publicBase }

    // MARK: Checkouts

    /// Validates, stores the order, then asks the provider. A crash or an ambiguous failure
    /// after the order is stored is recovered by reconciliation.
    ///
    /// - Parameters:
    ///   - reservation: the request's Idempotency-Key, reserved in the transaction that stores
    ///     the order.
    ///   - resuming: the order an earlier request with the same key stored before its run
    ///     ended (``IdempotencyMiddleware`` took the key over): the work goes on from there, the
    ///     provider asked again as one that may have seen the create
    ///     (``ProviderPaymentRequest/resuming``).
    public func createCheckout(
        _ request: CheckoutRequest, kind: OrderKind, reserving reservation: IdempotencyReservation? = nil, resuming: String? = nil,
        answer: (@Sendable (GatewayOrder, ProviderQR?) throws -> IdempotentResponse)? = nil
    ) async throws(GatewayError) -> (order: GatewayOrder, qr: ProviderQR?, answered: IdempotentResponse?) {
        try await checkouts.createCheckout(request, kind: kind, reserving: reservation, resuming: resuming, answer: answer)
    }

    /// The client a phone number belongs to, to show before billing them (r3).
    public func remoteClientName(phoneNumber: String) async throws(GatewayError) -> String {
        try await checkouts.remoteClientName(phoneNumber: phoneNumber)
    }

    /// Bills a phone number (r3): the order is stored first, then Kaspi is asked, as for
    /// checkouts; it is read only on request, and once at the end of its 24 hours.
    public func createRemoteInvoice(
        _ request: CheckoutRequest, phoneNumber: String, comment: String?, reserving reservation: IdempotencyReservation? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        try await checkouts.createRemoteInvoice(request, phoneNumber: phoneNumber, comment: comment, reserving: reservation)
    }

    /// Cancels an unpaid remote invoice.
    public func cancelRemoteInvoice(orderID: String) async throws(GatewayError) -> GatewayOrder {
        try await checkouts.cancelRemoteInvoice(orderID: orderID)
    }

    // MARK: Status reports

    /// Asks the provider for an order's status and applies what it means (``PollPolicy``).
    ///
    /// - Returns: the order after the report.
    @discardableResult
    public func refreshStatus(_ order: GatewayOrder, source: OrderStateMachine.Source) async throws -> GatewayOrder {
        try await status.refreshStatus(order, source: source)
    }

    /// Applies a provider webhook from its raw body: verified, checked against the stored
    /// order (exists, same amount), applied idempotently, committed before the caller answers.
    public func handleWebhook(_ body: [UInt8]) async throws(GatewayError) -> GatewayOrder {
        try await status.handleWebhook(body)
    }

    /// What the webhook route answers when the provider sends no webhooks, counted and logged
    /// as a rejected webhook.
    func refuseWebhookWithoutCapability() -> GatewayError {
        let refusal = StatusService.webhooksUnsupported
        metrics.webhook(.rejected)
        logger.warning("Webhook rejected", metadata: ["error.code": "\(refusal.code)"])
        return GatewayError(.invalidRequest, refusal.code, refusal.message)
    }

    /// Reads an order's status now, because someone asked (the dashboard's refresh, the API):
    /// at most once every 10 s an order.
    public func refreshOnRequest(orderID: String) async throws(GatewayError) -> GatewayOrder {
        try await status.refreshOnRequest(orderID: orderID)
    }

    /// Polls the orders that are due, once. Returns how many were handled.
    @discardableResult
    public func reconcileOnce(limit: Int? = nil) async throws -> Int {
        try await status.reconcileOnce(limit: limit)
    }

    /// Gives back the leases this instance held before a restart, so that its claimed orders
    /// and events are taken up at once rather than after their leases lapse.
    public func releaseOwnLeases() async {
        await status.releaseOwnLeases()
    }

    // MARK: Refunds

    /// Refunds part or all of a paid order: the amount is reserved in the database first (so
    /// concurrent refunds can never exceed the paid amount), then the provider is asked.
    ///
    /// - Parameters:
    ///   - customerReturnID: a return QR the customer scanned, on the Kaspi QR API's r2.
    ///   - reservation: the request's Idempotency-Key, reserved with the refund.
    ///   - resuming: the refund an interrupted earlier request with the same key reserved.
    public func refund(
        orderID: String, amount: Int?, customerReturnID: String? = nil, reserving reservation: IdempotencyReservation? = nil,
        resuming: String? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        try await refunds.refund(orderID: orderID, amount: amount, customerReturnID: customerReturnID, reserving: reservation, resuming: resuming)
    }

    /// Records a refund made in the Kaspi Pay app (r1's only way, a correction elsewhere).
    public func recordManualRefund(
        orderID: String, amount: Int, note: String?, reserving reservation: IdempotencyReservation? = nil, resuming: String? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        try await refunds.recordManualRefund(orderID: orderID, amount: amount, note: note, reserving: reservation, resuming: resuming)
    }

    /// Settles refunds whose outcome is not known from Kaspi's own record, once.
    ///
    /// - Returns: how many refunds were settled.
    @discardableResult
    public func resolveRefundsOnce(limit: Int? = nil) async throws -> Int {
        try await refunds.resolveRefundsOnce(limit: limit)
    }

    /// Settles a refund by hand, after a person checked Kaspi's record.
    public func settleRefund(id refundID: String, orderID: String, succeeded: Bool) async throws(GatewayError) -> GatewayOrder {
        try await refunds.settleRefund(id: refundID, orderID: orderID, succeeded: succeeded)
    }

    /// A return QR for the customer to scan, the start of an r2 refund.
    public func createCustomerReturn() async throws(GatewayError) -> ProviderCustomerReturn {
        try await refunds.createCustomerReturn()
    }

    /// A customer return's status and, once the customer scanned, their purchases with the
    /// gateway's orders for them.
    public func customerReturn(id: String) async throws(GatewayError) -> (ProviderCustomerReturnStatus, [String: GatewayOrder]) {
        try await refunds.customerReturn(id: id)
    }

    // MARK: The dashboard and the payer's device

    /// Prepares the dashboard's secrets. With no password configured, one is generated the
    /// first time and returned so that it can be printed once; later starts reuse its hash.
    ///
    /// - Returns: the generated password, when one was generated now.
    @discardableResult
    public func prepareAdmin() async throws -> String? {
        try await adminSignIn.prepareAdmin()
    }

    /// The order's client secret, for the payer's device: it reads only this order's
    /// ``ClientOrderView``. Never give the merchant's API key to an app; give it this.
    public func clientSecret(orderID: String) async throws(GatewayError) -> String {
        try await clients.clientSecret(orderID: orderID)
    }

    /// The order as its payer's device may see it, for the holder of its client secret (an
    /// unknown order and a wrong secret get the same answer).
    ///
    /// - Parameter client: the caller's address, for the rate limits.
    public func clientOrder(id: String, clientSecret: String?, client: String) async throws(GatewayError) -> ClientOrderView {
        try await clients.clientOrder(id: id, clientSecret: clientSecret, client: client)
    }

    // MARK: Events and maintenance

    /// Delivers the outgoing events that are due, once. Returns how many were attempted.
    @discardableResult
    public func deliverEventsOnce(limit: Int? = nil) async throws -> Int {
        try await outbox.deliverEventsOnce(limit: limit)
    }

    /// Deletes expired Idempotency-Keys, once (the worker runs it every
    /// ``GatewayConfiguration/maintenanceInterval``).
    ///
    /// - Returns: how many were deleted.
    @discardableResult
    public func cleanUpOnce() async throws -> Int {
        let deleted = try await store.deleteIdempotencyKeys(createdBefore: now().addingTimeInterval(-configuration.idempotencyKeyLifetime))
        if deleted > 0 { logger.info("Expired idempotency keys deleted", metadata: ["count": "\(deleted)"]) }
        return deleted
    }
}
