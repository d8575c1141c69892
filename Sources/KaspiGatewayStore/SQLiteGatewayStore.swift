import Foundation
import Logging
import SQLiteNIO

/// The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on
/// disk before it is acknowledged. One connection; transactions run one after another.
public final class SQLiteGatewayStore: GatewayStore {
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let logger: Logger

    private init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Opens (or creates) the database file. Migrations are not applied: call ``migrate()``.
    ///
    /// - Parameter path: the file, or `:memory:` for a throwaway database.
    public static func open(path: String, logger: Logger = Logger(label: "kaspi-gateway-sqlite")) async throws -> SQLiteGatewayStore {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let connection = try await SQLiteConnection.open(storage: storage, logger: logger)
        do {
            if path != ":memory:" { _ = try await connection.query("PRAGMA journal_mode=WAL", []) }
            _ = try await connection.query("PRAGMA synchronous=FULL", [])
            _ = try await connection.query("PRAGMA foreign_keys=ON", [])
            _ = try await connection.query("PRAGMA busy_timeout=5000", [])
        } catch {
            try? await connection.close()
            throw StoreError.database("cannot open \(path): \(error)")
        }
        return SQLiteGatewayStore(connection: connection, logger: logger)
    }

    /// The `synchronous` setting actually in force (2 is FULL).
    public func synchronousSetting() async throws -> Int {
        Int(try await connection.query("PRAGMA synchronous", []).first?.columns.first?.data.integer ?? -1)
    }

    public func close() async throws {
        try await lock.withLock { try await connection.close() }
    }

    // MARK: Plumbing

