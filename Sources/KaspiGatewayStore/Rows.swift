import Foundation

/// Reads one row's columns by name, whatever the database.
protocol RowReader {
    func string(_ column: String) -> String?
    func int(_ column: String) -> Int64?
}

/// A value as a store writes it: text, a 64-bit integer, or a 32-bit one (PostgreSQL's
/// `INTEGER` columns); nil is SQL's NULL.
enum StoreValue: Sendable, Hashable {
    case text(String?)
    case int(Int64?)
    case int32(Int32?)
}

/// Writes rows the way ``RowDecoding`` reads them back: one encoder for both stores.
enum RowEncoding {
    /// An order's columns, in the order of `orderColumns` (an insert).
    static func order(_ o: GatewayOrder) -> [StoreValue] {
        [
            .text(o.id), .text(o.provider), .text(o.providerOrderID), .text(o.kind.rawValue), .int(Int64(o.amount)), .text(o.description),
            .text(o.merchantReference), .text(o.metadata), .text(o.mobileReturnURL), .text(o.state.rawValue), .int(Int64(o.refundedAmount)),
            .text(o.transactionID), .text(o.paymentURL), .text(o.qrToken), .text(o.paymentLinkID), .int32(o.needsReview ? 1 : 0),
            .int(o.createdAt.ms), .int(o.updatedAt.ms), .int(o.nextPollAt?.ms), .int32(Int32(clamping: o.pollAttempts)),
            .int(Int64(o.version)), .text(o.providerState), .text(o.providerPaymentID), .text(o.locale),
        ]
    }

    /// An audit event's columns: order_id, at, kind, from_state, to_state, detail.
    static func event(_ e: OrderEvent) -> [StoreValue] {
        [.text(e.orderID), .int(e.at.ms), .text(e.kind.rawValue), .text(e.fromState?.rawValue), .text(e.toState?.rawValue), .text(e.detail)]
    }

    /// An outgoing event's columns, in the order of `outboxColumns`.
    static func message(_ m: OutboxMessage) -> [StoreValue] {
        [
            .text(m.id), .text(m.type), .text(m.orderID), .text(m.payload), .int(m.createdAt.ms), .text(m.state.rawValue),
            .int32(Int32(clamping: m.attempts)), .int(m.nextAttemptAt.ms), .int32(m.lastStatus.map { Int32(clamping: $0) }),
            .int(m.deliveredAt?.ms),
        ]
    }

    /// The columns a change of an order writes, in the order of `orderUpdateColumns`, then
    /// the order's id and the version the change was decided on.
    static func orderUpdate(_ o: GatewayOrder, expectedVersion: Int) -> [StoreValue] {
        [
            .text(o.state.rawValue), .int(Int64(o.refundedAmount)), .text(o.transactionID), .text(o.paymentURL), .text(o.qrToken),
            .text(o.paymentLinkID), .int32(o.needsReview ? 1 : 0), .int(o.updatedAt.ms), .int(o.nextPollAt?.ms),
            .int32(Int32(clamping: o.pollAttempts)), .int(Int64(o.version)), .text(o.description), .text(o.metadata), .text(o.providerState),
            .text(o.providerPaymentID), .text(o.id), .int(Int64(expectedVersion)),
        ]
    }

    /// The columns ``orderUpdate(_:expectedVersion:)`` sets, in its order.
    static let orderUpdateColumns = [
        "state", "refunded_amount", "transaction_id", "payment_url", "qr_token", "payment_link_id", "needs_review", "updated_at",
        "next_poll_at", "poll_attempts", "version", "description", "metadata", "provider_state", "provider_payment_id",
    ]

    /// `UPDATE orders SET … WHERE id = … AND version = … RETURNING id`, with the placeholder
    /// each store writes for the n-th parameter (from 1).
    static func orderUpdateSQL(placeholder: (Int) -> String) -> String {
        let sets = orderUpdateColumns.enumerated().map { "\($0.element) = \(placeholder($0.offset + 1))" }.joined(separator: ", ")
        let n = orderUpdateColumns.count
        return "UPDATE orders SET \(sets) WHERE id = \(placeholder(n + 1)) AND version = \(placeholder(n + 2)) RETURNING id"
    }
}

