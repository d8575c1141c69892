import Foundation
import KaspiSQLite
import SQLiteNIO

/// The sandbox's Kaspi QR API purchases on disk, so that memory holds only the recent ones, as
/// ``SandboxOrderArchive`` does for the guide's orders.
///
/// The rows are those of the persistence's `sandbox_qr` table (kind `purchase`, the purchase as a
/// JSON document). With a data file (`--data`), the archive reads that file, which the
/// persistence writes. Without one, the archive is a throwaway database of its own, removed
/// from the file system as soon as it is open, which ``QRAPIState`` writes when purchases leave
/// memory. A purchase's deadlines are applied when it is read, so a purchase on disk needs no
/// timer.
///
/// Every call is synchronous and made from inside ``QRAPIState``, one at a time.
final class QRPurchaseArchive: @unchecked Sendable {
    private let connection: DirectConnection
    /// Whether the state actor writes through this archive (no data file).
    let writable: Bool

    private init(connection: DirectConnection, writable: Bool) {
        self.connection = connection
        self.writable = writable
    }

    deinit { connection.close() }

    /// The persistence's table of QR records (devices, purchases, returns).
    static let table = "CREATE TABLE IF NOT EXISTS sandbox_qr (kind TEXT NOT NULL, id TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (kind, id))"
    /// The lookups a purchase on disk needs: by its token (the payment page, the link) and by
    /// its payer (r2's return operations).
    static let indexes = [
        "CREATE INDEX IF NOT EXISTS sandbox_qr_token ON sandbox_qr (json_extract(document, '$.token')) WHERE kind = 'purchase'",
        "CREATE INDEX IF NOT EXISTS sandbox_qr_customer ON sandbox_qr (json_extract(document, '$.customer')) WHERE kind = 'purchase'",
    ]
    /// The upsert of one purchase; the persistence uses the same statement.
    static let upsert = "INSERT OR REPLACE INTO sandbox_qr (kind, id, document) VALUES ('purchase', ?, ?)"

    /// The values of ``upsert`` for a purchase.
    static func values(_ purchase: SandboxQRPurchase) throws -> [SQLiteData] {
        [.text(String(purchase.id)), .text(String(decoding: try encoder.encode(purchase), as: UTF8.self))]
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    private let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()

    /// Reads the data file that the persistence writes.
    static func reading(path: String) throws -> QRPurchaseArchive {
        QRPurchaseArchive(connection: try ArchiveConnection.reading(path: path), writable: false)
    }

    /// A throwaway archive in the temporary directory, unlinked at once: nothing is left
    /// behind however the process ends.
    static func temporary() throws -> QRPurchaseArchive {
        QRPurchaseArchive(connection: try ArchiveConnection.temporary(named: "kaspi-sandbox-qr", schema: [table] + indexes), writable: true)
    }

    // MARK: Writes (no data file)

    /// Writes purchases leaving memory, in one transaction.
    func save(_ purchases: [SandboxQRPurchase]) throws {
        try connection.run("BEGIN")
        do {
            for purchase in purchases { try connection.run(Self.upsert, try Self.values(purchase)) }
            try connection.run("COMMIT")
        } catch {
            _ = try? connection.run("ROLLBACK")
            throw error
        }
    }

    /// Removes every purchase (a reset without a data file; with one, the persistence does).
    func deleteAll() throws {
        try connection.run("DELETE FROM sandbox_qr WHERE kind = 'purchase'")
    }

    // MARK: Reads

    private func purchases(_ rows: [DirectRow]) throws -> [SandboxQRPurchase] {
        try rows.map { row in
            guard case .text(let document)? = row.column("document") else { throw DirectSQLiteError(message: "a purchase row has no document") }
            return try decoder.decode(SandboxQRPurchase.self, from: Data(document.utf8))
        }
    }

    func purchase(id: Int64) throws -> SandboxQRPurchase? {
        try purchases(connection.run("SELECT document FROM sandbox_qr WHERE kind = 'purchase' AND id = ?", [.text(String(id))])).first
    }

    func purchase(token: String) throws -> SandboxQRPurchase? {
        try purchases(
            connection.run(
                "SELECT document FROM sandbox_qr WHERE kind = 'purchase' AND json_extract(document, '$.token') = ?", [.text(token)])
        ).first
    }

    /// Every purchase on disk, oldest first.
    func all() throws -> [SandboxQRPurchase] {
        try purchases(connection.run("SELECT document FROM sandbox_qr WHERE kind = 'purchase' ORDER BY CAST(id AS INTEGER)"))
    }

    /// The purchases on disk paid by this payer.
    func purchases(customer: String) throws -> [SandboxQRPurchase] {
        try purchases(
            connection.run(
                "SELECT document FROM sandbox_qr WHERE kind = 'purchase' AND json_extract(document, '$.customer') = ?", [.text(customer)]))
    }

    func contains(id: Int64) throws -> Bool {
        try !connection.run("SELECT 1 FROM sandbox_qr WHERE kind = 'purchase' AND id = ?", [.text(String(id))]).isEmpty
    }

    func count() throws -> Int {
        if case .integer(let n)? = try connection.run("SELECT count(*) FROM sandbox_qr WHERE kind = 'purchase'").first?.first { return n }
        return 0
    }

    /// The largest identifier handed out to a purchase or to one of its refunds, so that a
    /// restarted sandbox never hands one out twice.
    func largestIdentifier() throws -> Int64 {
        let rows = try connection.run(
            """
            SELECT max(m) FROM (
                SELECT max(CAST(id AS INTEGER)) AS m FROM sandbox_qr WHERE kind = 'purchase'
                UNION ALL
                SELECT max(CAST(json_extract(r.value, '$.id') AS INTEGER)) FROM sandbox_qr, json_each(sandbox_qr.document, '$.refunds') AS r
                WHERE sandbox_qr.kind = 'purchase')
            """)
        if case .integer(let n)? = rows.first?.first { return Int64(n) }
        return 0
    }
}
