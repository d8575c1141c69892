import Foundation
import Logging
import SQLiteNIO
import Synchronization

/// The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on
/// disk before it is acknowledged.
///
/// Writes use group commit: every write is a job for one writer connection, and the jobs
/// waiting when the writer becomes free run together in one transaction, each inside its own
/// savepoint (a job that fails is rolled back alone), and share one commit, so one `fsync`
/// serves many requests. No job's caller hears of success before the commit that holds its
/// changes is durable; when a commit fails, every job in it fails. Reads use a second
/// connection, which sees only committed data.
public final class SQLiteGatewayStore: GatewayStore {
    private let writer: SQLiteConnection
    /// Reads' connection; nil for `:memory:`, where reads use the writer between batches.
    private let reader: SQLiteConnection?
    /// Held by each batch, migrations, closing and (without a reader) reads.
    private let lock = AsyncLock()
    private let queue = Mutex(WriteQueue())
    private let logger: Logger
    private let maxBatch: Int

    private struct WriteQueue {
        var jobs: [WriteJob] = []
        var draining = false
    }

    private init(writer: SQLiteConnection, reader: SQLiteConnection?, maxBatch: Int, logger: Logger) {
        self.writer = writer
        self.reader = reader
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// Opens (or creates) the database file. Migrations are not applied: call ``migrate()``.
    ///
    /// - Parameters:
    ///   - path: the file, or `:memory:` for a throwaway database.
    ///   - maxBatch: the most write jobs one transaction (one commit) holds.
    public static func open(path: String, maxBatch: Int = 256, logger: Logger = Logger(label: "kaspi-gateway-sqlite")) async throws -> SQLiteGatewayStore {
        let memory = path == ":memory:"
        let writer = try await SQLiteConnection.open(storage: memory ? .memory : .file(path: path), logger: logger)
        var reader: SQLiteConnection?
        do {
            if !memory { _ = try await writer.query("PRAGMA journal_mode=WAL", []) }
            _ = try await writer.query("PRAGMA synchronous=FULL", [])
            _ = try await writer.query("PRAGMA foreign_keys=ON", [])
            _ = try await writer.query("PRAGMA busy_timeout=5000", [])
            if !memory {
                let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
                reader = connection
                _ = try await connection.query("PRAGMA busy_timeout=5000", [])
                _ = try await connection.query("PRAGMA query_only=1", [])
            }
        } catch {
            try? await reader?.close()
            try? await writer.close()
            throw StoreError.database("cannot open \(path): \(error)")
        }
        return SQLiteGatewayStore(writer: writer, reader: reader, maxBatch: max(1, maxBatch), logger: logger)
    }

    /// The `synchronous` setting actually in force on the writing connection (2 is FULL).
    public func synchronousSetting() async throws -> Int {
        try await lock.withLock { Int(try await writer.query("PRAGMA synchronous", []).first?.columns.first?.data.integer ?? -1) }
    }

    /// The journal mode actually in force (`wal` for a file).
    public func journalMode() async throws -> String {
        try await lock.withLock { try await writer.query("PRAGMA journal_mode", []).first?.columns.first?.data.string ?? "?" }
    }

    /// How many commits have held how many write jobs since the store was opened.
    public var commitStatistics: (commits: Int, jobs: Int) {
        statistics.withLock { ($0.commits, $0.jobs) }
    }
    private let statistics = Mutex((commits: 0, jobs: 0))

    public func close() async throws {
        try await lock.withLock {
            try await reader?.close()
            try await writer.close()
        }
    }

    // MARK: Plumbing

    /// Runs a statement on the writer (inside a transaction or a migration).
    @discardableResult
    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        do {
            return try await writer.query(sql, binds)
        } catch let error as SQLiteError {
            throw map(error, sql: sql)
        }
    }

