import Foundation
import KaspiGatewayStore
import Logging
import QRCodeEncoder
import Synchronization

/// Checkouts and remote invoices: validated, the order stored before Kaspi is asked, Kaspi's
/// answer and the idempotent answer written in one commit; an interrupted one resumed.
final class CheckoutService: GatewayPart {
    let context: GatewayContext
    /// Where checkouts may send the payer back to; validated at start, none if it was not.
    let mobileReturns: MobileReturnURLs

    init(context: GatewayContext) {
        self.context = context
        self.mobileReturns = (try? MobileReturnURLs(context.configuration.mobileReturnURLs)) ?? MobileReturnURLs.none
    }

    var publicBase: String { context.publicBase }

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
    func createCheckout(
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
            guard let stored, stored.kind == kind else { throw GatewayError.notResumable(resuming) }
            if stored.paymentURL != nil || stored.qrToken != nil {
                // The provider's answer was stored; only the request's own answer was lost.
                let qr = stored.qrToken.map { ProviderQR(token: $0, png: (try? QRCode(encoding: $0).png(scale: 6)) ?? []) }
                return (stored, qr, nil)
            }
            guard stored.state == .created || stored.state == .pending else { throw GatewayError.notResumable(resuming) }
            logger.notice("Resuming an interrupted checkout", metadata: ["order": "\(stored.id)"])
            metrics.resumed(.checkout)
            order = stored
        } else {
            try CheckoutService.validate(request, mobileReturns: mobileReturns)
            let created = now()
            var new = GatewayOrder(
                id: GatewayID.make("ord"), provider: provider.name, providerOrderID: GatewayID.make("kk"), kind: kind,
                amount: request.amount, description: request.description, merchantReference: request.merchantReference,
                metadata: request.metadata, mobileReturnURL: request.mobileReturnURL, paymentLinkID: request.paymentLinkID,
                createdAt: created, nextPollAt: created.addingTimeInterval(configuration.firstPollAfter))
            new.locale = request.locale
            order = new
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
            throw GatewayError.refusal(error)
                ?? GatewayError(.providerRefused, "PROVIDER_REFUSED", "Kaspi refused the order (\(error.code)): \(error.message)")
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Checks a checkout request's fields.
    static func validate(_ request: CheckoutRequest, mobileReturns: MobileReturnURLs) throws(GatewayError) {
        guard request.amount >= 100, request.amount <= 100_000_000 else {
            throw .invalid("amount must be an integer number of tenge from 100 to 100000000.")
        }
        if let description = request.description, description.count > 256 { throw .invalid("description must be at most 256 characters.") }
        if let reference = request.merchantReference, reference.isEmpty || reference.count > 128 {
            throw .invalid("merchantReference must be 1 to 128 characters.")
        }
        if let metadata = request.metadata, metadata.utf8.count > 4096 { throw .invalid("metadata must be at most 4 KiB of JSON.") }
        if let locale = request.locale, !["kk", "ru", "en"].contains(locale) { throw .invalid("locale must be kk, ru or en.") }
        if let mobile = request.mobileReturnURL {
            guard MobileReturnURLs.normalized(mobile) != nil else {
                throw .invalid("mobileReturnUrl must be an absolute URL such as yourapp://payment.")
            }
            guard mobileReturns.allows(mobile) else {
                // The request is well formed; the gateway's configuration forbids the place.
                throw GatewayError(
                    .forbidden, "MOBILE_RETURN_URL_NOT_ALLOWED",
                    "mobileReturnUrl must start with one of the gateway's mobileReturnUrls (set KASPI_GATEWAY_MOBILE_RETURN_URLS, e.g. yourapp://).")
            }
        }
    }

    // MARK: Remote invoices (the Kaspi QR API's r3)

    /// The client a phone number belongs to, to show before billing them.
    func remoteClientName(phoneNumber: String) async throws(GatewayError) -> String {
        guard let invoices = capabilities.remoteInvoices else { throw Self.remoteUnsupported }
        do { return try await invoices.clientName(phoneNumber: phoneNumber) } catch { throw GatewayError.providerFailure(error) }
    }

    static let remoteUnsupported = GatewayError(
        .conflict, "REMOTE_INVOICES_NOT_SUPPORTED",
        "Remote invoices exist on the Kaspi QR API's r3 scheme only (kaspi gateway --profile qr with KASPI_QR_SCHEME=r3).")

    /// Bills a phone number: the order is stored first, then Kaspi is asked, as for checkouts.
    /// Its status is read only when someone asks (``refreshOnRequest(orderID:)``), and once at
    /// the end of its 24 hours, never on a timer.
    func createRemoteInvoice(
        _ request: CheckoutRequest, phoneNumber: String, comment: String?, reserving reservation: IdempotencyReservation? = nil
    ) async throws(GatewayError) -> GatewayOrder {
        guard let invoices = capabilities.remoteInvoices else { throw Self.remoteUnsupported }
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
            let invoice = try await invoices.createRemoteInvoice(paymentRequest, phoneNumber: digits, comment: comment)
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
            throw GatewayError.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    /// Cancels an unpaid remote invoice.
    func cancelRemoteInvoice(orderID: String) async throws(GatewayError) -> GatewayOrder {
        let order: GatewayOrder?
        do { order = try await store.order(id: orderID) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(orderID) }
        guard order.kind == .remote else {
            throw GatewayError(
                .conflict, "NOT_A_REMOTE_INVOICE", "Only remote invoices can be cancelled; QR and link payments cancel themselves at their deadline.")
        }
        guard let invoices = capabilities.remoteInvoices else { throw Self.remoteUnsupported }
        do {
            let status = try await invoices.cancelRemoteInvoice(order)
            let at = now()
            return try await store.update(
                orderID: orderID,
                metrics.counting {
                    OrderStateMachine.apply(status.report, transactionID: nil, source: .admin, to: $0, at: at, detail: "remote invoice cancelled")
                })
        } catch let error as ProviderError {
            throw GatewayError.providerFailure(error)
        } catch {
            throw GatewayError.storage(error)
        }
    }
}
