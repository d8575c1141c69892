import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

extension SQLiteGatewayStore {
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
        try await transaction { db in try Self.schedulePoll(orderID: orderID, at: at, attempts: attempts, owner: owner, polledAt: polledAt, db) }
    }

    static func schedulePoll(orderID: String, at: Date?, attempts: Int, owner: String, polledAt: Date?, _ db: DirectConnection) throws {
        try db.run(
            "UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending', 'expired') THEN ? ELSE NULL END, poll_attempts = ?, lease_owner = NULL, lease_until = NULL, last_polled_at = COALESCE(?, last_polled_at) WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ?)",
            [Self.int(at?.ms), .integer(attempts), Self.int(polledAt?.ms), .text(orderID), .text(owner)])
    }

    public func finishPoll(
        from current: GatewayOrder, owner: String, polledAt: Date, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?,
        schedule: @escaping @Sendable (GatewayOrder) -> PollSchedule
    ) async throws -> GatewayOrder {
        // Decided here, as update(from:) does; the change and the schedule are one job.
        let planned = try decide(current)
        return try await transaction { [self] db in
            let updated = try write(planned, from: current, decide, db)
            let next = schedule(updated)
            try Self.schedulePoll(orderID: current.id, at: next.at, attempts: next.attempts, owner: owner, polledAt: polledAt, db)
            return next.applied(to: updated, polledAt: polledAt)
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

    public func outboxMessages(after cursor: OrderCursor?, orderID: String?, limit: Int) async throws -> [OutboxMessage] {
        let after = cursor ?? OrderCursor(createdAtMs: -1, id: "")
        let rows: [DirectRow]
        if let orderID {
            rows = try await fetch(
                "SELECT \(outboxColumns) FROM outbox WHERE order_id = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
                [.text(orderID), .integer(Int(after.createdAtMs)), .text(after.id), .integer(limit)])
        } else {
            rows = try await fetch(
                "SELECT \(outboxColumns) FROM outbox WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?",
                [.integer(Int(after.createdAtMs)), .text(after.id), .integer(limit)])
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

    @discardableResult
    public func requeue(messageID: String, now: Date) async throws -> Bool {
        try await transaction { db in
            try !db.run(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? RETURNING id",
                [.integer(Int(now.ms)), .text(messageID)]
            )
            .isEmpty
        }
    }
}
