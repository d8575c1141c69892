import Foundation
import KaspiPay
import KaspiSupport

/// The order state machine: pure functions from an order and what happened to the change to
/// write. Stores run them inside a transaction, so a change is never half-applied.
public enum OrderStateMachine {
    /// Where a report came from, for the audit trail.
    public enum Source: String, Sendable, Hashable {
        case webhook
        case poll
        case admin
        case returnPage = "return_page"
        /// The payer's app asked (the client endpoint).
        case client = "client_app"
    }

    /// The change a provider's report of a payment's status causes, or nil when it changes nothing (a duplicate or
    /// an older event arriving late).
    ///
    /// `APPROVED` wins over a cancel, decline or expiry seen before, and a cancel or decline
    /// seen after a payment changes nothing; both conflicts are flagged for review.
    public static func apply(
        _ report: PaymentStatus, transactionID: String?, source: Source, to order: GatewayOrder, at now: Date,
        detail: String = ""
    ) -> OrderChange? {
        var next = order
        next.updatedAt = now
        var events: [OrderEvent] = []
        let note = detail.isEmpty ? "" : ": \(detail)"
        switch (report, order.state) {
        case (.pending, _), (.unknown, _):
            // Nothing settled yet (or a status this version does not know): no change.
            return nil
        case (.approved, .paid):
            if order.transactionID == nil, let transactionID {
                next.transactionID = transactionID
                return OrderChange(
                    order: bumped(next),
                    events: [OrderEvent(orderID: order.id, at: now, kind: eventKind(source), detail: "transaction id \(transactionID) recorded")])
            }
            return nil
        case (.approved, let from):
            next.state = .paid
            next.transactionID = transactionID ?? order.transactionID
            next.nextPollAt = nil
            if from.isFinal {
                next.needsReview = true
                events.append(
                    OrderEvent(
                        orderID: order.id, at: now, kind: .conflict, fromState: from, toState: .paid,
                        detail: "APPROVED reported via \(source.rawValue) after the order was \(from.rawValue); paid wins, review it"))
            }
            events.append(
                OrderEvent(
                    orderID: order.id, at: now, kind: .transition, fromState: from, toState: .paid, detail: "APPROVED via \(source.rawValue)\(note)"))
            return OrderChange(order: bumped(next), events: events, outbox: [message("order.paid", next, now)])
        case (.declined, .paid), (.cancelled, .paid):
            // Flag it once: a duplicate of the same late report changes nothing more.
            guard !order.needsReview else { return nil }
            next.needsReview = true
            return OrderChange(
                order: bumped(next),
                events: [
                    OrderEvent(
                        orderID: order.id, at: now, kind: .conflict, fromState: .paid, toState: .paid,
                        detail: "\(report.rawValue) reported via \(source.rawValue) after payment; paid wins, review it")
                ])
        case (.declined, .created), (.declined, .pending), (.cancelled, .created), (.cancelled, .pending):
            let target: OrderState = report == .declined ? .declined : .cancelled
            next.state = target
            next.nextPollAt = nil
            events.append(
                OrderEvent(
                    orderID: order.id, at: now, kind: .transition, fromState: order.state, toState: target,
                    detail: "\(report.rawValue) via \(source.rawValue)\(note)"))
            return OrderChange(order: bumped(next), events: events, outbox: [message("order.\(target.rawValue)", next, now)])
        case (.declined, _), (.cancelled, _):
            return nil
        }
    }

    /// Records a report that changes nothing (a duplicate, or an older event arriving late) in
    /// the audit trail, so that the timeline shows every webhook received.
    public static func noted(_ report: PaymentStatus, source: Source, on order: GatewayOrder, at now: Date) -> OrderChange {
        var next = order
        next.updatedAt = now
        return OrderChange(
            order: bumped(next),
            events: [
                OrderEvent(
                    orderID: order.id, at: now, kind: eventKind(source),
                    detail: "\(report.rawValue) received via \(source.rawValue); nothing to change (the order is \(order.state.rawValue))")
            ])
    }

    /// Records a report that the provider's own status call contradicted (a forged or replayed
    /// webhook): a line in the audit trail, and nothing else changes.
    public static func unconfirmed(
        _ report: PaymentStatus, confirmed: PaymentStatus, source: Source, on order: GatewayOrder, at now: Date
    ) -> OrderChange {
        var next = order
        next.updatedAt = now
        return OrderChange(
            order: bumped(next),
            events: [
                OrderEvent(
                    orderID: order.id, at: now, kind: .conflict,
                    detail: "\(report.rawValue) received via \(source.rawValue) but Kaspi's status call reports \(confirmed.rawValue); not applied")
            ])
    }

