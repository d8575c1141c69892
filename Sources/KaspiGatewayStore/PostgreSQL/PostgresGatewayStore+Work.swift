import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Background work

    public func claimOrdersToPoll(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [GatewayOrder] {
        let q: PostgresQuery = """
            UPDATE orders SET lease_owner = \(owner), lease_until = \(ms: now.addingTimeInterval(lease))
            WHERE id IN (
                SELECT id FROM orders WHERE next_poll_at IS NOT NULL AND next_poll_at <= \(ms: now) AND state IN ('created', 'pending', 'expired')
                  AND (lease_until IS NULL OR lease_until < \(ms: now))
                ORDER BY next_poll_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: orderReadColumns)
            """
        return try await rows(q).map { try RowDecoding.order($0) }.sorted { ($0.nextPollAt ?? now) < ($1.nextPollAt ?? now) }
    }

    public func schedulePoll(orderID: String, at: Date?, attempts: Int, owner: String, polledAt: Date?) async throws {
        let q: PostgresQuery = """
            UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending', 'expired') THEN \(ms: at)::BIGINT ELSE NULL END,
                poll_attempts = \(Int32(attempts)), lease_owner = NULL, lease_until = NULL, last_polled_at = COALESCE(\(ms: polledAt)::BIGINT, last_polled_at)
            WHERE id = \(orderID) AND (lease_owner IS NULL OR lease_owner = \(owner))
            """
        _ = try await rows(q)
    }

    public func finishPoll(
        from current: GatewayOrder, owner: String, polledAt: Date, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?,
        schedule: @escaping @Sendable (GatewayOrder) -> PollSchedule
    ) async throws -> GatewayOrder {
        let planned = try decide(current)
        if planned == nil {
            // Nothing to change (most polls): the schedule alone, in one statement, as long as
            // nobody changed the order since it was claimed.
            let next = schedule(current)
            let q: PostgresQuery = """
                UPDATE orders SET next_poll_at = CASE WHEN state IN ('created', 'pending', 'expired') THEN \(ms: next.at)::BIGINT ELSE NULL END,
                    poll_attempts = \(Int32(clamping: next.attempts)), lease_owner = NULL, lease_until = NULL, last_polled_at = \(ms: polledAt)
                WHERE id = \(current.id) AND version = \(Int64(current.version)) AND (lease_owner IS NULL OR lease_owner = \(owner))
                RETURNING id
                """
            if try await !rows(q).isEmpty { return next.applied(to: current, polledAt: polledAt) }
        }
        // A change (one statement, see update(from:)), or an order changed meanwhile (read
        // locked and decided again); then the schedule.
        let updated = try await update(from: current, planned: planned, decide)
        let next = schedule(updated)
        try await schedulePoll(orderID: current.id, at: next.at, attempts: next.attempts, owner: owner, polledAt: polledAt)
        return next.applied(to: updated, polledAt: polledAt)
    }

    public func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage] {
        let qualified = outboxColumns.split(separator: ",").map { "outbox." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        // Each claimed event's lease ends one delivery timeout after the one before it.
        let q: PostgresQuery = """
            UPDATE outbox SET lease_owner = \(owner), lease_until = \(ms: now) + \(Int64((lease * 1000).rounded())) * picked.position
            FROM (
                SELECT id, row_number() OVER (ORDER BY next_attempt_at, created_at) AS position FROM (
                    SELECT id, next_attempt_at, created_at FROM outbox
                    WHERE state = 'pending' AND next_attempt_at <= \(ms: now) AND (lease_until IS NULL OR lease_until < \(ms: now))
                    ORDER BY next_attempt_at, created_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED) AS locked) AS picked
            WHERE outbox.id = picked.id
            RETURNING \(unescaped: qualified)
            """
        return try await rows(q).map { try RowDecoding.message($0) }.sorted { ($0.nextAttemptAt, $0.createdAt) < ($1.nextAttemptAt, $1.createdAt) }
    }

    public func recordDelivery(_ attempt: DeliveryAttempt, delivered: Bool, retryAt: Date?, owner: String) async throws -> Bool {
        try await transaction { connection in
            let state = delivered ? "delivered" : (retryAt == nil ? "failed" : "pending")
            let status = attempt.statusCode.map { Int32($0) }
            let update: PostgresQuery = """
                UPDATE outbox SET attempts = attempts + 1, last_status = \(status),
                    state = CASE WHEN state = 'delivered' THEN 'delivered' ELSE \(state) END,
                    delivered_at = CASE WHEN \(state) = 'delivered' AND delivered_at IS NULL THEN \(ms: attempt.at) ELSE delivered_at END,
                    next_attempt_at = COALESCE(\(ms: retryAt), next_attempt_at), lease_owner = NULL, lease_until = NULL
                WHERE id = \(attempt.messageID) AND lease_owner = \(owner) RETURNING id
                """
            guard try await !rows(update, on: connection).isEmpty else { return false }
            let insert: PostgresQuery = """
                INSERT INTO delivery_attempts (message_id, at, status_code, latency_ms, error, manual)
                VALUES (\(attempt.messageID), \(ms: attempt.at), \(status), \(Int32(attempt.latencyMs)), \(attempt.error), \(Int32(attempt.manual ? 1 : 0)))
                """
            _ = try await rows(insert, on: connection)
            return true
        }
    }

    public func releaseLeases(owner: String) async throws -> Int {
        try await transaction { connection in
            let orders = try await rows(
                "UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = \(owner) RETURNING id", on: connection)
            let outbox = try await rows(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = \(owner) RETURNING id", on: connection)
            return orders.count + outbox.count
        }
    }

    public func outboxMessages(orderID: String?, limit: Int) async throws -> [OutboxMessage] {
        let q: PostgresQuery =
            if let orderID {
                "SELECT \(unescaped: outboxColumns) FROM outbox WHERE order_id = \(orderID) ORDER BY created_at DESC, id LIMIT \(Int64(limit))"
            } else {
                "SELECT \(unescaped: outboxColumns) FROM outbox ORDER BY created_at DESC, id LIMIT \(Int64(limit))"
            }
        return try await rows(q).map { try RowDecoding.message($0) }
    }

    public func outboxMessages(after cursor: OrderCursor?, orderID: String?, limit: Int) async throws -> [OutboxMessage] {
        let after = cursor ?? OrderCursor(createdAtMs: -1, id: "")
        let q: PostgresQuery =
            if let orderID {
                """
                SELECT \(unescaped: outboxColumns) FROM outbox WHERE order_id = \(orderID) AND (created_at, id) > (\(after.createdAtMs), \(after.id))
                ORDER BY created_at, id LIMIT \(Int64(limit))
                """
            } else {
                """
                SELECT \(unescaped: outboxColumns) FROM outbox WHERE (created_at, id) > (\(after.createdAtMs), \(after.id))
                ORDER BY created_at, id LIMIT \(Int64(limit))
                """
            }
        return try await rows(q).map { try RowDecoding.message($0) }
    }

    public func deliveryAttempts(messageID: String) async throws -> [DeliveryAttempt] {
        try await rows(
            "SELECT message_id, at, status_code, latency_ms, error, manual FROM delivery_attempts WHERE message_id = \(messageID) ORDER BY id"
        )
        .map { try RowDecoding.attempt($0) }
    }

    @discardableResult
    public func requeue(messageID: String, now: Date) async throws -> Bool {
        try await !rows(
            """
            UPDATE outbox SET state = 'pending', next_attempt_at = \(ms: now), lease_owner = NULL, lease_until = NULL WHERE id = \(messageID) \
            RETURNING id
            """
        )
        .isEmpty
    }
}
