import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
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
}
