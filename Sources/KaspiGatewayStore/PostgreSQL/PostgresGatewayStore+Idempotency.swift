import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Idempotency

    /// Reserves a key inside the caller's transaction; an expired key is taken over.
    ///
    /// - Throws: ``StoreError/idempotencyInProgress(key:)`` when another request holds it.
    func reserve(_ r: IdempotencyReservation, resource: String, on connection: PostgresConnection) async throws {
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
    static func answerQuery(_ r: IdempotencyReservation, _ response: IdempotentResponse) -> Query {
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

    static func bindAnswer(_ r: IdempotencyReservation, _ response: IdempotentResponse, to q: inout Query) {
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
