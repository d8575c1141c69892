import Foundation
import Logging
import PostgresNIO

/// The store for more than one machine: several gateway instances share one PostgreSQL.
/// Orders are locked with `SELECT … FOR UPDATE` while they change, and background work is
/// claimed with `FOR UPDATE SKIP LOCKED` and a lease that expires.
///
/// The `PostgresClient` pool is a service: run ``client`` in the application's service group,
/// or use ``withStore(url:logger:_:)``.
public final class PostgresGatewayStore: GatewayStore {
    /// The connection pool; it must be running (it is a `Service`).
    public let client: PostgresClient
    private let logger: Logger
    /// The webhook path's group commit (see ``update(provider:providerOrderID:_:)``).
    let groupCommit: PostgresGroupCommit

    public init(client: PostgresClient, logger: Logger = Logger(label: "kaspi-gateway-postgres")) {
        self.client = client
        self.logger = logger
        self.groupCommit = PostgresGroupCommit(client: client, logger: logger)
    }

    /// How many group commits of status reports have carried how many reports.
    public var groupCommitStatistics: (batches: Int, jobs: Int) { groupCommit.batchStatistics }

    /// Parses a `postgres://user:password@host:port/database` URL into a client configuration.
    ///
    /// - Throws: ``StoreError/database(_:)`` naming what is wrong (never the password).
    public static func configuration(url text: String) throws -> PostgresClient.Configuration {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError.database("the database URL must look like postgres://user:password@host:5432/database")
        }
        guard let host = url.host, !host.isEmpty else { throw StoreError.database("the database URL has no host") }
        guard let user = url.user, !user.isEmpty else { throw StoreError.database("the database URL has no user") }
        let database = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let query = URLComponents(string: text)?.queryItems ?? []
        let tls: PostgresClient.Configuration.TLS
        switch query.first(where: { $0.name == "sslmode" })?.value ?? "disable" {
        case "disable": tls = .disable
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password?.removingPercentEncoding ?? url.password,
            database: database.isEmpty ? nil : database, tls: tls)
        // Enough for group commits to form under load; several instances share the server's
        // max_connections (100 by default), so it can be set with ?pool_max=N.
        var maximum = 20
        if let text = query.first(where: { $0.name == "pool_max" })?.value {
            guard let value = Int(text), (1...500).contains(value) else { throw StoreError.database("pool_max in the database URL must be 1 to 500") }
            maximum = value
        }
        configuration.options.maximumConnections = maximum
        return configuration
    }

    /// Runs `body` with a store whose pool runs for the duration.
    public static func withStore<T: Sendable>(
        url: String, logger: Logger = Logger(label: "kaspi-gateway-postgres"), _ body: (PostgresGatewayStore) async throws -> T
    ) async throws -> T {
        try await withStore(configuration: try configuration(url: url), logger: logger, body)
    }

    /// Runs `body` with a store over a client made from `configuration`.
    public static func withStore<T: Sendable>(
        configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "kaspi-gateway-postgres"),
        _ body: (PostgresGatewayStore) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(PostgresGatewayStore(client: client, logger: logger))
        }
    }

    public func close() async throws {}

    // MARK: Plumbing

    private struct Query {
        var sql: String
        var binds = PostgresBindings()

        init(_ sql: String) { self.sql = sql }
        init(_ sql: String, binds: PostgresBindings) {
            self.sql = sql
            self.binds = binds
        }

        mutating func bind(_ value: String?) { binds.append(value) }
        mutating func bind(_ value: Int64?) { binds.append(value) }
        mutating func bind(_ value: Int) { binds.append(Int64(value)) }
        mutating func bind(_ value: Date?) { binds.append(value?.ms) }
        var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
    }

    private func map(_ error: any Error) -> any Error { Self.mapError(error) }

    static func mapError(_ error: any Error) -> any Error {
        if let error = error as? StoreError { return error }
        if let error = error as? PSQLError {
            switch error.serverInfo?[.sqlState] {
            case "23505": return StoreError.duplicateOrder("")
            case "23514": return StoreError.database("a constraint refused the change")
            default: return StoreError.database("PostgreSQL: \(error.serverInfo?[.message] ?? "\(error.code)")")
            }
        }
        return error
    }

    private func rows(_ query: Query, on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        do {
            let sequence: PostgresRowSequence
            if let connection {
                sequence = try await connection.query(query.query, logger: logger)
            } else {
                sequence = try await client.query(query.query, logger: logger)
            }
            var result: [PostgresRandomAccessRow] = []
            for try await row in sequence { result.append(row.makeRandomAccess()) }
            return result
        } catch {
            throw map(error)
        }
    }

    private func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw map(error.closureError ?? error.commitError ?? error.beginError ?? error)
        } catch {
            throw map(error)
        }
    }

    // MARK: Migrations

    public func migrate() async throws -> [Int] {
        try await transaction { connection in
            // One instance migrates at a time.
            _ = try await rows(Query("SELECT pg_advisory_xact_lock(727274271)"), on: connection)
            _ = try await rows(
                Query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"), on: connection)
            let current = Int(
                try await rows(Query("SELECT COALESCE(MAX(version), 0)::BIGINT AS v FROM schema_migrations"), on: connection).first?.int("v") ?? 0)
            guard current <= Migrations.latest else { throw StoreError.schemaTooNew(found: current, known: Migrations.latest) }
            var applied: [Int] = []
            for migration in Migrations.all(.postgres) where migration.version > current {
                for statement in migration.statements { _ = try await rows(Query(statement), on: connection) }
                var record = Query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                record.binds.append(Int32(migration.version))
                record.bind(Date())
                _ = try await rows(record, on: connection)
                applied.append(migration.version)
            }
            return applied
        }
    }

    public func schemaVersion() async throws -> Int {
        let exists = try await rows(Query("SELECT to_regclass('schema_migrations')::TEXT AS t")).first?.string("t")
        guard exists != nil else { return 0 }
        return Int(try await rows(Query("SELECT COALESCE(MAX(version), 0)::BIGINT AS v FROM schema_migrations")).first?.int("v") ?? 0)
    }

    // MARK: Orders

    private func insertQuery(_ o: GatewayOrder) -> Query {
        var q = Query("INSERT INTO orders (\(orderColumns)) VALUES (\((1...23).map { "$\($0)" }.joined(separator: ", ")))")
        bindOrder(o, to: &q)
        return q
    }

    /// Binds the 23 columns of `orderColumns`.
    private func bindOrder(_ o: GatewayOrder, to q: inout Query) {
        q.bind(o.id)
        q.bind(o.provider)
        q.bind(o.providerOrderID)
        q.bind(o.kind.rawValue)
        q.bind(o.amount)
        q.bind(o.description)
        q.bind(o.merchantReference)
        q.bind(o.metadata)
        q.bind(o.mobileReturnURL)
        q.bind(o.state.rawValue)
        q.bind(o.refundedAmount)
        q.bind(o.transactionID)
        q.bind(o.paymentURL)
        q.bind(o.qrToken)
        q.bind(o.paymentLinkID)
        q.binds.append(Int32(o.needsReview ? 1 : 0))
        q.bind(o.createdAt)
        q.bind(o.updatedAt)
        q.bind(o.nextPollAt)
        q.binds.append(Int32(o.pollAttempts))
        q.bind(o.version)
        q.bind(o.providerState)
        q.bind(o.providerPaymentID)
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

    private func insertEvent(_ event: OrderEvent, on connection: PostgresConnection) async throws {
        var q = Query("INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        q.bind(event.orderID)
        q.bind(event.at)
        q.bind(event.kind.rawValue)
        q.bind(event.fromState?.rawValue)
        q.bind(event.toState?.rawValue)
        q.bind(event.detail)
        _ = try await rows(q, on: connection)
    }

    private func insertMessage(_ m: OutboxMessage, on connection: PostgresConnection) async throws {
        var q = Query("INSERT INTO outbox (\(outboxColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        q.bind(m.id)
        q.bind(m.type)
        q.bind(m.orderID)
        q.bind(m.payload)
        q.bind(m.createdAt)
        q.bind(m.state.rawValue)
        q.binds.append(Int32(m.attempts))
        q.bind(m.nextAttemptAt)
        q.binds.append(m.lastStatus.map { Int32($0) })
        q.bind(m.deliveredAt)
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
        var q = Query("")
        var clauses: [String] = []
        var n = 0
        func next() -> String {
            n += 1
            return "$\(n)"
        }
        if !query.states.isEmpty {
            clauses.append("state IN (\(query.states.map { _ in next() }.joined(separator: ", ")))")
            for state in query.states.map(\.rawValue).sorted() { q.bind(state) }
        }
        if let from = query.createdFrom {
            clauses.append("created_at >= \(next())")
            q.bind(from)
        }
        if let before = query.createdBefore {
            clauses.append("created_at < \(next())")
            q.bind(before)
        }
        if let search = query.search {
            clauses.append("(id = \(next()) OR provider_order_id = \(next()) OR merchant_reference = \(next()))")
            q.bind(search)
            q.bind(search)
            q.bind(search)
        }
        if let after = query.after {
            clauses.append("(created_at < \(next()) OR (created_at = \(next()) AND id < \(next())))")
            q.bind(after.createdAtMs)
            q.bind(after.createdAtMs)
            q.bind(after.id)
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        q.sql = "SELECT \(orderReadColumns) FROM orders \(filter) ORDER BY created_at DESC, id DESC LIMIT \(next())"
        q.bind(query.limit + 1)
        var orders = try await rows(q).map { try RowDecoding.order($0) }
        var cursor: OrderCursor? = nil
        if orders.count > query.limit {
            orders.removeLast()
            if let last = orders.last { cursor = OrderCursor(createdAtMs: last.createdAt.ms, id: last.id) }
        }
        return (orders, cursor)
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
    static let orderUpdate = """
        UPDATE orders SET state = $1, refunded_amount = $2, transaction_id = $3, payment_url = $4, qr_token = $5, payment_link_id = $6,
            needs_review = $7, updated_at = $8, next_poll_at = $9, poll_attempts = $10, version = $11, description = $12, metadata = $13,
            provider_state = $14, provider_payment_id = $15
        WHERE id = $16 AND version = $17 RETURNING id
        """

    private static func bindOrderUpdate(_ o: GatewayOrder, expectedVersion: Int, to q: inout Query) {
        q.bind(o.state.rawValue)
        q.bind(o.refundedAmount)
        q.bind(o.transactionID)
        q.bind(o.paymentURL)
        q.bind(o.qrToken)
        q.bind(o.paymentLinkID)
        q.binds.append(Int32(o.needsReview ? 1 : 0))
        q.bind(o.updatedAt)
        q.bind(o.nextPollAt)
        q.binds.append(Int32(o.pollAttempts))
        q.bind(o.version)
        q.bind(o.description)
        q.bind(o.metadata)
        q.bind(o.providerState)
        q.bind(o.providerPaymentID)
        q.bind(o.id)
        q.bind(expectedVersion)
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
        for event in change.events {
            q.bind(event.orderID)
            q.bind(event.at)
            q.bind(event.kind.rawValue)
            q.bind(event.fromState?.rawValue)
            q.bind(event.toState?.rawValue)
            q.bind(event.detail)
        }
        for m in change.outbox {
            q.bind(m.id)
            q.bind(m.type)
            q.bind(m.orderID)
            q.bind(m.payload)
            q.bind(m.createdAt)
            q.bind(m.state.rawValue)
            q.binds.append(Int32(m.attempts))
            q.bind(m.nextAttemptAt)
            q.binds.append(m.lastStatus.map { Int32($0) })
            q.bind(m.deliveredAt)
        }
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

    // MARK: Background work

    public func claimOrdersToPoll(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [GatewayOrder] {
        var q = Query(
            """
            UPDATE orders SET lease_owner = $1, lease_until = $2
            WHERE id IN (
                SELECT id FROM orders WHERE next_poll_at IS NOT NULL AND next_poll_at <= $3 AND state IN ('created', 'pending', 'expired')
                  AND (lease_until IS NULL OR lease_until < $3)
                ORDER BY next_poll_at LIMIT $4 FOR UPDATE SKIP LOCKED)
            RETURNING \(orderReadColumns)
            """)
        q.bind(owner)
        q.bind(now.addingTimeInterval(lease))
        q.bind(now)
        q.bind(limit)
        return try await rows(q).map { try RowDecoding.order($0) }.sorted { ($0.nextPollAt ?? now) < ($1.nextPollAt ?? now) }
    }

    public func schedulePoll(orderID: String, at: Date?, attempts: Int, owner: String, polledAt: Date?) async throws {
        var q = Query(
            "UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending', 'expired') THEN $1::BIGINT ELSE NULL END, poll_attempts = $2, lease_owner = NULL, lease_until = NULL, last_polled_at = COALESCE($5::BIGINT, last_polled_at) WHERE id = $3 AND (lease_owner IS NULL OR lease_owner = $4)"
        )
        q.bind(at)
        q.binds.append(Int32(attempts))
        q.bind(orderID)
        q.bind(owner)
        q.bind(polledAt)
        _ = try await rows(q)
    }

    public func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage] {
        let qualified = outboxColumns.split(separator: ",").map { "outbox." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        var q = Query(
            """
            UPDATE outbox SET lease_owner = $1, lease_until = $2 + $5 * picked.position
            FROM (
                SELECT id, row_number() OVER (ORDER BY next_attempt_at, created_at) AS position FROM (
                    SELECT id, next_attempt_at, created_at FROM outbox
                    WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
                    ORDER BY next_attempt_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED) AS locked) AS picked
            WHERE outbox.id = picked.id
            RETURNING \(qualified)
            """)
        q.bind(owner)
        q.bind(now)
        q.bind(now)
        q.bind(limit)
        q.bind(Int64((lease * 1000).rounded()))
        return try await rows(q).map { try RowDecoding.message($0) }.sorted { ($0.nextAttemptAt, $0.createdAt) < ($1.nextAttemptAt, $1.createdAt) }
    }

    public func recordDelivery(_ attempt: DeliveryAttempt, delivered: Bool, retryAt: Date?, owner: String) async throws -> Bool {
        try await transaction { connection in
            let state = delivered ? "delivered" : (retryAt == nil ? "failed" : "pending")
            var update = Query(
                """
                UPDATE outbox SET attempts = attempts + 1, last_status = $1, state = CASE WHEN state = 'delivered' THEN 'delivered' ELSE $2 END,
                    delivered_at = CASE WHEN $2 = 'delivered' AND delivered_at IS NULL THEN $3 ELSE delivered_at END,
                    next_attempt_at = COALESCE($4, next_attempt_at), lease_owner = NULL, lease_until = NULL
                WHERE id = $5 AND lease_owner = $6 RETURNING id
                """)
            update.binds.append(attempt.statusCode.map { Int32($0) })
            update.bind(state)
            update.bind(attempt.at)
            update.bind(retryAt)
            update.bind(attempt.messageID)
            update.bind(owner)
            guard try await !rows(update, on: connection).isEmpty else { return false }
            var insert = Query(
                "INSERT INTO delivery_attempts (message_id, at, status_code, latency_ms, error, manual) VALUES ($1, $2, $3, $4, $5, $6)")
            insert.bind(attempt.messageID)
            insert.bind(attempt.at)
            insert.binds.append(attempt.statusCode.map { Int32($0) })
            insert.binds.append(Int32(attempt.latencyMs))
            insert.bind(attempt.error)
            insert.binds.append(Int32(attempt.manual ? 1 : 0))
            _ = try await rows(insert, on: connection)
            return true
        }
    }

    public func releaseLeases(owner: String) async throws -> Int {
        try await transaction { connection in
            var orders = Query("UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 RETURNING id")
            orders.bind(owner)
            var outbox = Query("UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 RETURNING id")
            outbox.bind(owner)
            return try await rows(orders, on: connection).count + rows(outbox, on: connection).count
        }
    }

    public func outboxMessages(orderID: String?, limit: Int) async throws -> [OutboxMessage] {
        var q: Query
        if let orderID {
            q = Query("SELECT \(outboxColumns) FROM outbox WHERE order_id = $1 ORDER BY created_at DESC, id LIMIT $2")
            q.bind(orderID)
        } else {
            q = Query("SELECT \(outboxColumns) FROM outbox ORDER BY created_at DESC, id LIMIT $1")
        }
        q.bind(limit)
        return try await rows(q).map { try RowDecoding.message($0) }
    }

    public func deliveryAttempts(messageID: String) async throws -> [DeliveryAttempt] {
        var q = Query("SELECT message_id, at, status_code, latency_ms, error, manual FROM delivery_attempts WHERE message_id = $1 ORDER BY id")
        q.bind(messageID)
        return try await rows(q).map { try RowDecoding.attempt($0) }
    }

    public func requeue(messageID: String, now: Date) async throws {
        var q = Query("UPDATE outbox SET state = 'pending', next_attempt_at = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2")
        q.bind(now)
        q.bind(messageID)
        _ = try await rows(q)
    }

    // MARK: Payment links

    public func insert(_ link: PaymentLink, reserving reservation: IdempotencyReservation?) async throws {
        try await transaction { connection in
            if let reservation { try await reserve(reservation, resource: link.id, on: connection) }
            var q = Query("INSERT INTO payment_links (\(linkColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            q.bind(link.id)
            q.bind(link.amount)
            q.bind(link.description)
            q.bind(link.merchantReference)
            q.bind(link.expiresAt)
            q.bind(link.createdAt)
            q.bind(link.orderID)
            _ = try await rows(q, on: connection)
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        var q = Query("SELECT \(linkColumns) FROM payment_links WHERE id = $1")
        q.bind(id)
        return try await rows(q).first.map { try RowDecoding.link($0) }
    }

    public func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool {
        var q = Query("UPDATE payment_links SET order_id = $1 WHERE id = $2 AND order_id IS NOT DISTINCT FROM $3 RETURNING id")
        q.bind(orderID)
        q.bind(linkID)
        q.bind(expected)
        return try await !rows(q).isEmpty
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        var q = Query("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT $1")
        q.bind(limit)
        return try await rows(q).map { try RowDecoding.link($0) }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        var insert = Query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        insert.bind(key)
        insert.bind(value())
        _ = try await rows(insert)
        var select = Query("SELECT value FROM settings WHERE key = $1")
        select.bind(key)
        return try await rows(select).first?.string("value") ?? ""
    }

    public func setting(_ key: String) async throws -> String? {
        var select = Query("SELECT value FROM settings WHERE key = $1")
        select.bind(key)
        return try await rows(select).first?.string("value")
    }

    // MARK: Devices

    public func save(_ device: ProviderDevice) async throws {
        try await transaction { connection in
            if device.isDefault, device.deletedAt == nil {
                var clear = Query("UPDATE provider_devices SET is_default = 0 WHERE provider = $1 AND id <> $2")
                clear.bind(device.provider)
                clear.bind(device.id)
                _ = try await rows(clear, on: connection)
            }
            var q = Query(
                """
                INSERT INTO provider_devices (\(deviceColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (id) DO UPDATE SET provider = EXCLUDED.provider, organization_bin = EXCLUDED.organization_bin,
                    trade_point_id = EXCLUDED.trade_point_id, device_id = EXCLUDED.device_id, token = EXCLUDED.token,
                    is_default = EXCLUDED.is_default, reference_prefix = EXCLUDED.reference_prefix, created_at = EXCLUDED.created_at,
                    deleted_at = EXCLUDED.deleted_at
                """)
            q.bind(device.id)
            q.bind(device.provider)
            q.bind(device.organizationBin)
            q.bind(device.tradePointID)
            q.bind(device.deviceID)
            q.bind(device.token)
            q.binds.append(Int32(device.isDefault ? 1 : 0))
            q.bind(device.referencePrefix)
            q.bind(device.createdAt)
            q.bind(device.deletedAt)
            _ = try await rows(q, on: connection)
        }
    }

    public func devices(provider: String) async throws -> [ProviderDevice] {
        var q = Query("SELECT \(deviceColumns) FROM provider_devices WHERE provider = $1 AND deleted_at IS NULL ORDER BY created_at, id")
        q.bind(provider)
        return try await rows(q).map { try RowDecoding.device($0) }
    }

    public func deleteDevice(id: String, at: Date) async throws -> Bool {
        var q = Query("UPDATE provider_devices SET deleted_at = $1, is_default = 0 WHERE id = $2 AND deleted_at IS NULL RETURNING id")
        q.bind(at)
        q.bind(id)
        return try await !rows(q).isEmpty
    }

    // MARK: Rate limit

    public func takeRateSlot(key: String, limit: Int, window: TimeInterval, now: Date) async throws -> TimeInterval? {
        try await transaction { connection in
            // One taker of this key at a time, whichever instance it runs in.
            var lock = Query("SELECT pg_advisory_xact_lock(727274272, hashtext($1))")
            lock.bind(key)
            _ = try await rows(lock, on: connection)
            let start = now.addingTimeInterval(-window)
            var prune = Query("DELETE FROM rate_slots WHERE key = $1 AND at <= $2")
            prune.bind(key)
            prune.bind(start)
            _ = try await rows(prune, on: connection)
            var count = Query("SELECT count(*)::BIGINT AS n, min(at) AS oldest FROM rate_slots WHERE key = $1")
            count.bind(key)
            let row = try await rows(count, on: connection).first
            if (row?.int("n") ?? 0) < Int64(limit) {
                var insert = Query("INSERT INTO rate_slots (key, at) VALUES ($1, $2)")
                insert.bind(key)
                insert.bind(now)
                _ = try await rows(insert, on: connection)
                return nil
            }
            let oldest = row?.int("oldest") ?? now.ms
            return max(0.001, Double(oldest - start.ms) / 1000)
        }
    }

    // MARK: Idempotency

    /// Reserves a key inside the caller's transaction; an expired key is taken over.
    ///
    /// - Throws: ``StoreError/idempotencyInProgress(key:)`` when another request holds it.
    private func reserve(_ r: IdempotencyReservation, resource: String, on connection: PostgresConnection) async throws {
        var expired = Query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3")
        expired.bind(r.scope)
        expired.bind(r.key)
        expired.bind(r.expiredBefore)
        _ = try await rows(expired, on: connection)
        var q = Query(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner, resource)
            VALUES ($1, $2, $3, 0, '', $4, 'in_progress', $5, $6) ON CONFLICT (scope, key) DO NOTHING RETURNING key
            """)
        q.bind(r.scope)
        q.bind(r.key)
        q.bind(r.requestHash)
        q.bind(r.at)
        q.bind(r.owner)
        q.bind(resource)
        guard try await !rows(q, on: connection).isEmpty else { throw StoreError.idempotencyInProgress(key: r.key) }
    }

    public func idempotencyRecord(scope: String, key: String, requestHash: String, expiredBefore: Date) async throws -> IdempotencyRecord? {
        var q = Query(
            "SELECT request_hash, status::BIGINT AS status, body, state, resource, owner, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at >= $3"
        )
        q.bind(scope)
        q.bind(key)
        q.bind(expiredBefore)
        guard let row = try await rows(q).first else { return nil }
        guard row.string("request_hash") == requestHash else { throw StoreError.idempotencyConflict(key: key) }
        if row.string("state") == "in_progress" {
            return .inProgress(since: Date(ms: row.int("created_at") ?? 0), resource: row.string("resource"), owner: row.string("owner"))
        }
        return .done(IdempotentResponse(status: Int(row.int("status") ?? 0), body: row.string("body") ?? ""))
    }

    /// Records the answer of a request whose key it reserved.
    private static func answerQuery(_ r: IdempotencyReservation, _ response: IdempotentResponse) -> Query {
        var q = Query(Self.answerSQL(from: 1))
        bindAnswer(r, response, to: &q)
        return q
    }

    /// The answer's update, its parameters numbered from `first`.
    static func answerSQL(from first: Int) -> String {
        let p = (first..<first + 5).map { "$\($0)" }
        return
            "UPDATE idempotency_keys SET state = 'done', status = \(p[0]), body = \(p[1]) WHERE scope = \(p[2]) AND key = \(p[3]) AND owner = \(p[4]) AND state = 'in_progress'"
    }

    private static func bindAnswer(_ r: IdempotencyReservation, _ response: IdempotentResponse, to q: inout Query) {
        q.binds.append(Int32(clamping: response.status))
        q.bind(response.body)
        q.bind(r.scope)
        q.bind(r.key)
        q.bind(r.owner)
    }

    public func saveIdempotentResponse(_ r: IdempotencyReservation, response: IdempotentResponse, reservedOnly: Bool) async throws {
        if reservedOnly {
            _ = try await rows(Self.answerQuery(r, response))
        } else {
            var q = Query(
                """
                INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner)
                VALUES ($1, $2, $3, $4, $5, $6, 'done', $7)
                ON CONFLICT (scope, key) DO UPDATE SET state = 'done', status = excluded.status, body = excluded.body
                WHERE idempotency_keys.owner = excluded.owner AND idempotency_keys.state = 'in_progress'
                """)
            q.bind(r.scope)
            q.bind(r.key)
            q.bind(r.requestHash)
            q.binds.append(Int32(clamping: response.status))
            q.bind(response.body)
            q.bind(r.at)
            q.bind(r.owner)
            _ = try await rows(q)
        }
    }

    public func takeOverIdempotencyKey(scope: String, key: String, from oldOwner: String, to newOwner: String, at: Date) async throws -> Bool {
        var q = Query(
            "UPDATE idempotency_keys SET owner = $1, created_at = $2 WHERE scope = $3 AND key = $4 AND owner = $5 AND state = 'in_progress' RETURNING key"
        )
        q.bind(newOwner)
        q.bind(at)
        q.bind(scope)
        q.bind(key)
        q.bind(oldOwner)
        return try await !rows(q).isEmpty
    }

    public func deleteIdempotencyKeys(createdBefore cutoff: Date) async throws -> Int {
        var q = Query("DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING key")
        q.bind(cutoff)
        return try await rows(q).count
    }
}

extension PostgresRandomAccessRow: RowReader {
    func string(_ column: String) -> String? {
        guard contains(column) else { return nil }
        return try? self[column].decode(String?.self)
    }

    func int(_ column: String) -> Int64? {
        guard contains(column) else { return nil }
        if let value = try? self[column].decode(Int64?.self) { return value }
        if let value = try? self[column].decode(Int32?.self) { return Int64(value) }
        return nil
    }
}
