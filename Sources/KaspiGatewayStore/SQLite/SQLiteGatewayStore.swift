import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

/// The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on
/// disk before it is acknowledged. This type is the SQL; ``SQLiteGroupCommit`` runs it: every
/// write is a job that shares a transaction and one commit with the jobs waiting at the time,
/// and reads use a connection of their own.
public final class SQLiteGatewayStore: GatewayStore {
    private let engine: SQLiteGroupCommit
    private let logger: Logger

    private init(engine: SQLiteGroupCommit, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    /// Opens (or creates) the database file. Migrations are not applied: call ``migrate()``.
    ///
    /// - Parameters:
    ///   - path: the file, or `:memory:` for a throwaway database.
    ///   - maxBatch: the most write jobs one transaction (one commit) holds.
    public static func open(
        path: String, maxBatch: Int = 256, logger: Logger = Logger(label: "kaspi-gateway-sqlite")
    ) async throws -> SQLiteGatewayStore {
        SQLiteGatewayStore(engine: try await SQLiteGroupCommit.open(path: path, maxBatch: maxBatch, logger: logger), logger: logger)
    }

    /// The `synchronous` setting actually in force on the writing connection (2 is FULL).
    public func synchronousSetting() async throws -> Int {
        try await onWriter { db in try db.run("PRAGMA synchronous").first?.first?.integer ?? -1 }
    }

    /// The journal mode actually in force (`wal` for a file).
    public func journalMode() async throws -> String {
        try await onWriter { db in try db.run("PRAGMA journal_mode").first?.first?.string ?? "?" }
    }

    /// How many commits have held how many write jobs since the store was opened.
    public var commitStatistics: (commits: Int, jobs: Int) { engine.commitStatistics }

    /// Refuses new work, waits for the writes and the checkpoint in flight, then closes the
    /// connections and their threads.
    public func close() async throws { try await engine.close() }

    private func onWriter<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        try await engine.onWriter(body)
    }

    private func fetch(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [DirectRow] {
        try await engine.fetch(sql, binds)
    }

    @discardableResult
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        try await engine.transaction(body)
    }

    private static func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
    private static func int(_ value: Int64?) -> SQLiteData { value.map { .integer(Int($0)) } ?? .null }
    private static func int(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }

    // MARK: Migrations

    public func migrate() async throws -> [Int] {
        let logger = self.logger
        return try await onWriter { db in
            try db.run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            let current = try db.run("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
            guard current <= Migrations.latest else { throw StoreError.schemaTooNew(found: current, known: Migrations.latest) }
            var applied: [Int] = []
            for migration in Migrations.all(.sqlite) where migration.version > current {
                try db.run("BEGIN IMMEDIATE")
                do {
                    for statement in migration.statements { try db.run(statement) }
                    try db.run(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [.integer(migration.version), .integer(Int(Date().ms))])
                    try db.run("COMMIT")
                } catch {
                    _ = try? db.run("ROLLBACK")
                    throw error
                }
                applied.append(migration.version)
                logger.info("Applied migration", metadata: ["version": "\(migration.version)"])
            }
            return applied
        }
    }

    public func schemaVersion() async throws -> Int {
        let exists = try await fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        guard !exists.isEmpty else { return 0 }
        return Int(try await fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0)
    }

    // MARK: Orders

    private func orderBinds(_ o: GatewayOrder) -> [SQLiteData] {
        [
            .text(o.id), .text(o.provider), .text(o.providerOrderID), .text(o.kind.rawValue), .integer(o.amount), Self.text(o.description),
            Self.text(o.merchantReference), Self.text(o.metadata), Self.text(o.mobileReturnURL), .text(o.state.rawValue),
            .integer(o.refundedAmount), Self.text(o.transactionID), Self.text(o.paymentURL), Self.text(o.qrToken),
            Self.text(o.paymentLinkID), .integer(o.needsReview ? 1 : 0), .integer(Int(o.createdAt.ms)), .integer(Int(o.updatedAt.ms)),
            Self.int(o.nextPollAt?.ms), .integer(o.pollAttempts), .integer(o.version), Self.text(o.providerState),
            Self.text(o.providerPaymentID),
        ]
    }

    public func insert(_ order: GatewayOrder, reserving reservation: IdempotencyReservation?) async throws {
        do {
            try await transaction { [self] db in
                if let reservation { try Self.reserve(reservation, resource: order.id, db) }
                try db.run(
                    "INSERT INTO orders (\(orderColumns)) VALUES (\(Array(repeating: "?", count: 23).joined(separator: ", ")))", orderBinds(order))
                try insertEvent(
                    OrderEvent(
                        orderID: order.id, at: order.createdAt, kind: .created, toState: order.state,
                        detail: "order stored for \(order.amount) via \(order.provider)"), db)
            }
        } catch StoreError.duplicateOrder {
            throw StoreError.duplicateOrder(order.providerOrderID)
        }
    }

    private func insertEvent(_ event: OrderEvent, _ db: DirectConnection) throws {
        try db.run(
            "INSERT INTO order_events (order_id, at, kind, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .text(event.orderID), .integer(Int(event.at.ms)), .text(event.kind.rawValue), Self.text(event.fromState?.rawValue),
                Self.text(event.toState?.rawValue), .text(event.detail),
            ])
    }