    /// Runs a read-only statement on the reader (call it inside ``read(_:)``).
    private func fetch(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        do {
            return try await (reader ?? writer).query(sql, binds)
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

    /// Runs `body` as one write job: in a transaction shared with the other jobs waiting at
    /// the time, inside its own savepoint. Returns (or throws) only after that transaction's
    /// commit (or rollback).
    @discardableResult
    private func transaction<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let result = Mutex<Result<T, any Error>?>(nil)
            let job = WriteJob(
                work: {
                    do {
                        let value = try await body()
                        result.withLock { $0 = .success(value) }
                        return nil
                    } catch {
                        return error
                    }
                },
                finish: { failure in
                    if let failure {
                        continuation.resume(throwing: failure)
                    } else if let value = result.withLock({ $0 }) {
                        continuation.resume(with: value)
                    } else {
                        continuation.resume(throwing: StoreError.database("a write finished without a result"))
                    }
                })
            let startDraining = queue.withLock { state -> Bool in
                state.jobs.append(job)
                if state.draining { return false }
                state.draining = true
                return true
            }
            if startDraining { Task { await self.drain() } }
        }
    }

    /// Commits batches until no job waits.
    private func drain() async {
        while true {
            let batch = queue.withLock { state -> [WriteJob] in
                guard !state.jobs.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(state.jobs.count, maxBatch)
                let batch = Array(state.jobs.prefix(count))
                state.jobs.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            await lock.lock()
            let outcomes = await commit(batch)
            await lock.unlock()
            statistics.withLock {
                $0.commits += 1
                $0.jobs += batch.count
            }
            for (job, failure) in zip(batch, outcomes) { job.finish(failure) }
        }
    }

    /// Runs the jobs in one transaction and commits it. Returns each job's failure (nil for
    /// success); when the transaction cannot commit, every job fails.
    private func commit(_ batch: [WriteJob]) async -> [(any Error)?] {
        do {
            try await run("BEGIN IMMEDIATE")
        } catch {
            return batch.map { _ in error }
        }
        var outcomes: [(any Error)?] = []
        do {
            if batch.count == 1 {
                // Alone: the transaction is the job's, so no savepoint is needed.
                if let failure = await batch[0].work() {
                    _ = try? await writer.query("ROLLBACK", [])
                    return [failure]
                }
                outcomes = [nil]
            } else {
                for job in batch {
                    try await run("SAVEPOINT job")
                    let failure = await job.work()
                    if failure != nil { try await run("ROLLBACK TO job") }
                    try await run("RELEASE job")
                    outcomes.append(failure)
                }
            }
            try await run("COMMIT")
            return outcomes
        } catch {
            // The transaction as a whole failed (a failed commit, an I/O error): nothing of it
            // is stored, so no job may report success.
            _ = try? await writer.query("ROLLBACK", [])
            logger.error("A group commit failed; its jobs are rolled back", metadata: ["jobs": "\(batch.count)", "error": "\(error)"])
            return batch.map { _ in error }
        }
    }

    /// Runs reads: on the reader connection, or between batches when there is none.
    private func read<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if reader != nil { return try await body() }
        return try await lock.withLock { try await body() }
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
                    _ = try? await writer.query("ROLLBACK", [])
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
            let exists = try await fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
            guard !exists.isEmpty else { return 0 }
            return Int(try await fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0)
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
            try await transaction { [self] in
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

    private func selectOrder(id: String, reading: Bool = false) async throws -> GatewayOrder? {
        let sql = "SELECT \(orderColumns) FROM orders WHERE id = ?"
        let rows = reading ? try await fetch(sql, [.text(id)]) : try await run(sql, [.text(id)])
        return try rows.first.map { try RowDecoding.order(SQLiteRowReader($0)) }
    }

    public func order(id: String) async throws -> GatewayOrder? {
        try await read { try await selectOrder(id: id, reading: true) }
    }

    public func order(provider: String, providerOrderId: String) async throws -> GatewayOrder? {
        try await read {
            try await fetch("SELECT \(orderColumns) FROM orders WHERE provider = ? AND provider_order_id = ?", [.text(provider), .text(providerOrderId)])
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
            try await fetch("SELECT \(orderColumns) FROM orders \(filter) ORDER BY created_at DESC, id DESC LIMIT ?", binds)
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
            try await fetch("SELECT id, order_id, at, kind, from_state, to_state, detail FROM order_events WHERE order_id = ? ORDER BY id", [.text(orderId)])
                .map { try RowDecoding.event(SQLiteRowReader($0)) }
        }
    }

    public func update(orderId: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction { [self] in
            guard let current = try await selectOrder(id: orderId) else { throw StoreError.orderNotFound(orderId) }
            guard let change = try decide(current) else { return current }
            try await write(change, replacing: current)
            return change.order
        }
    }

    public func update(from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder {
        try await transaction { [self] in
            // The writer is this store's alone, so a version that still matches cannot
            // change before the commit.
            if let change = try decide(current), try await write(change, expectedVersion: current.version) {
                return change.order
            }
            guard let stored = try await selectOrder(id: current.id) else { throw StoreError.orderNotFound(current.id) }
            guard let change = try decide(stored) else { return stored }
            try await write(change, replacing: stored)
            return change.order
        }
    }

    private func write(_ change: OrderChange, replacing current: GatewayOrder) async throws {
        guard try await write(change, expectedVersion: current.version) else {
            throw StoreError.database("order \(change.order.id) changed underneath the update")
        }
    }

    /// Writes the change if the stored order has `expectedVersion`; false (nothing written) if not.
    private func write(_ change: OrderChange, expectedVersion: Int) async throws -> Bool {
        let o = change.order
        let rows = try await run(
            """
            UPDATE orders SET state = ?, refunded_amount = ?, transaction_id = ?, payment_url = ?, qr_token = ?, payment_link_id = ?,
                needs_review = ?, updated_at = ?, next_poll_at = ?, poll_attempts = ?, version = ?, description = ?, metadata = ?
            WHERE id = ? AND version = ? RETURNING id
            """,
            [.text(o.state.rawValue), .integer(o.refundedAmount), Self.text(o.transactionId), Self.text(o.paymentURL), Self.text(o.qrToken),
             Self.text(o.paymentLinkId), .integer(o.needsReview ? 1 : 0), .integer(Int(o.updatedAt.ms)), Self.int(o.nextPollAt?.ms),
             .integer(o.pollAttempts), .integer(o.version), Self.text(o.description), Self.text(o.metadata), .text(o.id), .integer(expectedVersion)])
        guard !rows.isEmpty else { return false }
        for event in change.events { try await insertEvent(event) }
        for message in change.outbox { try await insertMessage(message) }
        return true
    }

    public func insert(contentsOf orders: [GatewayOrder]) async throws {
        guard !orders.isEmpty else { return }
        try await transaction { [self] in
            let chunk = 500
            for start in stride(from: 0, to: orders.count, by: chunk) {
                let slice = orders[start..<min(start + chunk, orders.count)]
                let row = "(" + Array(repeating: "?", count: 21).joined(separator: ", ") + ")"
                try await run(
                    "INSERT INTO orders (\(orderColumns)) VALUES " + Array(repeating: row, count: slice.count).joined(separator: ", "),
                    slice.flatMap(orderBinds))
                try await run(
                    "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES "
                        + Array(repeating: "(?, ?, ?, NULL, ?, ?)", count: slice.count).joined(separator: ", "),
                    slice.flatMap { o -> [SQLiteData] in
                        [.text(o.id), .integer(Int(o.createdAt.ms)), .text(OrderEvent.Kind.created.rawValue), .text(o.state.rawValue),
                         .text("order stored for \(o.amount) via \(o.provider)")]
                    })
            }
        }
    }

    public func recordRefund(orderId: String, amount: Int, refundId: String, at now: Date) async throws -> GatewayOrder {
        try await transaction { [self] in
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
        try await transaction { [self] in
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
        try await transaction { [self] in
            try await run(
                "UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending') THEN ? ELSE NULL END, poll_attempts = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)",
                [Self.int(at?.ms), .integer(attempts), .text(orderId), .text(owner)])
        }
    }

    public func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage] {
        try await transaction { [self] in
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
        try await transaction { [self] in
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
                rows = try await fetch("SELECT \(outboxColumns) FROM outbox WHERE order_id = ? ORDER BY created_at DESC, id LIMIT ?", [.text(orderId), .integer(limit)])
            } else {
                rows = try await fetch("SELECT \(outboxColumns) FROM outbox ORDER BY created_at DESC, id LIMIT ?", [.integer(limit)])
            }
            return try rows.map { try RowDecoding.message(SQLiteRowReader($0)) }
        }
    }

    public func deliveryAttempts(messageId: String) async throws -> [DeliveryAttempt] {
        try await read {
            try await fetch("SELECT message_id, at, status_code, latency_ms, error, manual FROM delivery_attempts WHERE message_id = ? ORDER BY id", [.text(messageId)])
                .map { try RowDecoding.attempt(SQLiteRowReader($0)) }
        }
    }

    public func requeue(messageId: String, now: Date) async throws {
        try await transaction { [self] in
            try await run("UPDATE outbox SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?", [.integer(Int(now.ms)), .text(messageId)])
        }
    }

    // MARK: Payment links

    public func insert(_ link: PaymentLink) async throws {
        try await transaction { [self] in
            try await run(
                "INSERT INTO payment_links (\(linkColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(link.id), .integer(link.amount), Self.text(link.description), Self.text(link.merchantReference),
                 Self.int(link.expiresAt?.ms), .integer(Int(link.createdAt.ms)), Self.text(link.orderId)])
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        try await read {
            try await fetch("SELECT \(linkColumns) FROM payment_links WHERE id = ?", [.text(id)]).first.map { try RowDecoding.link(SQLiteRowReader($0)) }
        }
    }

    public func attach(orderId: String, toLink linkId: String, replacing expected: String?) async throws -> Bool {
        try await transaction { [self] in
            let rows = try await run(
                "UPDATE payment_links SET order_id = ? WHERE id = ? AND order_id IS ? RETURNING id",
                [.text(orderId), .text(linkId), Self.text(expected)])
            return !rows.isEmpty
        }
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        try await read {
            try await fetch("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT ?", [.integer(limit)])
                .map { try RowDecoding.link(SQLiteRowReader($0)) }
        }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        let candidate = value()
        return try await transaction { [self] in
            try await run("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [.text(key), .text(candidate)])
            return try await run("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string ?? candidate
        }
    }

    public func setting(_ key: String) async throws -> String? {
        try await read { try await fetch("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string }
    }

    // MARK: Idempotency

    public func idempotentResponse(scope: String, key: String, requestHash: String) async throws -> IdempotentResponse? {
        try await read {
            guard let row = try await fetch("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = ? AND key = ?", [.text(scope), .text(key)]).first
            else { return nil }
            guard row.column("request_hash")?.string == requestHash else { throw StoreError.idempotencyConflict(key: key) }
            return IdempotentResponse(status: row.column("status")?.integer ?? 0, body: row.column("body")?.string ?? "")
        }
    }

    public func saveIdempotentResponse(scope: String, key: String, requestHash: String, response: IdempotentResponse, at now: Date) async throws {
        try await transaction { [self] in
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

/// One write waiting for the group commit: `work` runs its statements (inside the shared
/// transaction) and keeps its result; `finish` answers its caller after the commit.
private struct WriteJob: Sendable {
    let work: @Sendable () async -> (any Error)?
    let finish: @Sendable ((any Error)?) -> Void
}
