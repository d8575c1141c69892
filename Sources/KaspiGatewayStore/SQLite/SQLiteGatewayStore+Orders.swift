import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

extension SQLiteGatewayStore {
    // MARK: Orders

    func orderBinds(_ o: GatewayOrder) -> [SQLiteData] { RowEncoding.order(o).map(Self.data) }

    public func insert(_ order: GatewayOrder, reserving reservation: IdempotencyReservation?) async throws {
        do {
            try await transaction { [self] db in
                if let reservation { try Self.reserve(reservation, resource: order.id, db) }
                try db.run(
                    "INSERT INTO orders (\(orderColumns)) VALUES (\(Array(repeating: "?", count: orderColumnCount).joined(separator: ", ")))",
                    orderBinds(order))
                try insertEvent(
                    OrderEvent(
                        orderID: order.id, at: order.createdAt, kind: .created, toState: order.state,
                        detail: "order stored for \(order.amount) via \(order.provider)"), db)
            }
        } catch StoreError.duplicateOrder {
            throw StoreError.duplicateOrder(order.providerOrderID)
        }
    }

    func insertEvent(_ event: OrderEvent, _ db: DirectConnection) throws {
        try db.run(
            "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?)",
            RowEncoding.event(event).map(Self.data))
    }

    func insertMessage(_ message: OutboxMessage, _ db: DirectConnection) throws {
        try db.run(
            "INSERT INTO outbox (\(outboxColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", RowEncoding.message(message).map(Self.data))
    }

