import Foundation
import KaspiGatewayStore
import Logging
import Synchronization

/// Refunds: reserved in the database before Kaspi is asked, recorded by Kaspi's answer or
/// settled from Kaspi's record when it was lost; returns with the customer present (r2),
/// refunds made in the Kaspi Pay app, and the reconciliation of unsettled ones.
final class RefundService: GatewayPart {
    let context: GatewayContext

    init(context: GatewayContext) { self.context = context }

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
    func refund(
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
        // How Kaspi is asked: through the API, or with the customer's scanned return QR.
        let send: @Sendable (GatewayOrder, Int) async throws(ProviderError) -> ProviderRefund
        if let direct = capabilities.directRefunds {
            send = { (order, amount) async throws(ProviderError) in try await direct.refund(order, amount: amount) }
        } else if let returns = capabilities.customerReturns {
            guard let returnID = customerReturnID else {
                throw GatewayError(
                    .conflict, "REFUND_NEEDS_CUSTOMER",
                    "Kaspi's r2 scheme refunds with the customer present: create a return QR for them to scan (POST /v1/returns), then refund with its returnId."
                )
            }
            send = { (order, amount) async throws(ProviderError) in try await returns.refund(order, amount: amount, returnID: returnID) }
        } else {
            throw GatewayError(
                .conflict, "REFUND_IN_KASPI_APP",
                "Kaspi's r1 scheme has no refunds through the API: refund in the Kaspi Pay app, then record it (POST /v1/orders/\(orderID)/manual-refunds)."
            )
        }
        if let requested, requested < 1 { throw .invalid("amount must be at least 1 tenge.") }
        let amount = requested ?? (order.amount - order.refundedAmount)
        // Nothing left is the order's state, not the request's fault.
        guard amount >= 1 else {
            throw GatewayError(.conflict, "NOTHING_TO_REFUND", "The order \(orderID) is refunded in full; nothing remains to refund.")
        }
        let refundID = GatewayID.make("rf")
        let reserved: GatewayOrder
        do { reserved = try await store.recordRefund(orderID: orderID, amount: amount, refundID: refundID, at: now(), reserving: reservation) } catch
        {
            throw GatewayError.storage(error)
        }
        do {
            let done = try await send(reserved, amount)
            let at = now()
            do {
                let updated = try await store.update(orderID: orderID) {
                    OrderStateMachine.refundConfirmed($0, amount: amount, refundID: refundID, providerRefundID: done.refundID, at: at)
                }
                metrics.refund(.succeeded)
                wakeOutbox()
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
            throw GatewayError.refusal(error)
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
        guard let found = refund, let stored = order else { throw GatewayError.notResumable(refundID) }
        logger.notice("Resuming an interrupted refund", metadata: ["order": "\(orderID)", "refund": "\(refundID)"])
        metrics.resumed(.refund)
        if found.status == .failed {
            // Settled as not made before this retry (Kaspi refused it, or a person or
            // reconciliation found it absent): that is the first request's outcome, not a
            // reason to send it now.
            throw GatewayError(
                .conflict, "REFUND_NOT_MADE",
                "Refund \(refundID) was not made (\(found.detail ?? "no detail")); refund again with a new Idempotency-Key if it is still wanted.")
        }
        if found.status == .pending || found.status == .unknown {
            let age = now().timeIntervalSince(found.createdAt)
            guard age >= configuration.refundSettleAfter else {
                throw GatewayError.resumeLater(after: configuration.refundSettleAfter - age, "refund \(refundID) may still be on its way to Kaspi")
            }
            do {
                _ = try await resolveRefunds(orderID: orderID, pendingBefore: now().addingTimeInterval(-configuration.refundSettleAfter))
            } catch {
                throw GatewayError.resumeLater(after: 5, "Kaspi's record of refund \(refundID) could not be read yet")
            }
            (refund, order) = try await current()
        }
        switch refund?.status {
        case .succeeded?: return .done(order ?? stored)
        // Settled just now as never having reached Kaspi: it may be sent.
        case .failed?: return .neverHappened
        default:
            throw GatewayError(
                .providerOutcomeUnknown, "PROVIDER_REFUND_UNKNOWN",
                "Kaspi's record does not settle refund \(refundID); it waits for a person on the dashboard's refunds page. Do not refund again before it is settled."
            )
        }
    }

    // MARK: Customer returns (the Kaspi QR API's r2), manual refunds, reconciliation

    static let returnsUnsupported = GatewayError(
        .conflict, "RETURNS_NOT_SUPPORTED",
        "Return QRs exist on the Kaspi QR API's r2 scheme only; other schemes refund with POST /v1/orders/{id}/refunds.")

    /// A return QR for the customer to scan, the start of an r2 refund.
    func createCustomerReturn() async throws(GatewayError) -> ProviderCustomerReturn {
        guard let returns = capabilities.customerReturns else { throw Self.returnsUnsupported }
        do { return try await returns.createCustomerReturn() } catch { throw GatewayError.providerFailure(error) }
    }

    /// A customer return's status and, once the customer scanned, their purchases with the
    /// gateway's orders for them.
    func customerReturn(id: String) async throws(GatewayError) -> (ProviderCustomerReturnStatus, [String: GatewayOrder]) {
        guard let returns = capabilities.customerReturns else { throw Self.returnsUnsupported }
        let status: ProviderCustomerReturnStatus
        do { status = try await returns.customerReturn(id: id) } catch {
            if error.notFound { throw GatewayError(.notFound, "RETURN_NOT_FOUND", "No return \(id).") }
            throw GatewayError.providerFailure(error)
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
    func recordManualRefund(
        orderID: String, amount: Int, note: String?, reserving reservation: IdempotencyReservation? = nil, resuming: String? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        guard amount >= 1 else { throw .invalid("amount must be at least 1 tenge.") }
        if let note, note.count > 256 { throw .invalid("note must be at most 256 characters.") }
        let refundID = resuming ?? GatewayID.make("rf")
        do {
            if let resuming {
                guard let refund = try await store.refunds(orderID: orderID).first(where: { $0.id == resuming }) else {
                    throw GatewayError.notResumable(resuming)
                }
                metrics.resumed(.manualRefund)
                if refund.status == .succeeded, let order = try await store.order(id: orderID) { return order }
                guard refund.status == .pending, refund.amount == amount else { throw GatewayError.notResumable(resuming) }
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
    func resolveRefundsOnce(limit: Int? = nil) async throws -> Int {
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
    func settleRefund(id refundID: String, orderID: String, succeeded: Bool) async throws(GatewayError) -> GatewayOrder {
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
}
