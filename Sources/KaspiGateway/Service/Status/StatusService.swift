import Foundation
import KaspiGatewayStore
import KaspiPay
import Logging
import Synchronization

/// Status reports: Kaspi's webhooks (confirmed with Kaspi before they pay), polls and reads on
/// request, each answer's meaning decided by ``PollPolicy`` and applied through
/// ``OrderStateMachine``.
final class StatusService: GatewayPart {
    let context: GatewayContext
    /// When each order was last read from Kaspi on request (``refreshOnRequest(orderID:)``).
    let lastRefresh = Mutex<[String: Date]>([:])
    /// What replayed webhooks may cost: spaced confirmations, rare notes.
    let replayGuard = WebhookReplayGuard()

    init(context: GatewayContext) { self.context = context }

    /// A store decision: the change a status answer makes to the order as stored.
    typealias Decision = @Sendable (GatewayOrder) throws -> OrderChange?

    /// Asks the provider for an order's status and applies what it means (``PollPolicy``):
    /// a read on request, the payer's return. Polls use ``poll(_:claimedAt:)``, which writes
    /// the change and the next poll together.
    ///
    /// - Returns: the order after the report.
    @discardableResult
    func refreshStatus(_ order: GatewayOrder, source: OrderStateMachine.Source) async throws -> GatewayOrder {
        guard !order.state.isFinal || order.state == .expired else { return order }
        let updated = try await store.update(from: order, try await decision(for: order, source: source))
        reported(updated, before: order)
        return updated
    }

    /// Asks the provider about `order` and returns what the answer means as one decision: the
    /// provider's acceptance (for an order still `created`), its own state, then the report's
    /// outcome (``PollPolicy``), each decided on the order the one before left, so that they are
    /// written together.
    ///
    /// - Throws: the provider's failure, unless it means the order can never be paid (then
    ///   the decision expires it).
    func decision(for order: GatewayOrder, source: OrderStateMachine.Source) async throws -> Decision {
        let settings = PollPolicy.Settings(configuration)
        let status: ProviderStatus
        do {
            status = try await provider.status(of: order)
        } catch {
            let at = now()
            guard case .expire(let reason, let late)? = PollPolicy.outcome(ofFailure: error.notFound, for: order, at: at, settings: settings)
            else { throw error }
            // The create call never arrived (and cannot still be in flight): nothing can be paid.
            let detail = "\(reason) (\(error.message))"
            return metrics.counting { OrderStateMachine.expire($0, at: at, reason: detail, latePollAt: late) }
        }
        let at = now()
        let firstPoll = at.addingTimeInterval(configuration.firstPollAfter)
        let provider = self.provider
        let detail = "by \(configuration.instanceID)"
        let note = status.providerStateNote ?? "the provider reported \(status.providerStatus ?? status.report.rawValue)"
        return countingEachState { order in
            var steps = ChainedChange(order)
            if order.state == .created {
                steps.then { OrderStateMachine.providerAccepted($0, paymentURL: nil, qrToken: nil, at: at, firstPollAt: firstPoll) }
            }
            if let state = status.providerState {
                steps.then { OrderStateMachine.recordProviderState($0, state, at: at, detail: note) }
            }
            let outcome = PollPolicy.outcome(
                of: status.report, providerWord: status.providerStatus, for: steps.order, plan: provider.pollPlan(for: steps.order, now: at),
                answeredAt: at, settings: settings)
            switch outcome {
            case .expire(let reason, let late):
                steps.then { OrderStateMachine.expire($0, at: at, reason: reason, latePollAt: late) }
            case .report(let report):
                steps.then { OrderStateMachine.apply(report, transactionID: status.transactionID, source: source, to: $0, at: at, detail: detail) }
            }
            return steps
        }
    }

    /// The decision of a chain of steps, counting each state the order enters in the metrics.
    func countingEachState(_ decide: @escaping @Sendable (GatewayOrder) -> ChainedChange) -> Decision {
        { [metrics] order in
            let steps = decide(order)
            for state in steps.states { metrics.transition(to: state) }
            return steps.change
        }
    }