/// The order listing's query for both stores: `SELECT … WHERE … ORDER BY … LIMIT`, newest
/// first, one more than the page so that the store knows whether a next page exists.
enum OrderListing {
    /// The statement and its parameters, with the placeholder each store writes for the n-th
    /// parameter (from 1).
    static func query(_ query: OrderQuery, placeholder: (Int) -> String) -> (sql: String, values: [StoreValue]) {
        var clauses: [String] = []
        var values: [StoreValue] = []
        func next(_ value: StoreValue) -> String {
            values.append(value)
            return placeholder(values.count)
        }
        if !query.states.isEmpty {
            clauses.append("state IN (\(query.states.map(\.rawValue).sorted().map { next(.text($0)) }.joined(separator: ", ")))")
        }
        if let from = query.createdFrom { clauses.append("created_at >= \(next(.int(from.ms)))") }
        if let before = query.createdBefore { clauses.append("created_at < \(next(.int(before.ms)))") }
        if let search = query.search {
            clauses.append(
                "(id = \(next(.text(search))) OR provider_order_id = \(next(.text(search))) OR merchant_reference = \(next(.text(search))))")
        }
        if let after = query.after {
            clauses.append(
                "(created_at < \(next(.int(after.createdAtMs))) OR (created_at = \(next(.int(after.createdAtMs))) AND id < \(next(.text(after.id)))))"
            )
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let limit = next(.int(Int64(query.limit + 1)))
        return ("SELECT \(orderReadColumns) FROM orders \(filter) ORDER BY created_at DESC, id DESC LIMIT \(limit)", values)
    }

    /// The page and the cursor of the next, from the rows the query returned.
    static func page(_ rows: [GatewayOrder], limit: Int) -> (orders: [GatewayOrder], next: OrderCursor?) {
        var orders = rows
        guard orders.count > limit else { return (orders, nil) }
        orders.removeLast(orders.count - limit)
        return (orders, orders.last.map { OrderCursor(createdAtMs: $0.createdAt.ms, id: $0.id) })
    }
}

enum RowDecoding {
    static func order(_ row: some RowReader) throws -> GatewayOrder {
        guard let id = row.string("id"), let provider = row.string("provider"),
            let providerOrderID = row.string("provider_order_id"),
            let kind = row.string("kind").flatMap(OrderKind.init(rawValue:)),
            let amount = row.int("amount"), let state = row.string("state").flatMap(OrderState.init(rawValue:)),
            let createdAt = row.int("created_at"), let updatedAt = row.int("updated_at"), let version = row.int("version")
        else { throw StoreError.database("an order row is incomplete") }
        var order = GatewayOrder(
            id: id, provider: provider, providerOrderID: providerOrderID, kind: kind, amount: Int(amount),
            description: row.string("description"), merchantReference: row.string("merchant_reference"),
            metadata: row.string("metadata"), mobileReturnURL: row.string("mobile_return_url"), state: state,
            refundedAmount: Int(row.int("refunded_amount") ?? 0), transactionID: row.string("transaction_id"),
            paymentURL: row.string("payment_url"), qrToken: row.string("qr_token"), paymentLinkID: row.string("payment_link_id"),
            needsReview: (row.int("needs_review") ?? 0) != 0, createdAt: Date(ms: createdAt), updatedAt: Date(ms: updatedAt),
            nextPollAt: row.int("next_poll_at").map { Date(ms: $0) }, pollAttempts: Int(row.int("poll_attempts") ?? 0),
            version: Int(version), providerState: row.string("provider_state"),
            providerPaymentID: row.string("provider_payment_id"))
        order.lastPolledAt = row.int("last_polled_at").map { Date(ms: $0) }
        order.locale = row.string("locale")
        return order
    }

