import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Idempotency

    /// Reserves a key inside the caller's transaction; an expired key is taken over.
    ///
    /// - Throws: ``StoreError/idempotencyInProgress(key:)`` when another request holds it.
    func reserve(_ r: IdempotencyReservation, resource: String, on connection: PostgresConnection) async throws {
        _ = try await rows(
            "DELETE FROM idempotency_keys WHERE scope = \(r.scope) AND key = \(r.key) AND created_at < \(ms: r.expiredBefore)", on: connection)
        let q: PostgresQuery = """
            INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner, resource)
            VALUES (\(r.scope), \(r.key), \(r.requestHash), 0, '', \(ms: r.at), 'in_progress', \(r.owner), \(resource))
            ON CONFLICT (scope, key) DO NOTHING RETURNING key
            """
        guard try await !rows(q, on: connection).isEmpty else { throw StoreError.idempotencyInProgress(key: r.key) }
    }

    public func idempotencyRecord(scope: String, key: String, requestHash: String, expiredBefore: Date) async throws -> IdempotencyRecord? {
        let q: PostgresQuery = """
            SELECT request_hash, status::BIGINT AS status, body, state, resource, owner, created_at FROM idempotency_keys
            WHERE scope = \(scope) AND key = \(key) AND created_at >= \(ms: expiredBefore)
            """
        guard let row = try await rows(q).first else { return nil }
        guard row.string("request_hash") == requestHash else { throw StoreError.idempotencyConflict(key: key) }
        if row.string("state") == "in_progress" {
            return .inProgress(since: Date(ms: row.int("created_at") ?? 0), resource: row.string("resource"), owner: row.string("owner"))
        }
        return .done(IdempotentResponse(status: Int(row.int("status") ?? 0), body: row.string("body") ?? ""))
    }

    /// Records the answer of a request whose key it reserved.
    static func answerQuery(_ r: IdempotencyReservation, _ response: IdempotentResponse) -> PostgresQuery {
        """
        UPDATE idempotency_keys SET state = 'done', status = \(Int32(clamping: response.status)), body = \(response.body)
        WHERE scope = \(r.scope) AND key = \(r.key) AND owner = \(r.owner) AND state = 'in_progress'
        """
    }

    /// The answer's update for the prepared transition, its parameters numbered from `first`
    /// (as ``bindAnswer(_:_:to:)`` binds them).
    static func answerSQL(from first: Int) -> String {
        let p = (first..<first + 5).map { "$\($0)" }
        return
            "UPDATE idempotency_keys SET state = 'done', status = \(p[0]), body = \(p[1]) WHERE scope = \(p[2]) AND key = \(p[3]) AND owner = \(p[4]) AND state = 'in_progress'"
    }

    static func bindAnswer(_ r: IdempotencyReservation, _ response: IdempotentResponse, to binds: inout PostgresBindings) {
        binds.append(Int32(clamping: response.status))
        binds.append(response.body)
        binds.append(r.scope)
        binds.append(r.key)
        binds.append(r.owner)
    }

    public func saveIdempotentResponse(_ r: IdempotencyReservation, response: IdempotentResponse, reservedOnly: Bool) async throws {
        if reservedOnly {
            _ = try await rows(Self.answerQuery(r, response))
        } else {
            let q: PostgresQuery = """
                INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at, state, owner)
                VALUES (\(r.scope), \(r.key), \(r.requestHash), \(Int32(clamping: response.status)), \(response.body), \(ms: r.at), 'done', \(r.owner))
                ON CONFLICT (scope, key) DO UPDATE SET state = 'done', status = excluded.status, body = excluded.body
                WHERE idempotency_keys.owner = excluded.owner AND idempotency_keys.state = 'in_progress'
                """
            _ = try await rows(q)
        }
    }

    public func takeOverIdempotencyKey(scope: String, key: String, from oldOwner: String, to newOwner: String, at: Date) async throws -> Bool {
        let q: PostgresQuery = """
            UPDATE idempotency_keys SET owner = \(newOwner), created_at = \(ms: at)
            WHERE scope = \(scope) AND key = \(key) AND owner = \(oldOwner) AND state = 'in_progress' RETURNING key
            """
        return try await !rows(q).isEmpty
    }

    public func deleteIdempotencyKeys(createdBefore cutoff: Date) async throws -> Int {
        try await rows("DELETE FROM idempotency_keys WHERE created_at < \(ms: cutoff) RETURNING key").count
    }
}
