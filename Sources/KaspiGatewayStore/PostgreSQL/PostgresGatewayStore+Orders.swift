import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Orders

    func insertQuery(_ o: GatewayOrder) -> PostgresQuery {
        "INSERT INTO orders (\(unescaped: orderColumns)) VALUES (\(values: RowEncoding.order(o)))"
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
        _ = try await rows(
            "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES (\(values: RowEncoding.event(event)))", on: connection
        )
    }

    func insertMessage(_ m: OutboxMessage, on connection: PostgresConnection) async throws {
        _ = try await rows("INSERT INTO outbox (\(unescaped: outboxColumns)) VALUES (\(values: RowEncoding.message(m)))", on: connection)
    }

    public func order(id: String) async throws -> GatewayOrder? {
        try await rows("SELECT \(unescaped: orderReadColumns) FROM orders WHERE id = \(id)").first.map { try RowDecoding.order($0) }
    }

    public func order(provider: String, providerPaymentID: String) async throws -> GatewayOrder? {
        try await rows(
            "SELECT \(unescaped: orderReadColumns) FROM orders WHERE provider = \(provider) AND provider_payment_id = \(providerPaymentID)"
        )
        .first.map { try RowDecoding.order($0) }
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
        // The filter is built once for both stores, each parameter numbered as it is added.
        let (sql, values) = OrderListing.query(query) { "$\($0)" }
        return OrderListing.page(
            try await rows(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(values))).map { try RowDecoding.order($0) }, limit: query.limit)
    }

    public func events(orderID: String) async throws -> [OrderEvent] {
        try await rows("SELECT id, order_id, at, kind, from_state, to_state, detail FROM order_events WHERE order_id = \(orderID) ORDER BY id").map {
            try RowDecoding.event($0)
        }
    }

    public func update(orderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction { connection in
            guard
                let current = try await rows("SELECT \(unescaped: orderReadColumns) FROM orders WHERE id = \(orderID) FOR UPDATE", on: connection)
                    .first.map({ try RowDecoding.order($0) })
            else {
                throw StoreError.orderNotFound(orderID)
            }
            guard let change = try decide(current) else { return current }
            let o = change.order
            let q = PostgresQuery(unsafeSQL: Self.orderUpdate, binds: Self.bindings(RowEncoding.orderUpdate(o, expectedVersion: current.version)))
            guard try await !rows(q, on: connection).isEmpty else { throw StoreError.database("order \(o.id) changed underneath the update") }
            for event in change.events { try await insertEvent(event, on: connection) }
            for message in change.outbox { try await insertMessage(message, on: connection) }
            if let refund = change.refund {
                let settle: PostgresQuery = """
                    UPDATE refunds SET status = \(refund.status.rawValue), detail = \(refund.detail), updated_at = \(ms: o.updatedAt)
                    WHERE id = \(refund.refundID) AND order_id = \(o.id) AND status IN ('pending', 'unknown') RETURNING id
                    """
                guard try await !rows(settle, on: connection).isEmpty else { throw StoreError.refundAlreadyResolved(refund.refundID) }
            }
            if let answer = change.answer { _ = try await rows(Self.answerQuery(answer.reservation, answer.response), on: connection) }
            return o
        }
    }

    public func update(from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await update(from: current, planned: try decide(current), decide)
    }

    /// ``update(from:_:)`` with `decide(current)` already made.
    func update(
        from current: GatewayOrder, planned: OrderChange?, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?
    ) async throws -> GatewayOrder {
        guard let change = planned, change.refund == nil else { return try await update(orderID: current.id, decide) }
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
                changed = try await rows(PostgresQuery(unsafeSQL: sql, binds: binds)).first?
                    .int("n")
            }
        } catch {
            throw map(error)
        }
        if changed == 1 { return change.order }
        // Someone changed the order since `current` was read: the locked path decides again.
        return try await update(orderID: current.id, decide)
    }

    /// An order's changed columns, `$1` to `$17` in the order `RowEncoding.orderUpdate` gives
    /// their values, if its version is still the one read: both update paths use it, and the
    /// prepared transition needs numbered parameters.
    static let orderUpdate = RowEncoding.orderUpdateSQL { "$\($0)" }

    /// Values the shared row encoder wrote, as parameters in their order.
    static func bindings(_ values: [StoreValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .text(let text): bindings.append(text)
            case .int(let int): bindings.append(int)
            case .int32(let int): bindings.append(int)
            }
        }
        return bindings
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
        var binds = bindings(
            RowEncoding.orderUpdate(change.order, expectedVersion: expectedVersion) + change.events.flatMap(RowEncoding.event)
                + change.outbox.flatMap(RowEncoding.message))
        if let answer = change.answer { bindAnswer(answer.reservation, answer.response, to: &binds) }
        return binds
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
                var insert = PostgresQuery.StringInterpolation(literalCapacity: 64 * slice.count, interpolationCount: orderColumnCount * slice.count)
                var events = PostgresQuery.StringInterpolation(literalCapacity: 16 * slice.count, interpolationCount: 6 * slice.count)
                insert.appendLiteral("INSERT INTO orders (\(orderColumns)) VALUES ")
                events.appendLiteral("INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES ")
                for (index, o) in slice.enumerated() {
                    let separator = index == 0 ? "(" : ", ("
                    insert.appendLiteral(separator)
                    insert.appendInterpolation(values: RowEncoding.order(o))
                    insert.appendLiteral(")")
                    events.appendLiteral(separator)
                    events.appendInterpolation(
                        values: RowEncoding.event(
                            OrderEvent(
                                orderID: o.id, at: o.createdAt, kind: .created, toState: o.state,
                                detail: "order stored for \(o.amount) via \(o.provider)")))
                    events.appendLiteral(")")
                }
                _ = try await rows(PostgresQuery(stringInterpolation: insert), on: connection)
                _ = try await rows(PostgresQuery(stringInterpolation: events), on: connection)
            }
        }
    }

    public func recordRefund(
        orderID: String, amount: Int, refundID: String, at now: Date, reserving reservation: IdempotencyReservation?
    ) async throws -> GatewayOrder {
        try await transaction { connection in
            if let reservation { try await reserve(reservation, resource: refundID, on: connection) }
            let q: PostgresQuery = """
                UPDATE orders SET refunded_amount = refunded_amount + \(Int64(amount)), version = version + 1, updated_at = \(ms: now)
                WHERE id = \(orderID) AND state = 'paid' AND refunded_amount + \(Int64(amount)) <= amount RETURNING \(unescaped: orderReadColumns)
                """
            guard let row = try await rows(q, on: connection).first else {
                guard
                    let current = try await rows("SELECT \(unescaped: orderReadColumns) FROM orders WHERE id = \(orderID)", on: connection).first.map(
                        { try RowDecoding.order($0) })
                else {
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
            let insert: PostgresQuery = """
                INSERT INTO refunds (id, order_id, amount, created_at, status, detail, updated_at)
                VALUES (\(refundID), \(orderID), \(Int64(amount)), \(ms: now), 'pending', 'reserved; Kaspi is being asked', \(ms: now))
                """
            _ = try await rows(insert, on: connection)
            for event in change.events { try await insertEvent(event, on: connection) }
            for message in change.outbox { try await insertMessage(message, on: connection) }
            return order
        }
    }

    public func refunds(orderID: String) async throws -> [RefundRecord] {
        try await rows("SELECT \(unescaped: refundColumns) FROM refunds WHERE order_id = \(orderID) ORDER BY created_at, id").map {
            try RowDecoding.refund($0)
        }
    }

    public func unresolvedRefunds(pendingBefore: Date, limit: Int) async throws -> [RefundRecord] {
        let q: PostgresQuery = """
            SELECT \(unescaped: refundColumns) FROM refunds WHERE status IN ('pending', 'unknown') AND (status = 'unknown' OR created_at < \(ms: pendingBefore))
            ORDER BY created_at, id LIMIT \(Int64(limit))
            """
        return try await rows(q).map { try RowDecoding.refund($0) }
    }
}
