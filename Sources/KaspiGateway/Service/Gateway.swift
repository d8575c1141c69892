import AsyncHTTPClient
import Crypto
import Foundation
import KaspiGatewayStore
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

    /// Creates a request.
    public init(
        amount: Int, description: String? = nil, merchantReference: String? = nil, metadata: String? = nil, mobileReturnURL: String? = nil,
        paymentLinkID: String? = nil
    ) {
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
public final class Gateway: Sendable {
    /// The configuration in force.
    public let configuration: GatewayConfiguration
    /// Where orders, events and settings live.
    public let store: any GatewayStore
    /// Kaspi, behind the provider protocol (measured for metrics).
    public let provider: any PaymentProvider
    let logger: Logger
    let now: @Sendable () -> Date
    let httpClient: HTTPClient
    /// The Prometheus metrics served at `/metrics`.
    public let metrics: GatewayMetrics
    let admin = Mutex<AdminSecrets?>(nil)
    /// Failed dashboard sign-ins, per client address and in all.
    let signInThrottle = SignInThrottle()
    /// This run of the gateway: Idempotency-Keys carry it, so that after a restart the keys
    /// left by the run before are known to be abandoned and are resumed at once.
    public let runID = GatewayID.make("run")
    /// The port the server is bound to, once it runs (the configured one may be 0).
    let boundPort = Atomic<Int>(0)
    /// Opens when the store is ready (migrated, old leases released): the background
    /// services start their passes then.
    let readiness = ReadinessGate()
    /// When each order was last read from Kaspi on request (``refreshOnRequest(orderID:)``).
    let lastRefresh = Mutex<[String: Date]>([:])
    /// When each order was last read from Kaspi for the payer's app.
    let lastClientRefresh = Mutex<[String: Date]>([:])
    /// The key client secrets are derived from, once read from the database.
    let clientKey = Mutex<SymmetricKey?>(nil)
    /// The public client endpoint's rate limits.
    let clientThrottle = ClientThrottle()
    /// Return QRs made from the dashboard, to show while the customer scans (id → PNG base64).
    let returnQRs = Mutex<(order: [String], byID: [String: String])>(([], [:]))

    /// Creates a gateway over a migrated store.
    ///
    /// - Parameters:
    ///   - now: the clock; injectable for tests.
    public init(
        configuration: GatewayConfiguration, store: any GatewayStore, provider: any PaymentProvider,
        logger: Logger = Logger(label: "kaspi-gateway"), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        let metrics = GatewayMetrics()
        self.metrics = metrics
        self.configuration = configuration
        self.store = store
        self.provider = MeasuredProvider(base: provider, metrics: metrics)
        self.logger = logger
        self.now = now
        var client = HTTPClient.Configuration()
        client.redirectConfiguration = .disallow
        client.timeout = .init(connect: .seconds(5), read: .seconds(10))
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
    }

    /// Releases the outgoing HTTP client.
    public func shutdown() async {
        try? await httpClient.shutdown()
    }

    /// The public base URL: ``GatewayConfiguration/publicURL``, or on loopback the address the
    /// server is bound to. Never anything a request says (its `Host` header is the payer's to
    /// choose, and would pick where every later payer is sent).
    public var publicBase: String {
        let port = boundPort.load(ordering: .relaxed)
        return configuration.publicBase(boundPort: port == 0 ? nil : port)
    }

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
        let base = publicBase
        guard let returnURL = URL(string: "\(base)/pay/return/"), let failURL = URL(string: "\(base)/pay/fail/") else {
            throw GatewayError(.misconfigured, "PUBLIC_URL_INVALID", "The gateway's public URL is not a valid URL; set publicUrl.")
        }
        let order: GatewayOrder
        if let resuming {
            let stored: GatewayOrder?
            do { stored = try await store.order(id: resuming) } catch { throw GatewayError.storage(error) }
            guard let stored, stored.kind == kind else { throw Self.notResumable(resuming) }
            if stored.paymentURL != nil || stored.qrToken != nil {
                // The provider's answer was stored; only the request's own answer was lost.
                let qr = stored.qrToken.map { ProviderQR(token: $0, png: (try? QRCode(encoding: $0).png(scale: 6)) ?? []) }
                return (stored, qr, nil)
            }
            guard stored.state == .created || stored.state == .pending else { throw Self.notResumable(resuming) }
            logger.notice("Resuming an interrupted checkout", metadata: ["order": "\(stored.id)"])
            metrics.resumed(.checkout)
            order = stored
        } else {
            try Self.validate(request)
            let created = now()
            order = GatewayOrder(
                id: GatewayID.make("ord"), provider: provider.name, providerOrderID: GatewayID.make("kk"), kind: kind,
                amount: request.amount, description: request.description, merchantReference: request.merchantReference,
                metadata: request.metadata, mobileReturnURL: request.mobileReturnURL, paymentLinkID: request.paymentLinkID,
                createdAt: created, nextPollAt: created.addingTimeInterval(configuration.firstPollAfter))
            do { try await store.insert(order, reserving: reservation) } catch { throw GatewayError.storage(error) }
        }
        let paymentRequest = ProviderPaymentRequest(
            providerOrderID: order.providerOrderID, amount: order.amount, description: order.description,
            returnURL: returnURL.appending(path: order.id), failURL: failURL.appending(path: order.id),
            merchantReference: order.merchantReference, resuming: resuming != nil)
        do {
            var qr: ProviderQR? = nil
            var paymentURL: String? = nil
            var providerState: String? = nil
            var providerPaymentID: String? = nil
            if kind == .qr {
                qr = try await provider.createQR(paymentRequest)
                (providerState, providerPaymentID) = (qr?.providerState, qr?.providerPaymentID)
            } else {
                let payment = try await provider.createPayment(paymentRequest)
                (paymentURL, providerState, providerPaymentID) = (payment.paymentURL, payment.providerState, payment.providerPaymentID)
            }
            let at = now()
            var planned = order
            planned.providerState = providerState
            // The provider's own interval when it hands one out (the Kaspi QR API does).
            let firstPoll = provider.pollPlan(for: planned, now: at)?.nextPollAt ?? at.addingTimeInterval(configuration.firstPollAfter)
            let (url, token, state, paymentID, madeQR) = (paymentURL, qr?.token, providerState, providerPaymentID, qr)
            // The answer of an idempotent request goes in the same commit as the payment URL.
            // `decide` runs on this thread (both stores decide on a copy before they write) and
            // may run again on the stored order if it changed; the last run's answer is stored.
            let answered = Mutex<IdempotentResponse?>(nil)
            // From the copy just stored: one statement on PostgreSQL unless something changed it.
            let updated = try await store.update(from: order) { current in
                guard
                    var change = OrderStateMachine.providerAccepted(
                        current, paymentURL: url, qrToken: token, at: at, firstPollAt: firstPoll, providerState: state, providerPaymentID: paymentID)
                else {
                    answered.withLock { $0 = nil }
                    return nil
                }
                if let reservation, let answer {
                    let response = try answer(change.order, madeQR)
                    change.answer = IdempotentAnswer(reservation: reservation, response: response)
                    answered.withLock { $0 = response }
                }
                return change
            }
            metrics.counted(from: order, to: updated)
            logger.info("Checkout created", metadata: ["order": "\(order.id)", "kind": "\(kind.rawValue)", "amount": "\(order.amount)"])
            return (updated, qr, answered.withLock { $0 })
        } catch let error as ProviderError {
            if error.ambiguous {
                logger.warning(
                    "Provider call ambiguous; reconciliation will recover the order",
                    metadata: ["order": "\(order.id)", "error.code": "\(error.code)"])
                throw GatewayError(
                    .providerUnavailable, "PROVIDER_UNAVAILABLE",
                    "Kaspi did not answer in time; order \(order.id) is stored and will be reconciled. Check it with GET /v1/orders/\(order.id) rather than creating another."
                )
            }
            let at = now()
            _ = try? await store.update(
                orderID: order.id, metrics.counting { OrderStateMachine.expire($0, at: at, reason: "the provider refused the order: \(error.code)") })
            throw Self.refusal(error)
                ?? GatewayError(.providerRefused, "PROVIDER_REFUSED", "Kaspi refused the order (\(error.code)): \(error.message)")
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Checks a checkout request's fields.
    static func validate(_ request: CheckoutRequest) throws(GatewayError) {
        guard request.amount >= 100, request.amount <= 100_000_000 else {
            throw .invalid("amount must be an integer number of tenge from 100 to 100000000.")
        }
        if let description = request.description, description.count > 256 { throw .invalid("description must be at most 256 characters.") }
        if let reference = request.merchantReference, reference.isEmpty || reference.count > 128 {
            throw .invalid("merchantReference must be 1 to 128 characters.")
        }
        if let metadata = request.metadata, metadata.utf8.count > 4096 { throw .invalid("metadata must be at most 4 KiB of JSON.") }
        if let mobile = request.mobileReturnURL {
            guard let url = URL(string: mobile), let scheme = url.scheme, !scheme.isEmpty, mobile.count <= 512 else {
                throw .invalid("mobileReturnUrl must be an absolute URL such as yourapp://payment.")
            }
        }
    }

    /// The answer to a retry whose interrupted work cannot be resumed (it ended otherwise
    /// meanwhile): look the resource up, and use a new key for a new attempt.
    static func notResumable(_ resource: String) -> GatewayError {
        GatewayError(
            .conflict, "IDEMPOTENCY_INTERRUPTED",
            "The first request with this Idempotency-Key was interrupted, and what it created (\(resource)) has moved on since; look that up, and use a new key for a new attempt."
        )
    }

    // MARK: Status reports

    /// Asks the provider for an order's status and applies what it means (``PollPolicy``):
    /// the polling fallback, and a read on request.
    ///
    /// - Returns: the order after the report.
    @discardableResult
    public func refreshStatus(_ order: GatewayOrder, source: OrderStateMachine.Source) async throws -> GatewayOrder {
        guard !order.state.isFinal || order.state == .expired else { return order }
        let settings = PollPolicy.Settings(configuration)
        let status: ProviderStatus
        do {
            status = try await provider.status(of: order)
        } catch {
            let at = now()
            guard case .expire(let reason, let late)? = PollPolicy.outcome(ofFailure: error.notFound, for: order, at: at, settings: settings)
            else { throw error }
            // The create call never arrived (and cannot still be in flight): nothing can be paid.
            return try await store.update(
                orderID: order.id, metrics.counting { OrderStateMachine.expire($0, at: at, reason: "\(reason) (\(error.message))", latePollAt: late) }
            )
        }
        let at = now()
        var current = order
        if order.state == .created {
            let firstPoll = at.addingTimeInterval(configuration.firstPollAfter)
            current = try await store.update(
                orderID: order.id,
                metrics.counting { OrderStateMachine.providerAccepted($0, paymentURL: nil, qrToken: nil, at: at, firstPollAt: firstPoll) })
        }
        if let state = status.providerState {
            let note = status.providerStateNote ?? "the provider reported \(status.providerStatus ?? status.report.rawValue)"
            current = try await store.update(orderID: current.id) { OrderStateMachine.recordProviderState($0, state, at: at, detail: note) }
        }
        let outcome = PollPolicy.outcome(
            of: status.report, providerWord: status.providerStatus, for: current, plan: provider.pollPlan(for: current, now: at), answeredAt: at,
            settings: settings)
        let updated: GatewayOrder
        switch outcome {
        case .expire(let reason, let late):
            updated = try await store.update(
                orderID: current.id, metrics.counting { OrderStateMachine.expire($0, at: at, reason: reason, latePollAt: late) })
        case .report(let report):
            let instance = configuration.instanceID
            updated = try await store.update(
                orderID: current.id,
                metrics.counting {
                    OrderStateMachine.apply(report, transactionID: status.transactionID, source: source, to: $0, at: at, detail: "by \(instance)")
                })
        }
        metrics.poll(changed: updated.version != order.version)
        return updated
    }

    /// Applies a provider webhook from its raw body: verified, checked against the stored
    /// order (exists, same amount), applied idempotently, committed before the caller answers.
    public func handleWebhook(_ body: [UInt8]) async throws(GatewayError) -> GatewayOrder {
        guard body.count <= 16 * 1024 else { throw GatewayError(.tooLarge, "WEBHOOK_BODY_TOO_LARGE", "A webhook body is at most 16 KiB.") }
        let event: ProviderWebhook
        do { event = try provider.readWebhook(body) } catch {
            metrics.webhook(.rejected)
            logger.warning("Webhook rejected", metadata: ["error.code": "\(error.code)"])
            throw GatewayError(.invalidRequest, error.code, error.message)
        }
        let amount = event.amount
        let transactionID = event.report == .approved && configuration.confirmPaidWebhooks ? try await confirmPaid(event) : event.transactionID
        let at = now()
        do {
            // Looked up, checked and changed in one write: one job of a group commit on SQLite.
            let (before, updated) = try await store.update(provider: provider.name, providerOrderID: event.providerOrderID) { current in
                guard current.amount == amount else { throw WebhookAmountMismatch(orderID: current.id) }
                // Every webhook received shows in the timeline, even one that changes nothing.
                return OrderStateMachine.apply(event.report, transactionID: transactionID, source: .webhook, to: current, at: at)
                    ?? OrderStateMachine.noted(event.report, source: .webhook, on: current, at: at)
            }
            metrics.counted(from: before, to: updated)
            metrics.webhook(
                updated.state != before.state || updated.transactionID != before.transactionID || updated.needsReview != before.needsReview
                    ? .applied : .unchanged)
            return updated
        } catch StoreError.orderNotFound {
            metrics.webhook(.rejected)
            logger.warning("Webhook for an unknown order rejected", metadata: ["providerOrderId": "\(event.providerOrderID)"])
            throw GatewayError(
                .invalidRequest, "WEBHOOK_UNKNOWN_ORDER", "No order \(event.providerOrderID) here; the webhook is for another shop or forged.")
        } catch let mismatch as WebhookAmountMismatch {
            metrics.webhook(.rejected)
            logger.warning("Webhook with a wrong amount rejected", metadata: ["order": "\(mismatch.orderID)"])
            throw GatewayError(.invalidRequest, "WEBHOOK_AMOUNT_MISMATCH", "The webhook's amount differs from the order's; nothing was changed.")
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Asks Kaspi whether an `APPROVED` webhook is true before it may make an order paid. The
    /// guide's signature covers only `orderId + amount`, so a captured `DECLINED` webhook can be
    /// re-sent as `APPROVED`; Kaspi's own status call cannot be forged.
    ///
    /// - Returns: the transaction id to record (Kaspi's, else the webhook's).
    /// - Throws: `WEBHOOK_NOT_CONFIRMED` (409) when Kaspi does not report the order approved;
    ///   the refusal is in the order's timeline and in metrics, and nothing else changes.
    ///   `WEBHOOK_CONFIRMATION_UNAVAILABLE` (503) when Kaspi could not be asked, so that Kaspi
    ///   sends the webhook again (and reconciliation asks meanwhile).
    func confirmPaid(_ event: ProviderWebhook) async throws(GatewayError) -> String? {
        let order: GatewayOrder?
        do { order = try await store.order(provider: provider.name, providerOrderID: event.providerOrderID) } catch {
            throw GatewayError.storage(error)
        }
        // Unknown orders and wrong amounts are refused by the update itself; an order already
        // paid with its transaction id recorded changes only in its timeline.
        guard let order, order.amount == event.amount, order.state != .paid || order.transactionID == nil else { return event.transactionID }
        let status: ProviderStatus
        do { status = try await provider.status(of: order) } catch {
            metrics.webhook(.unconfirmed)
            logger.warning(
                "An APPROVED webhook could not be confirmed with Kaspi; not applied",
                metadata: ["order": "\(order.id)", "error.code": "\(error.code)"])
            throw GatewayError(
                .providerUnavailable, "WEBHOOK_CONFIRMATION_UNAVAILABLE",
                "Kaspi's status could not be read to confirm the payment; send the webhook again later.")
        }
        if status.report == .approved { return status.transactionID ?? event.transactionID }
        metrics.webhook(.unconfirmed)
        logger.warning(
            "An APPROVED webhook that Kaspi does not confirm was refused",
            metadata: ["order": "\(order.id)", "kaspi.status": "\(status.report.rawValue)"])
        let at = now()
        let reported = status.report
        _ = try? await store.update(orderID: order.id) { current in
            OrderStateMachine.unconfirmed(.approved, confirmed: reported, source: .webhook, on: current, at: at)
        }
        throw GatewayError(
            .conflict, "WEBHOOK_NOT_CONFIRMED", "Kaspi reports this order as \(status.report.rawValue), not APPROVED; the webhook changed nothing.")
    }

    // MARK: Refunds

    /// Refunds part or all of a paid order: the amount is reserved in the database first (so
    /// concurrent refunds can never exceed the paid amount), then the provider is asked.
    ///
    /// - Parameter reservation: the request's Idempotency-Key, reserved in the transaction
    ///   that reserves the refund.
    ///   - customerReturnID: a return QR the customer scanned (``createCustomerReturn()``), for
    ///     providers that refund with the customer present (the Kaspi QR API's r2).
    ///   - resuming: the refund an earlier request with the same key reserved before its run
    ///     ended: settled from Kaspi's record once no call can still be in flight
    ///     (``GatewayConfiguration/refundSettleAfter``), and sent only if Kaspi's record shows
    ///     it never happened, so it never reaches Kaspi twice.
    public func refund(
        orderID: String, amount requested: Int?, customerReturnID: String? = nil, reserving reservation: IdempotencyReservation? = nil,
        resuming: String? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        var reservation = reservation
        if let resuming {
            switch try await resumeRefund(id: resuming, orderID: orderID) {
            case .done(let order): return order
            case .neverHappened:
                // Sent now, as a new refund; the key is held already (taken over).
                reservation = nil
            }
        }
        let order: GatewayOrder?
        do { order = try await store.order(id: orderID) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(orderID) }
        switch provider.refundMethod {
        case .direct: break
        case .manual:
            throw GatewayError(
                .conflict, "REFUND_IN_KASPI_APP",
                "Kaspi's r1 scheme has no refunds through the API: refund in the Kaspi Pay app, then record it (POST /v1/orders/\(orderID)/manual-refunds)."
            )
        case .customerPresent:
            guard customerReturnID != nil else {
                throw GatewayError(
                    .conflict, "REFUND_NEEDS_CUSTOMER",
                    "Kaspi's r2 scheme refunds with the customer present: create a return QR for them to scan (POST /v1/returns), then refund with its returnId."
                )
            }
        }
        let amount = requested ?? (order.amount - order.refundedAmount)
        guard amount >= 1 else { throw .invalid("amount must be at least 1 tenge (and something must remain to refund).") }
        let refundID = GatewayID.make("rf")
        let reserved: GatewayOrder
        do { reserved = try await store.recordRefund(orderID: orderID, amount: amount, refundID: refundID, at: now(), reserving: reservation) } catch
        {
            throw GatewayError.storage(error)
        }
        do {
            let done = try await provider.refund(reserved, amount: amount, customerReturnID: customerReturnID)
            let at = now()
            do {
                let updated = try await store.update(orderID: orderID) {
                    OrderStateMachine.refundConfirmed($0, amount: amount, refundID: refundID, providerRefundID: done.refundID, at: at)
                }
                metrics.refund(.succeeded)
                return updated
            } catch {
                // Kaspi refunded it; the refund stays pending in the database, and the
                // reconciliation pass records it from Kaspi's own record.
                logger.error(
                    "Kaspi confirmed a refund that could not be recorded; reconciliation records it",
                    metadata: ["order": "\(orderID)", "refund": "\(refundID)"])
                metrics.refund(.unrecorded)
                throw GatewayError(
                    .storageUnavailable, "REFUND_NOT_RECORDED",
                    "Kaspi confirmed refund \(refundID), but it could not be recorded yet; it is recorded shortly from Kaspi's record. Do not refund again."
                )
            }
        } catch let error as ProviderError where !error.ambiguous {
            let at = now()
            do {
                _ = try await store.update(orderID: orderID) {
                    OrderStateMachine.refundReleased($0, amount: amount, refundID: refundID, reason: "Kaspi refused it (\(error.code))", at: at)
                }
                metrics.refund(.failed)
            } catch {
                // Still pending in the database: reconciliation releases it from Kaspi's record.
                logger.error(
                    "A refused refund could not be released; reconciliation releases it", metadata: ["order": "\(orderID)", "refund": "\(refundID)"])
                metrics.refund(.unrecorded)
            }
            throw Self.refusal(error)
                ?? GatewayError(.providerRefused, "PROVIDER_REFUSED", "Kaspi refused the refund (\(error.code)): \(error.message)")
        } catch let error as GatewayError {
            throw error
        } catch {
            let code = (error as? ProviderError)?.code ?? "UNKNOWN"
            logger.error(
                "Refund reserved but its outcome at the provider is unknown; reconciliation settles it",
                metadata: ["order": "\(orderID)", "error.code": "\(code)"])
            metrics.refund(.unknown)
            let at = now()
            do {
                _ = try await store.update(orderID: orderID) {
                    OrderStateMachine.refundUnknown($0, amount: amount, refundID: refundID, reason: code, at: at)
                }
            } catch {
                logger.error(
                    "A refund with an unknown outcome could not be marked; it stays pending until reconciliation",
                    metadata: ["order": "\(orderID)", "refund": "\(refundID)"])
            }
            throw GatewayError(
                .providerOutcomeUnknown, "PROVIDER_REFUND_UNKNOWN",
                "Kaspi's answer to refund \(refundID) was lost (\(code)); it is settled from Kaspi's record by reconciliation. Do not refund again before it is."
            )
        }
    }

    /// Where an interrupted refund stands once resumed.
    enum ResumedRefund {
        /// It happened: the order as it is now.
        case done(GatewayOrder)
        /// Kaspi's record shows it never happened (it is released): it may be sent now.
        case neverHappened
    }

    /// Picks up a refund an interrupted request reserved: its outcome if known; else, once no
    /// call of that request can still reach Kaspi, Kaspi's record settles it.
    ///
    /// - Throws: `IDEMPOTENCY_IN_PROGRESS` with a `Retry-After` while a call may still be in
    ///   flight or Kaspi cannot be asked (the key is handed back, not answered), and
    ///   `PROVIDER_REFUND_UNKNOWN` when Kaspi's record does not settle it.
    func resumeRefund(id refundID: String, orderID: String) async throws(GatewayError) -> ResumedRefund {
        func current() async throws(GatewayError) -> (RefundRecord?, GatewayOrder?) {
            do {
                return (try await store.refunds(orderID: orderID).first { $0.id == refundID }, try await store.order(id: orderID))
            } catch {
                throw GatewayError.storage(error)
            }
        }
        var (refund, order) = try await current()
        guard let found = refund, let stored = order else { throw Self.notResumable(refundID) }
        logger.notice("Resuming an interrupted refund", metadata: ["order": "\(orderID)", "refund": "\(refundID)"])
        metrics.resumed(.refund)
        if found.status == .pending || found.status == .unknown {
            let age = now().timeIntervalSince(found.createdAt)
            guard age >= configuration.refundSettleAfter else {
                throw Self.resumeLater(after: configuration.refundSettleAfter - age, "refund \(refundID) may still be on its way to Kaspi")
            }
            do {
                _ = try await resolveRefunds(orderID: orderID, pendingBefore: now().addingTimeInterval(-configuration.refundSettleAfter))
            } catch {
                throw Self.resumeLater(after: 5, "Kaspi's record of refund \(refundID) could not be read yet")
            }
            (refund, order) = try await current()
        }
        switch refund?.status {
        case .succeeded?: return .done(order ?? stored)
        case .failed?: return .neverHappened
        default:
            throw GatewayError(
                .providerOutcomeUnknown, "PROVIDER_REFUND_UNKNOWN",
                "Kaspi's record does not settle refund \(refundID); it waits for a person on the dashboard's refunds page. Do not refund again before it is settled."
            )
        }
    }

    /// The answer to a resumed request that must wait: the key is handed back, not answered
    /// (``IdempotencyMiddleware``), and a retry after `seconds` resumes it again.
    static func resumeLater(after seconds: TimeInterval, _ why: String) -> GatewayError {
        let wait = max(1, Int(seconds.rounded(.up)))
        return GatewayError(
            .conflict, "IDEMPOTENCY_IN_PROGRESS", "The first request with this Idempotency-Key was interrupted and \(why); retry in \(wait) s.",
            retryAfter: wait)
    }

    // MARK: Refund reconciliation

    // MARK: Remote invoices (the Kaspi QR API's r3)

    /// The client a phone number belongs to, to show before billing them.
    public func remoteClientName(phoneNumber: String) async throws(GatewayError) -> String {
        guard provider.supportsRemoteInvoices else { throw Self.remoteUnsupported }
        do { return try await provider.clientName(phoneNumber: phoneNumber) } catch { throw Self.providerFailure(error) }
    }

    static let remoteUnsupported = GatewayError(
        .conflict, "REMOTE_INVOICES_NOT_SUPPORTED",
        "Remote invoices exist on the Kaspi QR API's r3 scheme only (kaspi gateway --profile qr with KASPI_QR_SCHEME=r3).")

    static func providerFailure(_ error: ProviderError) -> GatewayError {
        if error.ambiguous {
            return GatewayError(.providerUnavailable, "PROVIDER_UNAVAILABLE", "Kaspi did not answer in time: \(error.message)")
        }
        return refusal(error) ?? GatewayError(.providerRefused, "PROVIDER_REFUSED", "Kaspi refused it (\(error.code)): \(error.message)")
    }

    /// Kaspi's refusal on the merits, which no retry changes: 409 or 422 with Kaspi's own
    /// code, not the 502 of Kaspi failing (which clients retry).
    static func refusal(_ error: ProviderError) -> GatewayError? {
        switch error.refusal {
        case .conflict?: GatewayError(.providerConflict, error.code, "Kaspi refused it: \(error.message)")
        case .unprocessable?: GatewayError(.providerRejected, error.code, "Kaspi refused it: \(error.message)")
        case nil: nil
        }
    }

    /// Bills a phone number: the order is stored first, then Kaspi is asked, as for checkouts.
    /// Its status is read only when someone asks (``refreshOnRequest(orderID:)``), and once at
    /// the end of its 24 hours, never on a timer.
    public func createRemoteInvoice(
        _ request: CheckoutRequest, phoneNumber: String, comment: String?, reserving reservation: IdempotencyReservation? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        guard provider.supportsRemoteInvoices else { throw Self.remoteUnsupported }
        guard request.amount >= 1, request.amount <= 100_000_000 else {
            throw .invalid("amount must be an integer number of tenge from 1 to 100000000.")
        }
        if let comment, comment.count > 256 { throw .invalid("comment must be at most 256 characters.") }
        let digits = phoneNumber.filter { !" -()+".contains($0) }
        guard digits.count == 11, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.hasPrefix("7") || digits.hasPrefix("8") else {
            throw .invalid("phoneNumber must be 11 digits starting with 7 or 8, e.g. 87071234567.")
        }
        if let reference = request.merchantReference, reference.isEmpty || reference.count > 128 {
            throw .invalid("merchantReference must be 1 to 128 characters.")
        }
        let created = now()
        let order = GatewayOrder(
            id: GatewayID.make("ord"), provider: provider.name, providerOrderID: GatewayID.make("kk"), kind: .remote, amount: request.amount,
            description: request.description, merchantReference: request.merchantReference, metadata: request.metadata,
            createdAt: created, nextPollAt: created.addingTimeInterval(configuration.firstPollAfter))
        do { try await store.insert(order, reserving: reservation) } catch { throw GatewayError.storage(error) }
        // The payer pays in their Kaspi app and is sent nowhere; the pages are the order's all the same.
        guard let returnURL = URL(string: "\(publicBase)/pay/return/\(order.id)"), let failURL = URL(string: "\(publicBase)/pay/fail/\(order.id)")
        else {
            throw GatewayError(.misconfigured, "PUBLIC_URL_INVALID", "The gateway's public URL is not a valid URL; set publicUrl.")
        }
        let paymentRequest = ProviderPaymentRequest(
            providerOrderID: order.providerOrderID, amount: order.amount, description: order.description, returnURL: returnURL,
            failURL: failURL, merchantReference: order.merchantReference)
        do {
            let invoice = try await provider.createRemoteInvoice(paymentRequest, phoneNumber: digits, comment: comment)
            let at = now()
            var planned = order
            planned.providerState = invoice.providerState
            let firstPoll = provider.pollPlan(for: planned, now: at)?.nextPollAt ?? at.addingTimeInterval(configuration.firstPollAfter)
            let (state, paymentID) = (invoice.providerState, invoice.providerPaymentID)
            let updated = try await store.update(from: order) { current in
                OrderStateMachine.providerAccepted(
                    current, paymentURL: nil, qrToken: nil, at: at, firstPollAt: firstPoll, providerState: state, providerPaymentID: paymentID)
            }
            metrics.counted(from: order, to: updated)
            return updated
        } catch let error as ProviderError {
            if !error.ambiguous {
                let at = now()
                _ = try? await store.update(
                    orderID: order.id,
                    metrics.counting { OrderStateMachine.expire($0, at: at, reason: "the provider refused the invoice: \(error.code)") })
            }
            throw Self.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// The last status read on request, per order, for the anti-abuse spacing.
    static let refreshSpacing: TimeInterval = 10

    /// Reads an order's status now, because someone asked (the dashboard's refresh, the API, the
    /// payer's return): the only way a remote invoice is read. At most once every 10 s an
    /// order, so that clicking cannot turn into a timer.
    public func refreshOnRequest(orderID: String) async throws(GatewayError) -> GatewayOrder {
        let order: GatewayOrder?
        do { order = try await store.order(id: orderID) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(orderID) }
        let at = now()
        let wait = lastRefresh.withLock { last -> TimeInterval? in
            last = last.filter { at.timeIntervalSince($0.value) < Self.refreshSpacing }
            if let previous = last[orderID] { return Self.refreshSpacing - at.timeIntervalSince(previous) }
            last[orderID] = at
            return nil
        }
        if let wait {
            throw GatewayError(
                .tooSoon, "REFRESH_TOO_SOON", "Order \(orderID) was read from Kaspi moments ago; ask again in \(Int(wait.rounded(.up))) s.",
                retryAfter: Int(wait.rounded(.up)))
        }
        do {
            return try await refreshStatus(order, source: .admin)
        } catch let error as ProviderError {
            throw Self.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Cancels an unpaid remote invoice.
    public func cancelRemoteInvoice(orderID: String) async throws(GatewayError) -> GatewayOrder {
        let order: GatewayOrder?
        do { order = try await store.order(id: orderID) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(orderID) }
        guard order.kind == .remote else {
            throw GatewayError(
                .conflict, "NOT_A_REMOTE_INVOICE", "Only remote invoices can be cancelled; QR and link payments cancel themselves at their deadline.")
        }
        do {
            let status = try await provider.cancelRemoteInvoice(order)
            let at = now()
            return try await store.update(
                orderID: orderID,
                metrics.counting {
                    OrderStateMachine.apply(status.report, transactionID: nil, source: .admin, to: $0, at: at, detail: "remote invoice cancelled")
                })
        } catch let error as ProviderError {
            throw Self.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    // MARK: Customer returns (the Kaspi QR API's r2)

    static let returnsUnsupported = GatewayError(
        .conflict, "RETURNS_NOT_SUPPORTED",
        "Return QRs exist on the Kaspi QR API's r2 scheme only; other schemes refund with POST /v1/orders/{id}/refunds.")

    /// A return QR for the customer to scan, the start of an r2 refund.
    public func createCustomerReturn() async throws(GatewayError) -> ProviderCustomerReturn {
        guard provider.refundMethod == .customerPresent else { throw Self.returnsUnsupported }
        do { return try await provider.createCustomerReturn() } catch { throw Self.providerFailure(error) }
    }

    /// A customer return's status and, once the customer scanned, their purchases with the
    /// gateway's orders for them.
    public func customerReturn(id: String) async throws(GatewayError) -> (ProviderCustomerReturnStatus, [String: GatewayOrder]) {
        guard provider.refundMethod == .customerPresent else { throw Self.returnsUnsupported }
        let status: ProviderCustomerReturnStatus
        do { status = try await provider.customerReturn(id: id) } catch {
            if error.notFound { throw GatewayError(.notFound, "RETURN_NOT_FOUND", "No return \(id).") }
            throw Self.providerFailure(error)
        }
        var orders: [String: GatewayOrder] = [:]
        for purchase in status.purchases {
            do {
                if let order = try await store.order(provider: provider.name, providerPaymentID: purchase.providerPaymentID) {
                    orders[purchase.providerPaymentID] = order
                }
            } catch {
                throw GatewayError.storage(error)
            }
        }
        return (status, orders)
    }

    /// Records a refund made outside the API (in the Kaspi Pay app): the only refund Kaspi's r1
    /// scheme has, and a correction for the others. Race-safe as API refunds are: the amount is
    /// reserved in the store's transaction, then recorded as succeeded, with an `admin` line
    /// and the `refund.succeeded` event.
    ///
    /// - Parameter resuming: the refund an earlier request with the same key reserved before
    ///   its run ended: recorded now, as that request would have.
    public func recordManualRefund(
        orderID: String, amount: Int, note: String?, reserving reservation: IdempotencyReservation? = nil, resuming: String? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        guard amount >= 1 else { throw .invalid("amount must be at least 1 tenge.") }
        if let note, note.count > 256 { throw .invalid("note must be at most 256 characters.") }
        let refundID = resuming ?? GatewayID.make("rf")
        do {
            if let resuming {
                guard let refund = try await store.refunds(orderID: orderID).first(where: { $0.id == resuming }) else {
                    throw Self.notResumable(resuming)
                }
                metrics.resumed(.manualRefund)
                if refund.status == .succeeded, let order = try await store.order(id: orderID) { return order }
                guard refund.status == .pending, refund.amount == amount else { throw Self.notResumable(resuming) }
            } else {
                _ = try await store.recordRefund(orderID: orderID, amount: amount, refundID: refundID, at: now(), reserving: reservation)
            }
            let at = now()
            let how = "made in the Kaspi Pay app and recorded by the merchant" + (note.map { ": \($0)" } ?? "")
            let updated = try await store.update(orderID: orderID) {
                OrderStateMachine.refundConfirmed($0, amount: amount, refundID: refundID, providerRefundID: nil, how: how, kind: .admin, at: at)
            }
            metrics.refund(.manual)
            return updated
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Settles refunds whose outcome is not known (Kaspi's answer lost, or an outcome that
    /// could not be recorded) from Kaspi's own record, once: the order's refunded total at
    /// Kaspi, less the refunds already confirmed here, is what the unsettled ones add up to.
    /// Each is confirmed (`refund.succeeded`) or released; when Kaspi's total fits no such
    /// split, the order is flagged and they wait for a person (the dashboard's refunds page).
    ///
    /// - Returns: how many refunds were settled.
    @discardableResult
    public func resolveRefundsOnce(limit: Int? = nil) async throws -> Int {
        let cutoff = now().addingTimeInterval(-configuration.refundSettleAfter)
        let candidates = try await store.unresolvedRefunds(pendingBefore: cutoff, limit: limit ?? configuration.workBatchSize)
        var settled = 0
        var seen: Set<String> = []
        for orderID in candidates.map(\.orderID) where seen.insert(orderID).inserted {
            do {
                settled += try await resolveRefunds(orderID: orderID, pendingBefore: cutoff)
            } catch {
                logger.warning(
                    "Refund reconciliation failed; will retry",
                    metadata: ["order": "\(orderID)", "error": "\(String(describing: error).prefix(120))"])
            }
        }
        return settled
    }

    func resolveRefunds(orderID: String, pendingBefore cutoff: Date) async throws -> Int {
        let refunds = try await store.refunds(orderID: orderID)
        // A refund still in flight could change Kaspi's total under us: wait for it.
        guard !refunds.contains(where: { $0.status == .pending && $0.createdAt >= cutoff }) else { return 0 }
        let open = refunds.filter { !$0.status.isResolved }
        guard !open.isEmpty, let order = try await store.order(id: orderID) else { return 0 }
        let status = try await provider.status(of: order)
        guard let kaspiTotal = status.refundedAmount else { return 0 }
        var remaining = kaspiTotal - refunds.filter { $0.status == .succeeded }.reduce(0) { $0 + $1.amount }
        var decisions: [(RefundRecord, Bool)] = []
        for refund in open {
            let happened = remaining >= refund.amount
            if happened { remaining -= refund.amount }
            decisions.append((refund, happened))
        }
        guard remaining == 0 else {
            let at = now()
            let detail = "Kaspi reports \(kaspiTotal) refunded, which no split of the unsettled refunds explains; settle them by hand"
            _ = try? await store.update(orderID: orderID) { OrderStateMachine.flagged($0, detail: detail, at: at) }
            metrics.refund(.mismatch)
            return 0
        }
        var settled = 0
        for (refund, happened) in decisions {
            let at = now()
            do {
                if happened {
                    _ = try await store.update(orderID: orderID) {
                        OrderStateMachine.refundConfirmed(
                            $0, amount: refund.amount, refundID: refund.id, how: "confirmed from Kaspi's record by reconciliation", at: at)
                    }
                } else {
                    _ = try await store.update(orderID: orderID) {
                        OrderStateMachine.refundReleased(
                            $0, amount: refund.amount, refundID: refund.id,
                            reason: "Kaspi's record shows it never happened (found by reconciliation)", at: at)
                    }
                }
                metrics.refund(happened ? .reconciledSucceeded : .reconciledFailed)
                settled += 1
            } catch StoreError.refundAlreadyResolved {
                // Another instance or a person settled it meanwhile.
            }
        }
        return settled
    }

    /// Settles a refund by hand, after a person checked Kaspi's record: an audit line names
    /// the admin action.
    public func settleRefund(id refundID: String, orderID: String, succeeded: Bool) async throws(GatewayError) -> GatewayOrder {
        let refunds: [RefundRecord]
        do { refunds = try await store.refunds(orderID: orderID) } catch { throw GatewayError.storage(error) }
        guard let refund = refunds.first(where: { $0.id == refundID }) else {
            throw GatewayError(.notFound, "REFUND_NOT_FOUND", "No refund \(refundID) on order \(orderID).")
        }
        guard !refund.status.isResolved else {
            throw GatewayError(.conflict, "REFUND_ALREADY_RESOLVED", "Refund \(refundID) is \(refund.status.rawValue) already.")
        }
        let at = now()
        do {
            if succeeded {
                return try await store.update(orderID: orderID) {
                    OrderStateMachine.refundConfirmed(
                        $0, amount: refund.amount, refundID: refundID, how: "settled as refunded by an admin (Kaspi's record checked by hand)",
                        kind: .admin, at: at)
                }
            }
            return try await store.update(orderID: orderID) {
                OrderStateMachine.refundReleased(
                    $0, amount: refund.amount, refundID: refundID, reason: "settled as not refunded by an admin (Kaspi's record checked by hand)",
                    kind: .admin, at: at)
            }
        } catch {
            throw GatewayError.storage(error)
        }
    }

    // MARK: Background work

    /// Polls the orders that are due, once. Returns how many were handled.
    ///
    /// A pending order is asked about with a growing interval; once its time is up it is asked
    /// once more, then expired. An expired order is still asked about every
    /// ``GatewayConfiguration/latePollInterval`` for ``GatewayConfiguration/latePaymentWindow``,
    /// so a late payment whose webhook was lost is found: paid wins, flagged for review.
    @discardableResult
    public func reconcileOnce(limit: Int? = nil) async throws -> Int {
        let at = now()
        let due = try await store.claimOrdersToPoll(now: at, limit: limit ?? configuration.workBatchSize, owner: configuration.instanceID, lease: 60)
        // Polls wait on Kaspi, not on the CPU: several at once (each order's writes are its own).
        let width = max(1, configuration.pollConcurrency)
        for start in stride(from: 0, to: due.count, by: width) {
            await withTaskGroup(of: Void.self) { group in
                for order in due[start..<min(start + width, due.count)] {
                    group.addTask { await self.poll(order, claimedAt: at) }
                }
            }
        }
        return due.count
    }

    /// One claimed order's poll: ask the provider, apply what the answer means, schedule the
    /// next poll (``PollPolicy``). A failure is logged and the poll scheduled again.
    private func poll(_ order: GatewayOrder, claimedAt at: Date) async {
        let attempts = order.pollAttempts + 1
        let settings = PollPolicy.Settings(configuration)
        if order.state == .expired { metrics.latePoll() }
        do {
            let asked = now()
            let updated = try await refreshStatus(order, source: .poll)
            let answered = now()
            let next = PollPolicy.nextPoll(
                after: updated, plan: provider.pollPlan(for: updated, now: answered), attempts: attempts, at: answered, settings: settings)
            try await store.schedulePoll(orderID: order.id, at: next, attempts: attempts, owner: configuration.instanceID, polledAt: asked)
        } catch {
            logger.warning(
                "Reconciliation poll failed; will retry", metadata: ["order": "\(order.id)", "error": "\(String(describing: error).prefix(120))"])
            let failed = now()
            let next = PollPolicy.nextPoll(
                after: order, plan: provider.pollPlan(for: order, now: failed), attempts: attempts, at: failed, settings: settings)
            try? await store.schedulePoll(orderID: order.id, at: next, attempts: attempts, owner: configuration.instanceID, polledAt: nil)
        }
    }

    /// Gives back the leases this instance held before a restart, so that its claimed orders
    /// and events are taken up at once rather than after their leases lapse.
    public func releaseOwnLeases() async {
        do {
            let released = try await store.releaseLeases(owner: configuration.instanceID)
            if released > 0 { logger.info("Leases from before a restart released", metadata: ["count": "\(released)"]) }
        } catch {
            logger.warning("Could not release this instance's old leases; they lapse by themselves")
        }
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

    /// Delivers the outgoing events that are due, once, up to
    /// ``GatewayConfiguration/deliveryConcurrency`` at a time. Returns how many were attempted.
    @discardableResult
    public func deliverEventsOnce(limit: Int? = nil) async throws -> Int {
        guard configuration.merchantWebhookURL != nil else { return 0 }
        let due = try await claimDueEvents(limit: limit ?? configuration.workBatchSize)
        let width = max(1, configuration.deliveryConcurrency)
        for start in stride(from: 0, to: due.count, by: width) {
            await withTaskGroup(of: Bool.self) { group in
                for message in due[start..<min(start + width, due.count)] {
                    group.addTask { await self.deliver(message, manual: false) }
                }
            }
        }
        return due.count
    }

    /// Claims up to `limit` due events for this instance: each message's lease covers one
    /// delivery (its timeout and the write after it).
    func claimDueEvents(limit: Int) async throws -> [OutboxMessage] {
        try await store.claimOutbox(now: now(), limit: limit, owner: configuration.instanceID, lease: configuration.eventDeliveryTimeout + 5)
    }

    /// POSTs one outgoing event, signed the Standard Webhooks way, and records the attempt.
    ///
    /// - Returns: whether the merchant's endpoint took it (a 2xx answer).
    @discardableResult
    func deliver(_ message: OutboxMessage, manual: Bool) async -> Bool {
        guard let url = configuration.merchantWebhookURL, let secret = configuration.merchantWebhookSecret,
            let key = StandardWebhooks.key(from: secret)
        else { return false }
        let timestamp = Int64(now().timeIntervalSince1970)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "webhook-id", value: message.id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature", value: StandardWebhooks.signature(id: message.id, timestamp: timestamp, body: message.payload, key: key))
        request.body = .bytes(ByteBuffer(string: message.payload))
        let started = ContinuousClock.now
        var status: Int? = nil
        var failure: String? = nil
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(configuration.eventDeliveryTimeout * 1000)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            status = Int(response.status.code)
        } catch {
            // Cancelled at shutdown: not an answer from the merchant, so nothing is recorded.
            if Task.isCancelled { return false }
            failure = DeliveryFailure.describe(error)
        }
        let elapsed = ContinuousClock.now - started
        let latency = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let delivered = status.map { (200..<300).contains($0) } ?? false
        metrics.delivery(delivered ? .delivered : .failed, age: now().timeIntervalSince(message.createdAt))
        let attemptsSoFar = message.attempts + 1
        let schedule = configuration.eventRetrySeconds
        let retryAt: Date? =
            delivered ? nil : (manual ? nil : (attemptsSoFar <= schedule.count ? now().addingTimeInterval(schedule[attemptsSoFar - 1]) : nil))
        do {
            let recorded = try await store.recordDelivery(
                DeliveryAttempt(messageID: message.id, at: now(), statusCode: status, latencyMs: latency, error: failure, manual: manual),
                delivered: delivered, retryAt: retryAt, owner: configuration.instanceID)
            if !recorded {
                logger.warning(
                    "A delivery attempt was not recorded: another instance holds the message's lease now", metadata: ["message": "\(message.id)"])
            }
        } catch {
            logger.error("Could not record a delivery attempt", metadata: ["message": "\(message.id)"])
        }
        return delivered
    }
}
