import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
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
}