    /// Flags an order for a person to review, with the reason in the audit trail; nil when it
    /// is flagged already.
    public static func flagged(_ order: GatewayOrder, detail: String, at now: Date) -> OrderChange? {
        guard !order.needsReview else { return nil }
        var next = order
        next.needsReview = true
        next.updatedAt = now
        return OrderChange(order: bumped(next), events: [OrderEvent(orderID: order.id, at: now, kind: .conflict, detail: detail)])
    }

    /// Marks a stored order as known to the provider, with its payment URL or QR token.
    public static func providerAccepted(
        _ order: GatewayOrder, paymentURL: String?, qrToken: String?, at now: Date, firstPollAt: Date, providerState: String? = nil,
        providerPaymentID: String? = nil
    ) -> OrderChange? {
        guard order.state == .created else {
            // A poll may have seen the order at the provider first; keep the details it lacked.
            let addsURL = paymentURL != nil && order.paymentURL == nil
            let addsToken = qrToken != nil && order.qrToken == nil
            let addsState = providerState != nil && order.providerState == nil
            let addsPaymentID = providerPaymentID != nil && order.providerPaymentID == nil
            guard addsURL || addsToken || addsState || addsPaymentID else { return nil }
            var next = order
            if addsPaymentID { next.providerPaymentID = providerPaymentID }
            if addsURL { next.paymentURL = paymentURL }
            if addsToken { next.qrToken = qrToken }
            if addsState { next.providerState = providerState }
            next.updatedAt = now
            return OrderChange(
                order: bumped(next),
                events: [
                    OrderEvent(orderID: order.id, at: now, kind: .providerCall, detail: "the provider's payment details recorded")
                ])
        }
        var next = order
        next.state = .pending
        next.paymentURL = paymentURL ?? order.paymentURL
        next.qrToken = qrToken ?? order.qrToken
        next.providerState = providerState ?? order.providerState
        next.providerPaymentID = providerPaymentID ?? order.providerPaymentID
        next.updatedAt = now
        next.nextPollAt = firstPollAt
        return OrderChange(
            order: bumped(next),
            events: [
                OrderEvent(
                    orderID: order.id, at: now, kind: .transition, fromState: .created, toState: .pending, detail: "the provider accepted the order")
            ])
    }

    /// Records what the provider needs to follow an order when it changed (for the Kaspi QR
    /// API, the first `Wait`, which starts the confirmation deadline), with a line in the
    /// timeline. Nil when nothing changed: a poll that changes nothing stays out of the trail.
    public static func recordProviderState(_ order: GatewayOrder, _ state: String, at now: Date, detail: String) -> OrderChange? {
        guard order.providerState != state else { return nil }
        var next = order
        next.providerState = state
        next.updatedAt = now
        return OrderChange(order: bumped(next), events: [OrderEvent(orderID: order.id, at: now, kind: .poll, detail: detail)])
    }

    /// Expires an order that was never paid in time.
    ///
    /// - Parameter latePollAt: when to ask the provider again, in case a payment still
    ///   arrives (its webhook may be lost); nil never asks again.
    public static func expire(_ order: GatewayOrder, at now: Date, reason: String, latePollAt: Date? = nil) -> OrderChange? {
        guard order.state == .created || order.state == .pending else { return nil }
        var next = order
        next.state = .expired
        next.updatedAt = now
        next.nextPollAt = latePollAt
        return OrderChange(
            order: bumped(next),
            events: [OrderEvent(orderID: order.id, at: now, kind: .transition, fromState: order.state, toState: .expired, detail: reason)],
            outbox: [message("order.expired", next, now)])
    }

    /// Reserves a refund on a paid order (the store also enforces the limit in the
    /// database). The merchant is told only once the provider confirms: see
    /// ``refundConfirmed(_:amount:refundID:at:)``.
    public static func refund(_ order: GatewayOrder, amount: Int, refundID: String, at now: Date) -> OrderChange? {
        guard order.state == .paid, amount > 0, order.refundedAmount + amount <= order.amount else { return nil }
        var next = order
        next.refundedAmount += amount
        next.updatedAt = now
        return OrderChange(
            order: bumped(next),
            events: [
                OrderEvent(
                    orderID: order.id, at: now, kind: .refund,
                    detail: "refund \(refundID) of \(amount) reserved (\(next.refundedAmount) of \(order.amount) in all)")
            ])
    }

    /// The provider carried out a reserved refund: the audit line, `refund.succeeded`, and the
    /// refund marked succeeded.
    ///
    /// - Parameters:
    ///   - refundID: the gateway's refund id (`rf_…`).
    ///   - providerRefundID: the provider's own id for it, when it gave one.
    ///   - how: how it is known, for the audit line (the provider's answer, its record, a person).
    public static func refundConfirmed(
        _ order: GatewayOrder, amount: Int, refundID: String, providerRefundID: String? = nil, how: String = "confirmed by the provider",
        kind: OrderEvent.Kind = .refund, at now: Date
    ) -> OrderChange {
        var next = order
        next.updatedAt = now
        let payload = MerchantEvent.json(
            "refund.succeeded", MerchantEvent.Refund(orderID: order.id, refundID: refundID, amount: amount, refundedAmount: order.refundedAmount))
        let reference = providerRefundID.map { " (Kaspi's \($0))" } ?? ""
        return OrderChange(
            order: bumped(next),
            events: [OrderEvent(orderID: order.id, at: now, kind: kind, detail: "refund \(refundID)\(reference) of \(amount) \(how)")],
            outbox: [
                OutboxMessage(id: GatewayID.sortable("msg", at: now), type: "refund.succeeded", orderID: order.id, payload: payload, createdAt: now)
            ],
            refund: RefundUpdate(refundID: refundID, status: .succeeded, detail: how + reference))
    }