    @discardableResult
    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch let error as SQLiteError {
            throw map(error, sql: sql)
        }
    }

    private func map(_ error: SQLiteError, sql: String) -> any Error {
        let message = "\(error)"
        if message.contains("UNIQUE constraint failed: orders") { return StoreError.duplicateOrder("") }
        if message.contains("CHECK constraint failed") { return StoreError.database("a constraint refused the change") }
        return StoreError.database("SQLite: \(message.prefix(200))")
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction, holding the connection.
    @discardableResult
    private func transaction<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await lock.withLock {
            try await run("BEGIN IMMEDIATE")
            do {
                let result = try await body()
                try await run("COMMIT")
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", [])
                throw error
            }
        }
    }

    private func read<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await lock.withLock { try await body() }
    }

    private static func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
    private static func int(_ value: Int64?) -> SQLiteData { value.map { .integer(Int($0)) } ?? .null }
    private static func int(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }

    // MARK: Migrations

    public func migrate() async throws -> [Int] {
        try await lock.withLock {
            try await run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            let current = Int(try await run("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0)
            guard current <= Migrations.latest else { throw StoreError.schemaTooNew(found: current, known: Migrations.latest) }
            var applied: [Int] = []
            for migration in Migrations.all(.sqlite) where migration.version > current {
                try await run("BEGIN IMMEDIATE")
                do {
                    for statement in migration.statements { try await run(statement) }
                    try await run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [.integer(migration.version), .integer(Int(Date().ms))])
                    try await run("COMMIT")
                } catch {
                    _ = try? await connection.query("ROLLBACK", [])
                    throw error
                }
                applied.append(migration.version)
                logger.info("Applied migration", metadata: ["version": "\(migration.version)"])
            }
            return applied
        }
    }

    public func schemaVersion() async throws -> Int {
        try await read {
            let exists = try await run("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
            guard !exists.isEmpty else { return 0 }
            return Int(try await run("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0)
        }
    }

    // MARK: Orders

    private func orderBinds(_ o: GatewayOrder) -> [SQLiteData] {
        [
            .text(o.id), .text(o.provider), .text(o.providerOrderId), .text(o.kind.rawValue), .integer(o.amount), Self.text(o.description),
            Self.text(o.merchantReference), Self.text(o.metadata), Self.text(o.mobileReturnURL), .text(o.state.rawValue),
            .integer(o.refundedAmount), Self.text(o.transactionId), Self.text(o.paymentURL), Self.text(o.qrToken),
            Self.text(o.paymentLinkId), .integer(o.needsReview ? 1 : 0), .integer(Int(o.createdAt.ms)), .integer(Int(o.updatedAt.ms)),
            Self.int(o.nextPollAt?.ms), .integer(o.pollAttempts), .integer(o.version),
        ]
    }

    public func insert(_ order: GatewayOrder) async throws {
        do {
            try await transaction {
                try await run("INSERT INTO orders (\(orderColumns)) VALUES (\(Array(repeating: "?", count: 21).joined(separator: ", ")))", orderBinds(order))
                try await insertEvent(OrderEvent(orderId: order.id, at: order.createdAt, kind: .created, toState: order.state, detail: "order stored for \(order.amount) via \(order.provider)"))
            }
        } catch StoreError.duplicateOrder {
            throw StoreError.duplicateOrder(order.providerOrderId)
        }
    }

    private func insertEvent(_ event: OrderEvent) async throws {
        try await run(
            "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(event.orderId), .integer(Int(event.at.ms)), .text(event.kind.rawValue), Self.text(event.fromState?.rawValue),
             Self.text(event.toState?.rawValue), .text(event.detail)])
    }

    private func insertMessage(_ message: OutboxMessage) async throws {
        try await run(
            "INSERT INTO outbox (\(outboxColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(message.id), .text(message.type), .text(message.orderId), .text(message.payload), .integer(Int(message.createdAt.ms)),
             .text(message.state.rawValue), .integer(message.attempts), .integer(Int(message.nextAttemptAt.ms)), Self.int(message.lastStatus),
             Self.int(message.deliveredAt?.ms)])
    }

    private func selectOrder(id: String) async throws -> GatewayOrder? {
        try await run("SELECT \(orderColumns) FROM orders WHERE id = ?", [.text(id)]).first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func order(id: String) async throws -> GatewayOrder? {
        try await read { try await selectOrder(id: id) }
    }

    public func order(provider: String, providerOrderId: String) async throws -> GatewayOrder? {
        try await read {
            try await run("SELECT \(orderColumns) FROM orders WHERE provider = ? AND provider_order_id = ?", [.text(provider), .text(providerOrderId)])
                .first.map { try RowDecoding.order(SQLiteRowReader($0)) }
        }
    }

    public func orders(_ query: OrderQuery) async throws -> (orders: [GatewayOrder], next: OrderCursor?) {
        var clauses: [String] = []
        var binds: [SQLiteData] = []
        if !query.states.isEmpty {
            clauses.append("state IN (\(Array(repeating: "?", count: query.states.count).joined(separator: ", ")))")
            binds += query.states.map(\.rawValue).sorted().map { .text($0) }
        }
        if let from = query.createdFrom { clauses.append("created_at >= ?"); binds.append(.integer(Int(from.ms))) }
        if let before = query.createdBefore { clauses.append("created_at < ?"); binds.append(.integer(Int(before.ms))) }
        if let search = query.search {
            clauses.append("(id = ? OR provider_order_id = ? OR merchant_reference = ?)")
            binds += [.text(search), .text(search), .text(search)]
        }
        if let after = query.after {
            clauses.append("(created_at < ? OR (created_at = ? AND id < ?))")
            binds += [.integer(Int(after.createdAtMs)), .integer(Int(after.createdAtMs)), .text(after.id)]
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        binds.append(.integer(query.limit + 1))
        let rows = try await read {
            try await run("SELECT \(orderColumns) FROM orders \(filter) ORDER BY created_at DESC, id DESC LIMIT ?", binds)
        }
        var orders = try rows.map { try RowDecoding.order(SQLiteRowReader($0)) }
        var next: OrderCursor? = nil
        if orders.count > query.limit {
            orders.removeLast()
            if let last = orders.last { next = OrderCursor(createdAtMs: last.createdAt.ms, id: last.id) }
        }
        return (orders, next)
    }

    public func events(orderId: String) async throws -> [OrderEvent] {
        try await read {
            try await run("SELECT id, order_id, at, kind, from_state, to_state, detail FROM order_events WHERE order_id = ? ORDER BY id", [.text(orderId)])
                .map { try RowDecoding.event(SQLiteRowReader($0)) }
        }
    }

    public func update(orderId: String, _ decide: @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction {
            guard let current = try await selectOrder(id: orderId) else { throw StoreError.orderNotFound(orderId) }
            guard let change = try decide(current) else { return current }
            try await write(change, replacing: current)
            return change.order
        }
    }

    private func write(_ change: OrderChange, replacing current: GatewayOrder) async throws {
        let o = change.order
        let rows = try await run(
            """
            UPDATE orders SET state = ?, refunded_amount = ?, transaction_id = ?, payment_url = ?, qr_token = ?, payment_link_id = ?,
                needs_review = ?, updated_at = ?, next_poll_at = ?, poll_attempts = ?, version = ?, description = ?, metadata = ?
            WHERE id = ? AND version = ? RETURNING id
            """,
            [.text(o.state.rawValue), .integer(o.refundedAmount), Self.text(o.transactionId), Self.text(o.paymentURL), Self.text(o.qrToken),
             Self.text(o.paymentLinkId), .integer(o.needsReview ? 1 : 0), .integer(Int(o.updatedAt.ms)), Self.int(o.nextPollAt?.ms),
             .integer(o.pollAttempts), .integer(o.version), Self.text(o.description), Self.text(o.metadata), .text(o.id), .integer(current.version)])
        guard !rows.isEmpty else { throw StoreError.database("order \(o.id) changed underneath the update") }
        for event in change.events { try await insertEvent(event) }
        for message in change.outbox { try await insertMessage(message) }
    }

    public func recordRefund(orderId: String, amount: Int, refundId: String, at now: Date) async throws -> GatewayOrder {
        try await transaction {
            let updated = try await run(
                """
                UPDATE orders SET refunded_amount = refunded_amount + ?, version = version + 1, updated_at = ?
                WHERE id = ? AND state = 'paid' AND refunded_amount + ? <= amount RETURNING \(orderColumns)
                """,
                [.integer(amount), .integer(Int(now.ms)), .text(orderId), .integer(amount)])
            guard let row = updated.first else {
                guard let current = try await selectOrder(id: orderId) else { throw StoreError.orderNotFound(orderId) }
                if current.state != .paid { throw StoreError.notRefundable(orderId: orderId, state: current.state) }
                throw StoreError.refundExceedsPaid(orderId: orderId)
            }
            let order = try RowDecoding.order(SQLiteRowReader(row))
            var before = order
            before.refundedAmount -= amount
            guard let change = OrderStateMachine.refund(before, amount: amount, refundId: refundId, at: now) else {
                throw StoreError.refundExceedsPaid(orderId: orderId)
            }
            try await run("INSERT INTO refunds (id, order_id, amount, created_at) VALUES (?, ?, ?, ?)", [.text(refundId), .text(orderId), .integer(amount), .integer(Int(now.ms))])
            for event in change.events { try await insertEvent(event) }
            for message in change.outbox { try await insertMessage(message) }
            return order
        }
    }

    // MARK: Background work

    public func claimOrdersToPoll(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [GatewayOrder] {
        try await transaction {
            let rows = try await run(
                """
                UPDATE orders SET lease_owner = ?, lease_until = ?
                WHERE id IN (
                    SELECT id FROM orders WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? AND state IN ('created', 'pending')
                      AND (lease_until IS NULL OR lease_until < ?)
                    ORDER BY next_poll_at LIMIT ?)
                RETURNING \(orderColumns)
                """,
                [.text(owner), .integer(Int(now.addingTimeInterval(lease).ms)), .integer(Int(now.ms)), .integer(Int(now.ms)), .integer(limit)])
            return try rows.map { try RowDecoding.order(SQLiteRowReader($0)) }.sorted { ($0.nextPollAt ?? now) < ($1.nextPollAt ?? now) }
        }
    }

    public func schedulePoll(orderId: String, at: Date?, attempts: Int, owner: String) async throws {
        try await transaction {
            try await run(
                "UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending') THEN ? ELSE NULL END, poll_attempts = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)",
                [Self.int(at?.ms), .integer(attempts), .text(orderId), .text(owner)])
        }
    }

    public func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage] {
        try await transaction {
            let rows = try await run(
                """
                UPDATE outbox SET lease_owner = ?, lease_until = ?
                WHERE id IN (
                    SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
                    ORDER BY next_attempt_at, created_at LIMIT ?)
                RETURNING \(outboxColumns)
                """,
                [.text(owner), .integer(Int(now.addingTimeInterval(lease).ms)), .integer(Int(now.ms)), .integer(Int(now.ms)), .integer(limit)])
            return try rows.map { try RowDecoding.message(SQLiteRowReader($0)) }.sorted { $0.createdAt < $1.createdAt }
        }
    }

    public func recordDelivery(_ attempt: DeliveryAttempt, delivered: Bool, retryAt: Date?, owner: String) async throws {
        try await transaction {
            try await run(
                "INSERT INTO delivery_attempts (message_id, at, status_code, latency_ms, error, manual) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(attempt.messageId), .integer(Int(attempt.at.ms)), Self.int(attempt.statusCode), .integer(attempt.latencyMs),
                 Self.text(attempt.error), .integer(attempt.manual ? 1 : 0)])
            let state = delivered ? "delivered" : (retryAt == nil ? "failed" : "pending")
            try await run(
                """
                UPDATE outbox SET attempts = attempts + 1, last_status = ?, state = CASE WHEN state = 'delivered' THEN 'delivered' ELSE ? END,
                    delivered_at = CASE WHEN ? = 'delivered' AND delivered_at IS NULL THEN ? ELSE delivered_at END,
                    next_attempt_at = COALESCE(?, next_attempt_at), lease_owner = NULL, lease_until = NULL
                WHERE id = ?
                """,
                [Self.int(attempt.statusCode), .text(state), .text(state), .integer(Int(attempt.at.ms)), Self.int(retryAt?.ms), .text(attempt.messageId)])
        }
    }

    public func outboxMessages(orderId: String?, limit: Int) async throws -> [OutboxMessage] {
        try await read {
            let rows: [SQLiteRow]
            if let orderId {
                rows = try await run("SELECT \(outboxColumns) FROM outbox WHERE order_id = ? ORDER BY created_at DESC, id LIMIT ?", [.text(orderId), .integer(limit)])
            } else {
                rows = try await run("SELECT \(outboxColumns) FROM outbox ORDER BY created_at DESC, id LIMIT ?", [.integer(limit)])
            }
            return try rows.map { try RowDecoding.message(SQLiteRowReader($0)) }
        }
    }

    public func deliveryAttempts(messageId: String) async throws -> [DeliveryAttempt] {
        try await read {
            try await run("SELECT message_id, at, status_code, latency_ms, error, manual FROM delivery_attempts WHERE message_id = ? ORDER BY id", [.text(messageId)])
                .map { try RowDecoding.attempt(SQLiteRowReader($0)) }
        }
    }

    public func requeue(messageId: String, now: Date) async throws {
        try await transaction {
            try await run("UPDATE outbox SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?", [.integer(Int(now.ms)), .text(messageId)])
        }
    }

    // MARK: Payment links

    public func insert(_ link: PaymentLink) async throws {
        try await transaction {
            try await run(
                "INSERT INTO payment_links (\(linkColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(link.id), .integer(link.amount), Self.text(link.description), Self.text(link.merchantReference),
                 Self.int(link.expiresAt?.ms), .integer(Int(link.createdAt.ms)), Self.text(link.orderId)])
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        try await read {
            try await run("SELECT \(linkColumns) FROM payment_links WHERE id = ?", [.text(id)]).first.map { try RowDecoding.link(SQLiteRowReader($0)) }
        }
    }

    public func attach(orderId: String, toLink linkId: String, replacing expected: String?) async throws -> Bool {
        try await transaction {
            let rows = try await run(
                "UPDATE payment_links SET order_id = ? WHERE id = ? AND order_id IS ? RETURNING id",
                [.text(orderId), .text(linkId), Self.text(expected)])
            return !rows.isEmpty
        }
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        try await read {
            try await run("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT ?", [.integer(limit)])
                .map { try RowDecoding.link(SQLiteRowReader($0)) }
        }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        let candidate = value()
        return try await transaction {
            try await run("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [.text(key), .text(candidate)])
            return try await run("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string ?? candidate
        }
    }

    public func setting(_ key: String) async throws -> String? {
        try await read { try await run("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string }
    }

    // MARK: Idempotency

    public func idempotentResponse(scope: String, key: String, requestHash: String) async throws -> IdempotentResponse? {
        try await read {
            guard let row = try await run("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = ? AND key = ?", [.text(scope), .text(key)]).first
            else { return nil }
            guard row.column("request_hash")?.string == requestHash else { throw StoreError.idempotencyConflict(key: key) }
            return IdempotentResponse(status: row.column("status")?.integer ?? 0, body: row.column("body")?.string ?? "")
        }
    }

    public func saveIdempotentResponse(scope: String, key: String, requestHash: String, response: IdempotentResponse, at now: Date) async throws {
        try await transaction {
            try await run(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
                [.text(scope), .text(key), .text(requestHash), .integer(response.status), .text(response.body), .integer(Int(now.ms))])
        }
    }
}

struct SQLiteRowReader: RowReader {
    let row: SQLiteRow
    init(_ row: SQLiteRow) { self.row = row }
    func string(_ column: String) -> String? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.string
    }
    func int(_ column: String) -> Int64? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.integer.map { Int64($0) }
    }
}
