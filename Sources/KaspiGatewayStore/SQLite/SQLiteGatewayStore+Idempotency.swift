import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

extension SQLiteGatewayStore {
    // MARK: Idempotency

    /// Reserves a key inside the caller's transaction; an expired key is taken over.
    ///
    /// - Throws: ``StoreError/idempotencyInProgress(key:)`` when another request holds it.
    static func reserve(_ r: IdempotencyReservation, resource: String, _ db: DirectConnection) throws {
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