    static func device(_ row: some RowReader) throws -> ProviderDevice {
        guard let id = row.string("id"), let provider = row.string("provider"), let tradePoint = row.int("trade_point_id"),
            let deviceID = row.string("device_id"), let token = row.string("token"), let created = row.int("created_at")
        else { throw StoreError.database("a device row is incomplete") }
        return ProviderDevice(
            id: id, provider: provider, organizationBin: row.string("organization_bin"), tradePointID: tradePoint, deviceID: deviceID,
            token: token, isDefault: (row.int("is_default") ?? 0) != 0, referencePrefix: row.string("reference_prefix"),
            createdAt: Date(ms: created), deletedAt: row.int("deleted_at").map { Date(ms: $0) })
    }

    static func event(_ row: some RowReader) throws -> OrderEvent {
        guard let orderID = row.string("order_id"), let at = row.int("at"),
            let kind = row.string("kind").flatMap(OrderEvent.Kind.init(rawValue:)), let detail = row.string("detail")
        else { throw StoreError.database("an event row is incomplete") }
        var event = OrderEvent(
            orderID: orderID, at: Date(ms: at), kind: kind, fromState: row.string("from_state").flatMap(OrderState.init(rawValue:)),
            toState: row.string("to_state").flatMap(OrderState.init(rawValue:)), detail: detail)
        event.id = row.int("id")
        return event
    }

    static func message(_ row: some RowReader) throws -> OutboxMessage {
        guard let id = row.string("id"), let type = row.string("type"), let orderID = row.string("order_id"),
            let payload = row.string("payload"), let createdAt = row.int("created_at"),
            let state = row.string("state").flatMap(OutboxMessage.State.init(rawValue:)), let next = row.int("next_attempt_at")
        else { throw StoreError.database("an outbox row is incomplete") }
        var message = OutboxMessage(id: id, type: type, orderID: orderID, payload: payload, createdAt: Date(ms: createdAt))
        message.state = state
        message.attempts = Int(row.int("attempts") ?? 0)
        message.nextAttemptAt = Date(ms: next)
        message.lastStatus = row.int("last_status").map { Int($0) }
        message.deliveredAt = row.int("delivered_at").map { Date(ms: $0) }
        return message
    }

    static func refund(_ row: some RowReader) throws -> RefundRecord {
        guard let id = row.string("id"), let orderID = row.string("order_id"), let amount = row.int("amount"),
            let createdAt = row.int("created_at"), let status = row.string("status").flatMap(RefundStatus.init(rawValue:))
        else {
            throw StoreError.database("a refund row is incomplete")
        }
        return RefundRecord(
            id: id, orderID: orderID, amount: Int(amount), status: status, detail: row.string("detail"),
            createdAt: Date(ms: createdAt), updatedAt: row.int("updated_at").map { Date(ms: $0) })
    }

    static func link(_ row: some RowReader) throws -> PaymentLink {
        guard let id = row.string("id"), let amount = row.int("amount"), let createdAt = row.int("created_at") else {
            throw StoreError.database("a payment link row is incomplete")
        }
        return PaymentLink(
            id: id, amount: Int(amount), description: row.string("description"), merchantReference: row.string("merchant_reference"),
            expiresAt: row.int("expires_at").map { Date(ms: $0) }, createdAt: Date(ms: createdAt), orderID: row.string("order_id"))
    }

    static func attempt(_ row: some RowReader) throws -> DeliveryAttempt {
        guard let messageID = row.string("message_id"), let at = row.int("at"), let latency = row.int("latency_ms") else {
            throw StoreError.database("a delivery attempt row is incomplete")
        }
        return DeliveryAttempt(
            messageID: messageID, at: Date(ms: at), statusCode: row.int("status_code").map { Int($0) }, latencyMs: Int(latency),
            error: row.string("error"), manual: (row.int("manual") ?? 0) != 0)
    }
}

/// A FIFO lock for async code: one holder at a time, waiters served in order.
actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty { locked = false } else { waiters.removeFirst().resume() }
    }

    nonisolated func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        do {
            let result = try await body()
            await unlock()
            return result
        } catch {
            await unlock()
            throw error
        }
    }
}
