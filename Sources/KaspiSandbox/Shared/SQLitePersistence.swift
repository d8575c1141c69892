import Foundation
import Logging
import SQLiteNIO

/// Keeps the sandbox's orders, webhooks and clock in an SQLite file (`--data FILE`), so that a
/// restarted sandbox carries on where it stopped. Each change is one upsert of a JSON
/// document; writes are durable (WAL, synchronous=FULL) before the response is sent. The
/// orders table is also the sandbox's order archive (``SandboxOrderArchive``), which reads
/// the orders that memory no longer holds, and its `sandbox_qr` table the QR purchase archive
/// (``QRPurchaseArchive``).
final class SQLiteSandboxPersistence: SandboxPersistence {
    private let connection: SQLiteConnection
    private static let schemaVersion = 2
    /// The file, which the order archive reads too.
    let path: String

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    static func open(path: String, logger: Logger) async throws -> SQLiteSandboxPersistence {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL", [])
            _ = try await connection.query("PRAGMA synchronous=FULL", [])
            _ = try await connection.query("CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", [])
            let rows = try await connection.query("SELECT value FROM sandbox_meta WHERE key = 'schema_version'", [])
            let found = rows.first?.column("value")?.string
            _ = try await connection.query("BEGIN IMMEDIATE", [])
            do {
                switch found.flatMap({ Int($0) }) {
                case nil where found == nil:
                    _ = try await connection.query(SandboxOrderArchive.ordersTable, [])
                case 1?:
                    // Version 1 kept orders as id and document only: add the lookup columns.
                    for statement in SandboxOrderArchive.migrationFromVersion1 { _ = try await connection.query(statement, []) }
                case schemaVersion?:
                    break
                default:
                    throw SandboxConfigurationError.invalid("dataPath", "\(path) was written by an incompatible version (schema \(found ?? "?"))")
                }
                for statement in SandboxOrderArchive.ordersIndexes { _ = try await connection.query(statement, []) }
                _ = try await connection.query("CREATE TABLE IF NOT EXISTS sandbox_webhooks (id TEXT PRIMARY KEY, document TEXT NOT NULL)", [])
                // The Kaspi QR API's records: kind is device, purchase or return.
                _ = try await connection.query(QRPurchaseArchive.table, [])
                for statement in QRPurchaseArchive.indexes { _ = try await connection.query(statement, []) }
                _ = try await connection.query(
                    "INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES ('schema_version', ?)", [.text(String(schemaVersion))])
                _ = try await connection.query("COMMIT", [])
            } catch {
                _ = try? await connection.query("ROLLBACK", [])
                throw error
            }
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteSandboxPersistence(connection: connection, path: path)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    private static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }

    /// The pending orders with a timer (the others stay on disk until asked for), every
    /// webhook, and the clock.
    func load() async throws -> (orders: [SandboxOrder], deliveries: [WebhookDelivery], clockOffset: Double) {
        let decoder = Self.decoder()
        let orders = try await connection.query("SELECT document FROM sandbox_orders WHERE timed = 1 ORDER BY rowid", []).map { row in
            try decoder.decode(SandboxOrder.self, from: Data((row.column("document")?.string ?? "").utf8))
        }
        let deliveries = try await connection.query("SELECT document FROM sandbox_webhooks", []).map { row in
            try decoder.decode(WebhookDelivery.self, from: Data((row.column("document")?.string ?? "").utf8))
        }
        let offset =
            try await connection.query("SELECT value FROM sandbox_meta WHERE key = 'clock_offset'", [])
            .first?.column("value")?.string.flatMap(Double.init) ?? 0
        return (orders, deliveries, offset)
    }

    func save(order: SandboxOrder) async throws {
        _ = try await connection.query(SandboxOrderArchive.upsert, try SandboxOrderArchive.values(order))
    }

    func save(delivery: WebhookDelivery) async throws {
        let document = String(decoding: try Self.encoder.encode(delivery), as: UTF8.self)
        _ = try await connection.query(
            "INSERT OR REPLACE INTO sandbox_webhooks (id, document) VALUES (?, ?)", [.text(delivery.id), .text(document)])
    }

    func save(clockOffset: Double) async throws {
        _ = try await connection.query(
            "INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES ('clock_offset', ?)", [.text(String(clockOffset))])
    }

    func deleteWebhooks(tradePoint: String?) async throws {
        if let tradePoint {
            _ = try await connection.query(
                "DELETE FROM sandbox_webhooks WHERE json_extract(document, '$.tradePointId') = ?", [.text(tradePoint)])
        } else {
            _ = try await connection.query("DELETE FROM sandbox_webhooks", [])
        }
    }

    /// The QR API's devices and return QRs; purchases stay on disk until asked for
    /// (``QRPurchaseArchive``).
    func loadQRRecords() async throws -> (devices: [SandboxQRDevice], returns: [SandboxQRReturn]) {
        let decoder = Self.decoder()
        var devices: [SandboxQRDevice] = []
        var returns: [SandboxQRReturn] = []
        for row in try await connection.query("SELECT kind, document FROM sandbox_qr WHERE kind IN ('device', 'return')", []) {
            let data = Data((row.column("document")?.string ?? "").utf8)
            switch row.column("kind")?.string {
            case "device": devices.append(try decoder.decode(SandboxQRDevice.self, from: data))
            case "return": returns.append(try decoder.decode(SandboxQRReturn.self, from: data))
            default: break
            }
        }
        return (devices, returns)
    }

    private func saveQR(kind: String, id: String, _ value: some Encodable) async throws {
        let document = String(decoding: try Self.encoder.encode(value), as: UTF8.self)
        _ = try await connection.query(
            "INSERT OR REPLACE INTO sandbox_qr (kind, id, document) VALUES (?, ?, ?)", [.text(kind), .text(id), .text(document)])
    }

    func save(qrDevice: SandboxQRDevice) async throws { try await saveQR(kind: "device", id: qrDevice.token, qrDevice) }
    func save(qrPurchase: SandboxQRPurchase) async throws {
        _ = try await connection.query(QRPurchaseArchive.upsert, try QRPurchaseArchive.values(qrPurchase))
    }
    func save(qrReturn: SandboxQRReturn) async throws { try await saveQR(kind: "return", id: String(qrReturn.id), qrReturn) }

    func deleteQRRecords() async throws {
        _ = try await connection.query("DELETE FROM sandbox_qr", [])
    }

    func close() async throws {
        try await connection.close()
    }
}
