import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Devices

    public func save(_ device: ProviderDevice) async throws {
        try await transaction { connection in
            if device.isDefault, device.deletedAt == nil {
                _ = try await rows(
                    "UPDATE provider_devices SET is_default = 0 WHERE provider = \(device.provider) AND id <> \(device.id)", on: connection)
            }
            let q: PostgresQuery = """
                INSERT INTO provider_devices (\(unescaped: deviceColumns)) VALUES (\(device.id), \(device.provider), \(device.organizationBin),
                    \(device.tradePointID), \(device.deviceID), \(device.token), \(Int32(device.isDefault ? 1 : 0)), \(device.referencePrefix),
                    \(ms: device.createdAt), \(ms: device.deletedAt))
                ON CONFLICT (id) DO UPDATE SET provider = EXCLUDED.provider, organization_bin = EXCLUDED.organization_bin,
                    trade_point_id = EXCLUDED.trade_point_id, device_id = EXCLUDED.device_id, token = EXCLUDED.token,
                    is_default = EXCLUDED.is_default, reference_prefix = EXCLUDED.reference_prefix, created_at = EXCLUDED.created_at,
                    deleted_at = EXCLUDED.deleted_at
                """
            _ = try await rows(q, on: connection)
        }
    }

    public func devices(provider: String) async throws -> [ProviderDevice] {
        try await rows(
            "SELECT \(unescaped: deviceColumns) FROM provider_devices WHERE provider = \(provider) AND deleted_at IS NULL ORDER BY created_at, id"
        ).map { try RowDecoding.device($0) }
    }

    public func deleteDevice(id: String, at: Date) async throws -> Bool {
        try await !rows("UPDATE provider_devices SET deleted_at = \(ms: at), is_default = 0 WHERE id = \(id) AND deleted_at IS NULL RETURNING id")
            .isEmpty
    }

    // MARK: Rate limit

    public func takeRateSlot(key: String, limit: Int, window: TimeInterval, now: Date) async throws -> TimeInterval? {
        try await transaction { connection in
            // One taker of this key at a time, whichever instance it runs in.
            _ = try await rows("SELECT pg_advisory_xact_lock(727274272, hashtext(\(key)))", on: connection)
            let start = now.addingTimeInterval(-window)
            _ = try await rows("DELETE FROM rate_slots WHERE key = \(key) AND at <= \(ms: start)", on: connection)
            let row = try await rows("SELECT count(*)::BIGINT AS n, min(at) AS oldest FROM rate_slots WHERE key = \(key)", on: connection).first
            if (row?.int("n") ?? 0) < Int64(limit) {
                _ = try await rows("INSERT INTO rate_slots (key, at) VALUES (\(key), \(ms: now))", on: connection)
                return nil
            }
            let oldest = row?.int("oldest") ?? now.ms
            return max(0.001, Double(oldest - start.ms) / 1000)
        }
    }
}