    /// The provider refused a reserved refund (or its record shows it never happened): the
    /// reservation is released and the refund marked failed.
    public static func refundReleased(
        _ order: GatewayOrder, amount: Int, refundID: String, reason: String, kind: OrderEvent.Kind = .refund, at now: Date
    ) -> OrderChange? {
        guard order.refundedAmount >= amount else { return nil }
        var next = order
        next.refundedAmount -= amount
        next.updatedAt = now
        return OrderChange(
            order: bumped(next),
            events: [OrderEvent(orderID: order.id, at: now, kind: kind, detail: "refund \(refundID) of \(amount) released: \(reason)")],
            refund: RefundUpdate(refundID: refundID, status: .failed, detail: reason))
    }

    /// The provider's answer to a refund was lost: the amount stays reserved, the refund is
    /// marked unknown for reconciliation to settle from the provider's record, and the order is
    /// flagged for review.
    public static func refundUnknown(_ order: GatewayOrder, amount: Int, refundID: String, reason: String, at now: Date) -> OrderChange {
        var next = order
        next.needsReview = true
        next.updatedAt = now
        return OrderChange(
            order: bumped(next),
            events: [
                OrderEvent(
                    orderID: order.id, at: now, kind: .conflict,
                    detail:
                        "refund \(refundID) of \(amount) is reserved but Kaspi's answer was lost (\(reason)); reconciliation settles it from Kaspi's record"
                )
            ],
            refund: RefundUpdate(refundID: refundID, status: .unknown, detail: "Kaspi's answer was lost (\(reason))"))
    }

    private static func bumped(_ order: GatewayOrder) -> GatewayOrder {
        var copy = order
        copy.version += 1
        return copy
    }

    private static func eventKind(_ source: Source) -> OrderEvent.Kind {
        switch source {
        case .webhook: .webhook
        case .poll, .returnPage, .client: .poll
        case .admin: .admin
        }
    }

    /// The outgoing event for a state change: `{"type": …, "data": {order}}`.
    static func message(_ type: String, _ order: GatewayOrder, _ now: Date) -> OutboxMessage {
        let data = MerchantEvent.Order(
            id: order.id, state: order.state, amount: order.amount, refundedAmount: order.refundedAmount, providerOrderID: order.providerOrderID,
            merchantReference: order.merchantReference, transactionID: order.transactionID, needsReview: order.needsReview ? true : nil,
            locale: order.locale)
        let payload = MerchantEvent.json(type, data)
        return OutboxMessage(id: GatewayID.sortable("msg", at: now), type: type, orderID: order.id, payload: payload, createdAt: now)
    }
}

/// The bodies of the events the gateway sends to the merchant's systems
/// (`openapi/gateway.yaml`'s `MerchantEvent`), as JSON with sorted keys.
enum MerchantEvent {
    /// `{"type": …, "data": …}`.
    struct Envelope<Payload: Encodable>: Encodable {
        var type: String
        var data: Payload
    }

    /// An order's state, in `order.*` events.
    struct Order: Encodable {
        var id: String
        var state: OrderState
        var amount: Int
        var refundedAmount: Int
        var providerOrderID: String
        var merchantReference: String?
        var transactionID: String?
        /// Present, and true, only when the order needs a person.
        var needsReview: Bool?
        /// The payer's language, when the checkout said it.
        var locale: String?

        enum CodingKeys: String, CodingKey {
            case id
            case state
            case amount
            case refundedAmount
            case providerOrderID = "providerOrderId"
            case merchantReference
            case transactionID = "transactionId"
            case needsReview
            case locale
        }
    }

    /// A refund, in `refund.succeeded`.
    struct Refund: Encodable {
        var orderID: String
        var refundID: String
        var amount: Int
        var refundedAmount: Int

        enum CodingKeys: String, CodingKey {
            case orderID = "orderId"
            case refundID = "refundId"
            case amount
            case refundedAmount
        }
    }

    /// An event's JSON text.
    static func json(_ type: String, _ data: some Encodable) -> String {
        // Every field is a string, an integer or a boolean: encoding cannot fail.
        (try? CanonicalJSON.text(Envelope(type: type, data: data))) ?? "{}"
    }
}