    private func insertMessage(_ message: OutboxMessage, _ db: DirectConnection) throws {
        try db.run(
            "INSERT INTO outbox (\(outboxColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(message.id), .text(message.type), .text(message.orderID), .text(message.payload), .integer(Int(message.createdAt.ms)),
                .text(message.state.rawValue), .integer(message.attempts), .integer(Int(message.nextAttemptAt.ms)), Self.int(message.lastStatus),
                Self.int(message.deliveredAt?.ms),
            ])
    }

    private func selectOrder(id: String, _ db: DirectConnection) throws -> GatewayOrder? {
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
        var clauses: [String] = []
        var binds: [SQLiteData] = []
        if !query.states.isEmpty {
            clauses.append("state IN (\(Array(repeating: "?", count: query.states.count).joined(separator: ", ")))")
            binds += query.states.map(\.rawValue).sorted().map { .text($0) }
        }
        if let from = query.createdFrom {
            clauses.append("created_at >= ?")
            binds.append(.integer(Int(from.ms)))
        }
        if let before = query.createdBefore {
            clauses.append("created_at < ?")
            binds.append(.integer(Int(before.ms)))
        }
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
        let rows = try await fetch("SELECT \(orderReadColumns) FROM orders \(filter) ORDER BY created_at DESC, id DESC LIMIT ?", binds)
        var orders = try rows.map { try RowDecoding.order(SQLiteRowReader($0)) }
        var next: OrderCursor? = nil
        if orders.count > query.limit {
            orders.removeLast()
            if let last = orders.last { next = OrderCursor(createdAtMs: last.createdAt.ms, id: last.id) }
        }
        return (orders, next)
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
        return try await transaction { [self] db in
            // The writer is this store's alone, so a version that still matches cannot
            // change before the commit.
            if let planned, try write(planned, expectedVersion: current.version, db) {
                return planned.order
            }
            guard let stored = try selectOrder(id: current.id, db) else { throw StoreError.orderNotFound(current.id) }
            if planned == nil, stored.version == current.version { return stored }
            guard let change = try decide(stored) else { return stored }
            try write(change, replacing: stored, db)
            return change.order
        }
    }

    private func write(_ change: OrderChange, replacing current: GatewayOrder, _ db: DirectConnection) throws {
        guard try write(change, expectedVersion: current.version, db) else {
            throw StoreError.database("order \(change.order.id) changed underneath the update")
        }
    }

    /// Writes the change if the stored order has `expectedVersion`; false (nothing written) if not.
    private func write(_ change: OrderChange, expectedVersion: Int, _ db: DirectConnection) throws -> Bool {
        let o = change.order
        let rows = try db.run(
            """
            UPDATE orders SET state = ?, refunded_amount = ?, transaction_id = ?, payment_url = ?, qr_token = ?, payment_link_id = ?,
                needs_review = ?, updated_at = ?, next_poll_at = ?, poll_attempts = ?, version = ?, description = ?, metadata = ?,
                provider_state = ?, provider_payment_id = ?
            WHERE id = ? AND version = ? RETURNING id
            """,
            [
                .text(o.state.rawValue), .integer(o.refundedAmount), Self.text(o.transactionID), Self.text(o.paymentURL), Self.text(o.qrToken),
                Self.text(o.paymentLinkID), .integer(o.needsReview ? 1 : 0), .integer(Int(o.updatedAt.ms)), Self.int(o.nextPollAt?.ms),
                .integer(o.pollAttempts), .integer(o.version), Self.text(o.description), Self.text(o.metadata), Self.text(o.providerState),
                Self.text(o.providerPaymentID), .text(o.id), .integer(expectedVersion),
            ])
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
    private static func storeAnswer(_ r: IdempotencyReservation, _ response: IdempotentResponse, _ db: DirectConnection) throws {
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
                let row = "(" + Array(repeating: "?", count: 23).joined(separator: ", ") + ")"
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

    // MARK: Background work

    public func claimOrdersToPoll(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [GatewayOrder] {
        try await transaction { db in
            let rows = try db.run(
                """
                UPDATE orders SET lease_owner = ?, lease_until = ?
                WHERE id IN (
                    SELECT id FROM orders WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? AND state IN ('created', 'pending', 'expired')
                      AND (lease_until IS NULL OR lease_until < ?)
                    ORDER BY next_poll_at LIMIT ?)
                RETURNING \(orderReadColumns)
                """,
                [.text(owner), .integer(Int(now.addingTimeInterval(lease).ms)), .integer(Int(now.ms)), .integer(Int(now.ms)), .integer(limit)])
            return try rows.map { try RowDecoding.order(SQLiteRowReader($0)) }.sorted { ($0.nextPollAt ?? now) < ($1.nextPollAt ?? now) }
        }
    }

    public func schedulePoll(orderID: String, at: Date?, attempts: Int, owner: String, polledAt: Date?) async throws {
        try await transaction { db in
            try db.run(
                "UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending', 'expired') THEN ? ELSE NULL END, poll_attempts = ?, lease_owner = NULL, lease_until = NULL, last_polled_at = COALESCE(?, last_polled_at) WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)",
                [Self.int(at?.ms), .integer(attempts), Self.int(polledAt?.ms), .text(orderID), .text(owner)])
        }
    }

    public func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage] {
        try await transaction { db in
            let due = try db.run(
                """
                SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
                ORDER BY next_attempt_at, created_at LIMIT ?
                """,
                [.integer(Int(now.ms)), .integer(Int(now.ms)), .integer(limit)])
            var claimed: [OutboxMessage] = []
            for (position, row) in due.enumerated() {
                guard let id = row.column("id")?.string else { continue }
                let until = now.addingTimeInterval(lease * Double(position + 1))
                let rows = try db.run(
                    "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ? RETURNING \(outboxColumns)",
                    [.text(owner), .integer(Int(until.ms)), .text(id)])
                claimed += try rows.map { try RowDecoding.message(SQLiteRowReader($0)) }
            }
            return claimed
        }
    }

    public func recordDelivery(_ attempt: DeliveryAttempt, delivered: Bool, retryAt: Date?, owner: String) async throws -> Bool {
        try await transaction { db in
            let state = delivered ? "delivered" : (retryAt == nil ? "failed" : "pending")
            let updated = try db.run(
                """
                UPDATE outbox SET attempts = attempts + 1, last_status = ?, state = CASE WHEN state = 'delivered' THEN 'delivered' ELSE ? END,
                    delivered_at = CASE WHEN ? = 'delivered' AND delivered_at IS NULL THEN ? ELSE delivered_at END,
                    next_attempt_at = COALESCE(?, next_attempt_at), lease_owner = NULL, lease_until = NULL
                WHERE id = ? AND lease_owner = ? RETURNING id
                """,
                [
                    Self.int(attempt.statusCode), .text(state), .text(state), .integer(Int(attempt.at.ms)), Self.int(retryAt?.ms),
                    .text(attempt.messageID), .text(owner),
                ])
            guard !updated.isEmpty else { return false }
            try db.run(
                "INSERT INTO delivery_attempts (message_id, at, status_code, latency_ms, error, manual) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    .text(attempt.messageID), .integer(Int(attempt.at.ms)), Self.int(attempt.statusCode), .integer(attempt.latencyMs),
                    Self.text(attempt.error), .integer(attempt.manual ? 1 : 0),
                ])
            return true
        }
    }

    public func releaseLeases(owner: String) async throws -> Int {
        try await transaction { db in
            let orders = try db.run("UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? RETURNING id", [.text(owner)])
                .count
            let outbox = try db.run("UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? RETURNING id", [.text(owner)])
                .count
            return orders + outbox
        }
    }

    public func outboxMessages(orderID: String?, limit: Int) async throws -> [OutboxMessage] {
        let rows: [DirectRow]
        if let orderID {
            rows = try await fetch(
                "SELECT \(outboxColumns) FROM outbox WHERE order_id = ? ORDER BY created_at DESC, id LIMIT ?", [.text(orderID), .integer(limit)])
        } else {
            rows = try await fetch("SELECT \(outboxColumns) FROM outbox ORDER BY created_at DESC, id LIMIT ?", [.integer(limit)])
        }
        return try rows.map { try RowDecoding.message(SQLiteRowReader($0)) }
    }

    public func deliveryAttempts(messageID: String) async throws -> [DeliveryAttempt] {
        try await fetch(
            "SELECT message_id, at, status_code, latency_ms, error, manual FROM delivery_attempts WHERE message_id = ? ORDER BY id",
            [.text(messageID)]
        )
        .map { try RowDecoding.attempt(SQLiteRowReader($0)) }
    }

    public func requeue(messageID: String, now: Date) async throws {
        try await transaction { db in
            try db.run(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
                [.integer(Int(now.ms)), .text(messageID)])
        }
    }

    // MARK: Payment links

    public func insert(_ link: PaymentLink, reserving reservation: IdempotencyReservation?) async throws {
        try await transaction { db in
            if let reservation { try Self.reserve(reservation, resource: link.id, db) }
            try db.run(
                "INSERT INTO payment_links (\(linkColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(link.id), .integer(link.amount), Self.text(link.description), Self.text(link.merchantReference),
                    Self.int(link.expiresAt?.ms), .integer(Int(link.createdAt.ms)), Self.text(link.orderID),
                ])
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        try await fetch("SELECT \(linkColumns) FROM payment_links WHERE id = ?", [.text(id)]).first.map { try RowDecoding.link(SQLiteRowReader($0)) }
    }

    public func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool {
        try await transaction { db in
            let rows = try db.run(
                "UPDATE payment_links SET order_id = ? WHERE id = ? AND order_id IS ? RETURNING id",
                [.text(orderID), .text(linkID), Self.text(expected)])
            return !rows.isEmpty
        }
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        try await fetch("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT ?", [.integer(limit)])
            .map { try RowDecoding.link(SQLiteRowReader($0)) }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        let candidate = value()
        return try await transaction { db in
            try db.run("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [.text(key), .text(candidate)])
            return try db.run("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string ?? candidate
        }
    }

    public func setting(_ key: String) async throws -> String? {
        try await fetch("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string
    }

    // MARK: Devices

    public func save(_ device: ProviderDevice) async throws {
        try await transaction { db in
            if device.isDefault, device.deletedAt == nil {
                try db.run("UPDATE provider_devices SET is_default = 0 WHERE provider = ? AND id <> ?", [.text(device.provider), .text(device.id)])
            }
            try db.run(
                "INSERT OR REPLACE INTO provider_devices (\(deviceColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(device.id), .text(device.provider), Self.text(device.organizationBin), .integer(Int(device.tradePointID)),
                    .text(device.deviceID),
                    .text(device.token), .integer(device.isDefault ? 1 : 0), Self.text(device.referencePrefix), .integer(Int(device.createdAt.ms)),
                    Self.int(device.deletedAt?.ms),
                ])
        }
    }

    public func devices(provider: String) async throws -> [ProviderDevice] {
        try await fetch(
            "SELECT \(deviceColumns) FROM provider_devices WHERE provider = ? AND deleted_at IS NULL ORDER BY created_at, id", [.text(provider)]
        ).map { try RowDecoding.device(SQLiteRowReader($0)) }
    }

    public func deleteDevice(id: String, at: Date) async throws -> Bool {
        try await transaction { db in
            !(try db.run(
                "UPDATE provider_devices SET deleted_at = ?, is_default = 0 WHERE id = ? AND deleted_at IS NULL RETURNING id",
                [.integer(Int(at.ms)), .text(id)]
            ).isEmpty)
        }
    }

    // MARK: Rate limit

    public func takeRateSlot(key: String, limit: Int, window: TimeInterval, now: Date) async throws -> TimeInterval? {
        try await transaction { db in
            let start = Int(now.addingTimeInterval(-window).ms)
            try db.run("DELETE FROM rate_slots WHERE key = ? AND at <= ?", [.text(key), .integer(start)])
            let row = try db.run("SELECT COUNT(*) AS n, MIN(at) AS oldest FROM rate_slots WHERE key = ?", [.text(key)]).first
            let count = row?.column("n")?.integer ?? 0
            if count < limit {
                try db.run("INSERT INTO rate_slots (key, at) VALUES (?, ?)", [.text(key), .integer(Int(now.ms))])
                return nil
            }
            let oldest = row?.column("oldest")?.integer ?? Int(now.ms)
            return max(0.001, Double(oldest - start) / 1000)
        }
    }

    // MARK: Idempotency

    /// Reserves a key inside the caller's transaction; an expired key is taken over.
    ///
    /// - Throws: ``StoreError/idempotencyInProgress(key:)`` when another request holds it.
    private static func reserve(_ r: IdempotencyReservation, resource: String, _ db: DirectConnection) throws {
        try db.run(
            "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND created_at < ?",
            [.text(r.scope), .text(r.key), .integer(Int(r.expiredBefore.ms))])
        let reserved = try db.run(
            """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner, resource)
            VALUES (?, ?, ?, 0, '', ?, 'in_progress', ?, ?) ON CONFLICT (scope, key) DO NOTHING RETURNING key
            """,
            [.text(r.scope), .text(r.key), .text(r.requestHash), .integer(Int(r.at.ms)), .text(r.owner), .text(resource)])
        guard !reserved.isEmpty else { throw StoreError.idempotencyInProgress(key: r.key) }
    }

    public func idempotencyRecord(scope: String, key: String, requestHash: String, expiredBefore: Date) async throws -> IdempotencyRecord? {
        guard
            let row = try await fetch(
                "SELECT request_hash, status, body, state, resource, owner, created_at FROM idempotency_keys WHERE scope = ? AND key = ? AND created_at >= ?",
                [.text(scope), .text(key), .integer(Int(expiredBefore.ms))]
            ).first
        else { return nil }
        guard row.column("request_hash")?.string == requestHash else { throw StoreError.idempotencyConflict(key: key) }
        if row.column("state")?.string == "in_progress" {
            let resource = row.column("resource").flatMap { $0 == .null ? nil : $0.string }
            let owner = row.column("owner").flatMap { $0 == .null ? nil : $0.string }
            return .inProgress(since: Date(ms: Int64(row.column("created_at")?.integer ?? 0)), resource: resource, owner: owner)
        }
        return .done(IdempotentResponse(status: row.column("status")?.integer ?? 0, body: row.column("body")?.string ?? ""))
    }

    public func takeOverIdempotencyKey(scope: String, key: String, from oldOwner: String, to newOwner: String, at: Date) async throws -> Bool {
        try await transaction { db in
            try !db.run(
                "UPDATE idempotency_keys SET owner = ?, created_at = ? WHERE scope = ? AND key = ? AND owner = ? AND state = 'in_progress' RETURNING key",
                [.text(newOwner), .integer(Int(at.ms)), .text(scope), .text(key), .text(oldOwner)]
            ).isEmpty
        }
    }

    public func saveIdempotentResponse(_ r: IdempotencyReservation, response: IdempotentResponse, reservedOnly: Bool) async throws {
        try await transaction { db in
            if reservedOnly {
                try Self.storeAnswer(r, response, db)
            } else {
                try db.run(
                    """
                    INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner)
                    VALUES (?, ?, ?, ?, ?, ?, 'done', ?)
                    ON CONFLICT (scope, key) DO UPDATE SET state = 'done', status = excluded.status, body = excluded.body
                    WHERE idempotency_keys.owner = excluded.owner AND idempotency_keys.state = 'in_progress'
                    """,
                    [
                        .text(r.scope), .text(r.key), .text(r.requestHash), .integer(response.status), .text(response.body), .integer(Int(r.at.ms)),
                        .text(r.owner),
                    ])
            }
        }
    }

    public func deleteIdempotencyKeys(createdBefore cutoff: Date) async throws -> Int {
        try await transaction { db in
            try db.run("DELETE FROM idempotency_keys WHERE created_at < ? RETURNING key", [.integer(Int(cutoff.ms))]).count
        }
    }
}

struct SQLiteRowReader: RowReader {
    let row: DirectRow
    init(_ row: DirectRow) { self.row = row }
    func string(_ column: String) -> String? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.string
    }
    func int(_ column: String) -> Int64? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.integer.map { Int64($0) }
    }
}