    func selectOrder(id: String, _ db: DirectConnection) throws -> GatewayOrder? {
        try db.run("SELECT \(orderReadColumns) FROM orders WHERE id = ?", [.text(id)]).first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func order(id: String) async throws -> GatewayOrder? {
        try await fetch("SELECT \(orderReadColumns) FROM orders WHERE id = ?", [.text(id)]).first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func order(provider: String, providerPaymentID: String) async throws -> GatewayOrder? {
        try await fetch(
            "SELECT \(orderReadColumns) FROM orders WHERE provider = ? AND provider_payment_id = ?", [.text(provider), .text(providerPaymentID)]
        ).first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func order(provider: String, providerOrderID: String) async throws -> GatewayOrder? {
        try await fetch(
            "SELECT \(orderReadColumns) FROM orders WHERE provider = ? AND provider_order_id = ?", [.text(provider), .text(providerOrderID)]
        )
        .first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func orders(_ query: OrderQuery) async throws -> (orders: [GatewayOrder], next: OrderCursor?) {
        let (sql, values) = OrderListing.query(query) { _ in "?" }
        let rows = try await fetch(sql, values.map(Self.data))
        return OrderListing.page(try rows.map { try RowDecoding.order(SQLiteRowReader($0)) }, limit: query.limit)
    }

    public func events(orderID: String) async throws -> [OrderEvent] {
        try await fetch(
            "SELECT id, order_id, at, kind, from_state, to_state, detail FROM order_events WHERE order_id = ? ORDER BY id", [.text(orderID)]
        )
        .map { try RowDecoding.event(SQLiteRowReader($0)) }
    }

    public func update(orderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction { [self] db in
            guard let current = try selectOrder(id: orderID, db) else { throw StoreError.orderNotFound(orderID) }
            guard let change = try decide(current) else { return current }
            try write(change, replacing: current, db)
            return change.order
        }
    }

    public func update(from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        // Decided here, not on the writer's thread, which every write waits for: the job
        // only writes, unless the order changed since `current` was read.
        let planned = try decide(current)
        return try await transaction { [self] db in try write(planned, from: current, decide, db) }
    }

    /// Writes `planned` (`decide`'s change of `current`) if the order still has `current`'s
    /// version; otherwise reads it and decides again. On the writer, which is this store's
    /// alone, so a version that still matches cannot change before the commit.
    func write(
        _ planned: OrderChange?, from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?,
        _ db: DirectConnection
    ) throws -> GatewayOrder {
        if let planned, try write(planned, expectedVersion: current.version, db) {
            return planned.order
        }
        guard let stored = try selectOrder(id: current.id, db) else { throw StoreError.orderNotFound(current.id) }
        if planned == nil, stored.version == current.version { return stored }
        guard let change = try decide(stored) else { return stored }
        try write(change, replacing: stored, db)
        return change.order
    }

    func write(_ change: OrderChange, replacing current: GatewayOrder, _ db: DirectConnection) throws {
        guard try write(change, expectedVersion: current.version, db) else {
            throw StoreError.database("order \(change.order.id) changed underneath the update")
        }
    }

    /// Writes the change if the stored order has `expectedVersion`; false (nothing written) if not.
    func write(_ change: OrderChange, expectedVersion: Int, _ db: DirectConnection) throws -> Bool {
        let o = change.order
        let rows = try db.run(Self.orderUpdateSQL, RowEncoding.orderUpdate(o, expectedVersion: expectedVersion).map(Self.data))
        guard !rows.isEmpty else { return false }
        for event in change.events { try insertEvent(event, db) }
        for message in change.outbox { try insertMessage(message, db) }
        if let refund = change.refund {
            let settled = try db.run(
                "UPDATE refunds SET status = ?, detail = ?, updated_at = ? WHERE id = ? AND order_id = ? AND status IN ('pending', 'unknown') RETURNING id",
                [.text(refund.status.rawValue), .text(refund.detail), .integer(Int(o.updatedAt.ms)), .text(refund.refundID), .text(o.id)])
            guard !settled.isEmpty else { throw StoreError.refundAlreadyResolved(refund.refundID) }
        }
        if let answer = change.answer { try Self.storeAnswer(answer.reservation, answer.response, db) }
        return true
    }

    /// Records the answer of a request whose key it reserved (as ``saveIdempotentResponse(_:response:reservedOnly:)``
    /// with `reservedOnly`).
    static func storeAnswer(_ r: IdempotencyReservation, _ response: IdempotentResponse, _ db: DirectConnection) throws {
        try db.run(
            "UPDATE idempotency_keys SET state = 'done', status = ?, body = ? WHERE scope = ? AND key = ? AND owner = ? AND state = 'in_progress'",
            [.integer(response.status), .text(response.body), .text(r.scope), .text(r.key), .text(r.owner)])
    }

    public func update(
        provider: String, providerOrderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?
    ) async throws -> (before: GatewayOrder, after: GatewayOrder) {
        // Read on the reader's connection and decided on the caller's thread, so that the
        // writer's thread, which every write waits for, only writes (see update(from:)).
        guard let current = try await order(provider: provider, providerOrderID: providerOrderID) else {
            throw StoreError.orderNotFound(providerOrderID)
        }
        return (current, try await update(from: current, decide))
    }

    public func insert(contentsOf orders: [GatewayOrder]) async throws {
        guard !orders.isEmpty else { return }
        try await transaction { [self] db in
            let chunk = 500
            for start in stride(from: 0, to: orders.count, by: chunk) {
                let slice = orders[start..<min(start + chunk, orders.count)]
                let row = "(" + Array(repeating: "?", count: orderColumnCount).joined(separator: ", ") + ")"
                try db.run(
                    "INSERT INTO orders (\(orderColumns)) VALUES " + Array(repeating: row, count: slice.count).joined(separator: ", "),
                    slice.flatMap(orderBinds))
                try db.run(
                    "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES "
                        + Array(repeating: "(?, ?, ?, NULL, ?, ?)", count: slice.count).joined(separator: ", "),
                    slice.flatMap { o -> [SQLiteData] in
                        [
                            .text(o.id), .integer(Int(o.createdAt.ms)), .text(OrderEvent.Kind.created.rawValue), .text(o.state.rawValue),
                            .text("order stored for \(o.amount) via \(o.provider)"),
                        ]
                    })
            }
        }
    }

    public func recordRefund(
        orderID: String, amount: Int, refundID: String, at now: Date, reserving reservation: IdempotencyReservation?
    ) async throws -> GatewayOrder {
        try await transaction { [self] db in
            if let reservation { try Self.reserve(reservation, resource: refundID, db) }
            let updated = try db.run(
                """
                UPDATE orders SET refunded_amount = refunded_amount + ?, version = version + 1, updated_at = ?
                WHERE id = ? AND state = 'paid' AND refunded_amount + ? <= amount RETURNING \(orderReadColumns)
                """,
                [.integer(amount), .integer(Int(now.ms)), .text(orderID), .integer(amount)])
            guard let row = updated.first else {
                guard let current = try selectOrder(id: orderID, db) else { throw StoreError.orderNotFound(orderID) }
                if current.state != .paid { throw StoreError.notRefundable(orderID: orderID, state: current.state) }
                throw StoreError.refundExceedsPaid(orderID: orderID)
            }
            let order = try RowDecoding.order(SQLiteRowReader(row))
            var before = order
            before.refundedAmount -= amount
            guard let change = OrderStateMachine.refund(before, amount: amount, refundID: refundID, at: now) else {
                throw StoreError.refundExceedsPaid(orderID: orderID)
            }
            try db.run(
                "INSERT INTO refunds (id, order_id, amount, created_at, status, detail, updated_at) VALUES (?, ?, ?, ?, 'pending', 'reserved; Kaspi is being asked', ?)",
                [.text(refundID), .text(orderID), .integer(amount), .integer(Int(now.ms)), .integer(Int(now.ms))])
            for event in change.events { try insertEvent(event, db) }
            for message in change.outbox { try insertMessage(message, db) }
            return order
        }
    }

    public func refunds(orderID: String) async throws -> [RefundRecord] {
        try await fetch("SELECT \(refundColumns) FROM refunds WHERE order_id = ? ORDER BY created_at, id", [.text(orderID)])
            .map { try RowDecoding.refund(SQLiteRowReader($0)) }
    }

    public func unresolvedRefunds(pendingBefore: Date, limit: Int) async throws -> [RefundRecord] {
        try await fetch(
            """
            SELECT \(refundColumns) FROM refunds WHERE status IN ('pending', 'unknown') AND (status = 'unknown' OR created_at < ?)
            ORDER BY created_at, id LIMIT ?
            """,
            [.integer(Int(pendingBefore.ms)), .integer(limit)]
        ).map { try RowDecoding.refund(SQLiteRowReader($0)) }
    }
}
