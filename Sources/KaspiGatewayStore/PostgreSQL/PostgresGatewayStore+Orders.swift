import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Orders

    func insertQuery(_ o: GatewayOrder) -> Query {
        var q = Query("INSERT INTO orders (\(orderColumns)) VALUES (\((1...23).map { "$\($0)" }.joined(separator: ", ")))")
        bindOrder(o, to: &q)
        return q
    }

    /// Binds the 23 columns of `orderColumns`.
    func bindOrder(_ o: GatewayOrder, to q: inout Query) {
        for value in RowEncoding.order(o) { q.bind(value) }
    }

    public func insert(_ order: GatewayOrder, reserving reservation: IdempotencyReservation?) async throws {
        do {
            try await transaction { connection in
                if let reservation { try await reserve(reservation, resource: order.id, on: connection) }
                _ = try await rows(insertQuery(order), on: connection)
                try await insertEvent(
                    OrderEvent(
                        orderID: order.id, at: order.createdAt, kind: .created, toState: order.state,
                        detail: "order stored for \(order.amount) via \(order.provider)"), on: connection)
            }
        } catch StoreError.duplicateOrder {
            throw StoreError.duplicateOrder(order.providerOrderID)
        }
    }

    func insertEvent(_ event: OrderEvent, on connection: PostgresConnection) async throws {
        var q = Query("INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        for value in RowEncoding.event(event) { q.bind(value) }
        _ = try await rows(q, on: connection)
    }

    func insertMessage(_ m: OutboxMessage, on connection: PostgresConnection) async throws {
        var q = Query("INSERT INTO outbox (\(outboxColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        for value in RowEncoding.message(m) { q.bind(value) }
        _ = try await rows(q, on: connection)
    }

    public func order(id: String) async throws -> GatewayOrder? {
        var q = Query("SELECT \(orderReadColumns) FROM orders WHERE id = $1")
        q.bind(id)
        return try await rows(q).first.map { try RowDecoding.order($0) }
    }

    public func order(provider: String, providerPaymentID: String) async throws -> GatewayOrder? {
        var q = Query("SELECT \(orderReadColumns) FROM orders WHERE provider = $1 AND provider_payment_id = $2")
        q.bind(provider)
        q.bind(providerPaymentID)
        return try await rows(q).first.map { try RowDecoding.order($0) }
    }

    public func order(provider: String, providerOrderID: String) async throws -> GatewayOrder? {
        do {
            let row = try await client.execute(OrderByProviderStatement(provider: provider, providerOrderID: providerOrderID), logger: logger).first {
                _ in true
            }
            return try row.map { try RowDecoding.order($0) }
        } catch {
            throw map(error)
        }
    }

    public func orders(_ query: OrderQuery) async throws -> (orders: [GatewayOrder], next: OrderCursor?) {
        let (sql, values) = OrderListing.query(query) { "$\($0)" }
        var q = Query(sql)
        for value in values { q.bind(value) }
        return OrderListing.page(try await rows(q).map { try RowDecoding.order($0) }, limit: query.limit)
    }

    public func events(orderID: String) async throws -> [OrderEvent] {
        var q = Query("SELECT id, order_id, at, kind, from_state, to_state, detail FROM order_events WHERE order_id = $1 ORDER BY id")
        q.bind(orderID)
        return try await rows(q).map { try RowDecoding.event($0) }
    }

    public func update(orderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction { connection in
            var select = Query("SELECT \(orderReadColumns) FROM orders WHERE id = $1 FOR UPDATE")
            select.bind(orderID)
            guard let current = try await rows(select, on: connection).first.map({ try RowDecoding.order($0) }) else {
                throw StoreError.orderNotFound(orderID)
            }
            guard let change = try decide(current) else { return current }
            let o = change.order
            var q = Query(Self.orderUpdate)
            Self.bindOrderUpdate(o, expectedVersion: current.version, to: &q)
            guard try await !rows(q, on: connection).isEmpty else { throw StoreError.database("order \(o.id) changed underneath the update") }
            for event in change.events { try await insertEvent(event, on: connection) }
            for message in change.outbox { try await insertMessage(message, on: connection) }
            if let refund = change.refund {
                var settle = Query(
                    "UPDATE refunds SET status = $1, detail = $2, updated_at = $3 WHERE id = $4 AND order_id = $5 AND status IN ('pending', 'unknown') RETURNING id"
                )
                settle.bind(refund.status.rawValue)
                settle.bind(refund.detail)
                settle.bind(o.updatedAt)
                settle.bind(refund.refundID)
                settle.bind(o.id)
                guard try await !rows(settle, on: connection).isEmpty else { throw StoreError.refundAlreadyResolved(refund.refundID) }
            }
            if let answer = change.answer { _ = try await rows(Self.answerQuery(answer.reservation, answer.response), on: connection) }
            return o
        }
    }

    public func update(from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        guard let change = try decide(current), change.refund == nil else { return try await update(orderID: current.id, decide) }
        // One statement, so one round trip and its own transaction: the order's update (only if
        // its version still matches) and, only if it happened, the events and outbox rows. The
        // common shape (one event, one message) is a prepared statement, parsed once a connection.
        let binds = Self.transitionBindings(change, expectedVersion: current.version)
        let changed: Int64?
        do {
            if change.events.count == 1 && change.outbox.count == 1 && change.answer == nil {
                changed = try await client.execute(TransitionStatement(bindings: binds), logger: logger).first { _ in true }
            } else {
                let sql = Self.transitionSQL(events: change.events.count, messages: change.outbox.count, answer: change.answer != nil)
                changed = try await rows(Query(sql, binds: binds)).first?
                    .int("n")
            }
        } catch {
            throw map(error)
        }
        if changed == 1 { return change.order }
        // Someone changed the order since `current` was read: the locked path decides again.
        return try await update(orderID: current.id, decide)
    }

    /// An order's changed columns, `$1` to `$17` as ``bindOrderUpdate(_:expectedVersion:to:)``
    /// binds them, if its version is still the one read: both update paths use it.
    static let orderUpdate = RowEncoding.orderUpdateSQL { "$\($0)" }

    static func bindOrderUpdate(_ o: GatewayOrder, expectedVersion: Int, to q: inout Query) {
        for value in RowEncoding.orderUpdate(o, expectedVersion: expectedVersion) { q.bind(value) }
    }

    /// The statement of ``update(from:_:)`` for a change with so many events and messages.
    static func transitionSQL(events: Int, messages: Int, answer: Bool = false) -> String {
        var sql = """
            WITH changed AS (\(orderUpdate))
            """
        var next = 18
        func placeholders(_ count: Int) -> String {
            defer { next += count }
            return (next..<next + count).map { "$\($0)" }.joined(separator: ", ")
        }
        for index in 0..<events {
            sql +=
                ", event\(index) AS (INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) SELECT \(placeholders(6)) FROM changed)"
        }
        for index in 0..<messages {
            sql += ", message\(index) AS (INSERT INTO outbox (\(outboxColumns)) SELECT \(placeholders(10)) FROM changed)"
        }
        if answer {
            // Only when the order changed: otherwise the request's answer is not this one.
            sql += ", answer AS (\(answerSQL(from: next)) AND EXISTS (SELECT 1 FROM changed))"
        }
        return sql + " SELECT count(*)::BIGINT AS n FROM changed"
    }

    static func transitionBindings(_ change: OrderChange, expectedVersion: Int) -> PostgresBindings {
        var q = Query("")
        bindOrderUpdate(change.order, expectedVersion: expectedVersion, to: &q)
        for value in change.events.flatMap(RowEncoding.event) + change.outbox.flatMap(RowEncoding.message) { q.bind(value) }
        if let answer = change.answer { bindAnswer(answer.reservation, answer.response, to: &q) }
        return q.binds
    }

    /// ``transitionSQL(events:messages:)`` for one event and one message, prepared.
    struct TransitionStatement: PostgresPreparedStatement {
        static let name = "kaspikit_transition_1_1"
        static let sql = PostgresGatewayStore.transitionSQL(events: 1, messages: 1)
        /// The types `transitionBindings` sends, so that the server does not guess others.
        static let bindingDataTypes: [PostgresDataType] = [
            .text, .int8, .text, .text, .text, .text, .int4, .int8, .int8, .int4, .int8, .text, .text, .text, .text, .text, .int8,
            .text, .int8, .text, .text, .text, .text,
            .text, .text, .text, .text, .int8, .text, .int4, .int8, .int4, .int8,
        ]
        typealias Row = Int64
        var bindings: PostgresBindings
        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// The order lookup of every webhook, prepared.
    struct OrderByProviderStatement: PostgresPreparedStatement {
        static let name = "kaspikit_order_by_provider"
        static let sql = "SELECT \(orderReadColumns) FROM orders WHERE provider = $1 AND provider_order_id = $2"
        static let bindingDataTypes: [PostgresDataType] = [.text, .text]
        typealias Row = PostgresRandomAccessRow
        var provider: String
        var providerOrderID: String
        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(provider)
            bindings.append(providerOrderID)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRandomAccessRow { row.makeRandomAccess() }
    }

    public func update(
        provider: String, providerOrderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?
    ) async throws -> (before: GatewayOrder, after: GatewayOrder) {
        // With the reports arriving meanwhile: one lookup and one write for all of them.
        try await groupCommit.update(provider: provider, providerOrderID: providerOrderID, decide) { [self] order, decide in
            try await update(from: order, decide)
        }
    }

    public func insert(contentsOf orders: [GatewayOrder]) async throws {
        guard !orders.isEmpty else { return }
        try await transaction { connection in
            for start in stride(from: 0, to: orders.count, by: 1000) {
                let slice = orders[start..<min(start + 1000, orders.count)]
                var insert = Query("INSERT INTO orders (\(orderColumns)) VALUES ")
                var events = Query("INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES ")
                for (index, o) in slice.enumerated() {
                    insert.sql += (index == 0 ? "" : ", ") + "(" + (1...23).map { "$\(index * 23 + $0)" }.joined(separator: ", ") + ")"
                    bindOrder(o, to: &insert)
                    let e = index * 5
                    events.sql += (index == 0 ? "" : ", ") + "($\(e + 1), $\(e + 2), $\(e + 3), NULL, $\(e + 4), $\(e + 5))"
                    events.bind(o.id)
                    events.bind(o.createdAt)
                    events.bind(OrderEvent.Kind.created.rawValue)
                    events.bind(o.state.rawValue)
                    events.bind("order stored for \(o.amount) via \(o.provider)")
                }
                _ = try await rows(insert, on: connection)
                _ = try await rows(events, on: connection)
            }
        }
    }

    public func recordRefund(
        orderID: String, amount: Int, refundID: String, at now: Date, reserving reservation: IdempotencyReservation?
    ) async throws -> GatewayOrder {
        try await transaction { connection in
            if let reservation { try await reserve(reservation, resource: refundID, on: connection) }
            var q = Query(
                """
                UPDATE orders SET refunded_amount = refunded_amount + $1, version = version + 1, updated_at = $2
                WHERE id = $3 AND state = 'paid' AND refunded_amount + $1 <= amount RETURNING \(orderReadColumns)
                """)
            q.bind(amount)
            q.bind(now)
            q.bind(orderID)
            guard let row = try await rows(q, on: connection).first else {
                var select = Query("SELECT \(orderReadColumns) FROM orders WHERE id = $1")
                select.bind(orderID)
                guard let current = try await rows(select, on: connection).first.map({ try RowDecoding.order($0) }) else {
                    throw StoreError.orderNotFound(orderID)
                }
                if current.state != .paid { throw StoreError.notRefundable(orderID: orderID, state: current.state) }
                throw StoreError.refundExceedsPaid(orderID: orderID)
            }
            let order = try RowDecoding.order(row)
            var before = order
            before.refundedAmount -= amount
            guard let change = OrderStateMachine.refund(before, amount: amount, refundID: refundID, at: now) else {
                throw StoreError.refundExceedsPaid(orderID: orderID)
            }
            var insert = Query(
                "INSERT INTO refunds (id, order_id, amount, created_at, status, detail, updated_at) VALUES ($1, $2, $3, $4, 'pending', 'reserved; Kaspi is being asked', $4)"
            )
            insert.bind(refundID)
            insert.bind(orderID)
            insert.bind(amount)
            insert.bind(now)
            _ = try await rows(insert, on: connection)
            for event in change.events { try await insertEvent(event, on: connection) }
            for message in change.outbox { try await insertMessage(message, on: connection) }
            return order
        }
    }

    public func refunds(orderID: String) async throws -> [RefundRecord] {
        var q = Query("SELECT \(refundColumns) FROM refunds WHERE order_id = $1 ORDER BY created_at, id")
        q.bind(orderID)
        return try await rows(q).map { try RowDecoding.refund($0) }
    }

    public func unresolvedRefunds(pendingBefore: Date, limit: Int) async throws -> [RefundRecord] {
        var q = Query(
            """
            SELECT \(refundColumns) FROM refunds WHERE status IN ('pending', 'unknown') AND (status = 'unknown' OR created_at < $1)
            ORDER BY created_at, id LIMIT $2
            """)
        q.bind(pendingBefore)
        q.bind(limit)
        return try await rows(q).map { try RowDecoding.refund($0) }
    }
}