    /// Counts a status read and wakes the outbox when it changed the order.
    func reported(_ updated: GatewayOrder, before order: GatewayOrder) {
        metrics.poll(changed: updated.version != order.version)
        if updated.version != order.version { wakeOutbox() }
    }

    /// Applies a provider webhook from its raw body: verified, checked against the stored
    /// order (exists, same amount), applied idempotently, committed before the caller answers.
    /// What a provider without webhooks answers anything posted as one: not from Kaspi.
    static let webhooksUnsupported = ProviderError(
        code: "WEBHOOKS_NOT_SUPPORTED", message: "The Kaspi QR API sends no webhooks; the gateway polls it.")

    func handleWebhook(_ body: [UInt8]) async throws(GatewayError) -> GatewayOrder {
        guard body.count <= 16 * 1024 else { throw GatewayError(.tooLarge, "WEBHOOK_BODY_TOO_LARGE", "A webhook body is at most 16 KiB.") }
        let event: ProviderWebhook
        do throws(ProviderError) {
            guard let webhooks = capabilities.webhooks else { throw StatusService.webhooksUnsupported }
            event = try webhooks.readWebhook(body)
        } catch {
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
                if let change = OrderStateMachine.apply(event.report, transactionID: transactionID, source: .webhook, to: current, at: at) {
                    return change
                }
                // A copy of what the order already shows (Kaspi's retry, or a replay) is skipped
                // without a write; any other report that changes nothing is noted in the
                // timeline, once in ten minutes an order and report, not once a copy.
                guard !Self.isDuplicate(event.report, of: current),
                    self.replayGuard.mayNote(orderID: current.id, report: event.report.description, at: at)
                else { return nil }
                return OrderStateMachine.noted(event.report, source: .webhook, on: current, at: at)
            }
            metrics.counted(from: before, to: updated)
            if updated.version != before.version { wakeOutbox() }
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

    /// Whether `report` says what `order` already shows.
    static func isDuplicate(_ report: PaymentStatus, of order: GatewayOrder) -> Bool {
        switch report {
        case .approved: order.state == .paid
        case .declined: order.state == .declined
        case .cancelled: order.state == .cancelled
        case .pending: order.state == .pending
        case .unknown: false
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
        // Copies of one webhook buy at most one call to Kaspi every 2 s an order; Kaspi's own
        // retry comes later than that.
        if let wait = replayGuard.confirmation(orderID: order.id, at: now()) {
            metrics.webhook(.unconfirmed)
            throw GatewayError(
                .providerUnavailable, "WEBHOOK_CONFIRMATION_UNAVAILABLE",
                "Kaspi was asked about this order moments ago; send the webhook again later.", retryAfter: wait)
        }
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
        if replayGuard.mayNote(orderID: order.id, report: "unconfirmed", at: at) {
            _ = try? await store.update(orderID: order.id) { current in
                OrderStateMachine.unconfirmed(.approved, confirmed: reported, source: .webhook, on: current, at: at)
            }
        }
        throw GatewayError(
            .conflict, "WEBHOOK_NOT_CONFIRMED", "Kaspi reports this order as \(status.report.rawValue), not APPROVED; the webhook changed nothing.")
    }

    /// The last status read on request, per order, for the anti-abuse spacing.
    static let refreshSpacing: TimeInterval = 10

    /// Reads an order's status now, because someone asked (the dashboard's refresh, the API, the
    /// payer's return): the only way a remote invoice is read. At most once every 10 s an
    /// order, so that clicking cannot turn into a timer.
    func refreshOnRequest(orderID: String) async throws(GatewayError) -> GatewayOrder {
        let order: GatewayOrder?
        do { order = try await store.order(id: orderID) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(orderID) }
        let at = now()
        let wait = lastRefresh.withLock { last -> TimeInterval? in
            last = last.filter { at.timeIntervalSince($0.value) < StatusService.refreshSpacing }
            if let previous = last[orderID] { return StatusService.refreshSpacing - at.timeIntervalSince(previous) }
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
            throw GatewayError.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    // MARK: Polling

    /// Polls the orders that are due, once. Returns how many were handled.
    ///
    /// A pending order is asked about with a growing interval; once its time is up it is asked
    /// once more, then expired. An expired order is still asked about every
    /// ``GatewayConfiguration/latePollInterval`` for ``GatewayConfiguration/latePaymentWindow``,
    /// so a late payment whose webhook was lost is found: paid wins, flagged for review.
    @discardableResult
    func reconcileOnce(limit: Int? = nil) async throws -> Int {
        let (due, at) = try await claimDueOrders(limit: limit ?? configuration.workBatchSize)
        // Polls wait on Kaspi, not on the CPU: several at once in a sliding window (a slot that
        // frees takes the next order at once; nobody waits for a round's slowest poll).
        let width = max(1, configuration.pollConcurrency)
        await withTaskGroup(of: Void.self) { group in
            var next = due.makeIterator()
            for _ in 0..<width {
                guard let order = next.next() else { break }
                group.addTask { await self.poll(order, claimedAt: at) }
            }
            while await group.next() != nil {
                if let order = next.next() { group.addTask { await self.poll(order, claimedAt: at) } }
            }
        }
        return due.count
    }

    /// Claims up to `limit` orders due for a poll for this instance (a lease of 60 s each).
    func claimDueOrders(limit: Int) async throws -> (orders: [GatewayOrder], at: Date) {
        let at = now()
        return (try await store.claimOrdersToPoll(now: at, limit: limit, owner: configuration.instanceID, lease: 60), at)
    }

    /// One claimed order's poll: ask the provider, then write what the answer means and the
    /// next poll (``PollPolicy``) together. A failure is logged and the poll scheduled again.
    func poll(_ order: GatewayOrder, claimedAt at: Date) async {
        let attempts = order.pollAttempts + 1
        let settings = PollPolicy.Settings(configuration)
        if order.state == .expired { metrics.latePoll() }
        do {
            let asked = now()
            let decide: Decision
            if order.state.isFinal && order.state != .expired {
                decide = { @Sendable _ in nil }
            } else {
                decide = try await decision(for: order, source: .poll)
            }
            let answered = now()
            let provider = self.provider
            let updated = try await store.finishPoll(from: order, owner: configuration.instanceID, polledAt: asked, decide) { updated in
                PollSchedule(
                    at: PollPolicy.nextPoll(
                        after: updated, plan: provider.pollPlan(for: updated, now: answered), attempts: attempts, at: answered, settings: settings),
                    attempts: attempts)
            }
            reported(updated, before: order)
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
    func releaseOwnLeases() async {
        do {
            let released = try await store.releaseLeases(owner: configuration.instanceID)
            if released > 0 { logger.info("Leases from before a restart released", metadata: ["count": "\(released)"]) }
        } catch {
            logger.warning("Could not release this instance's old leases; they lapse by themselves")
        }
    }
}

/// Changes decided one after the other on one order, to be written as one change: each step
/// sees the order the step before left.
struct ChainedChange: Sendable {
    /// The order after the steps so far.
    private(set) var order: GatewayOrder
    /// The steps' changes together; nil while no step changed anything.
    private(set) var change: OrderChange?
    /// The states the order entered, in order.
    private(set) var states: [OrderState] = []

    init(_ order: GatewayOrder) { self.order = order }

    /// Applies a step to the order so far.
    mutating func then(_ step: (GatewayOrder) -> OrderChange?) {
        guard let next = step(order) else { return }
        if next.order.state != order.state { states.append(next.order.state) }
        change =
            change.map {
                OrderChange(
                    order: next.order, events: $0.events + next.events, outbox: $0.outbox + next.outbox, refund: next.refund ?? $0.refund,
                    answer: next.answer ?? $0.answer)
            } ?? next
        order = next.order
    }
}
