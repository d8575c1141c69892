import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

extension SQLiteGatewayStore {
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
}
