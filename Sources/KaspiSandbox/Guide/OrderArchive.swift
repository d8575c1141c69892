import Foundation
import KaspiSQLite
import SQLiteNIO

/// The sandbox's orders on disk, so that memory holds only the recent and the live ones.
///
/// With a data file (`--data`), the archive reads that file (WAL mode, so it sees what the
/// persistence committed) and the persistence writes it. Without one, the archive is a
/// throwaway database of its own, removed from the file system as soon as it is open, which
/// the state actor writes directly when orders leave memory (no durability is promised
/// without a data file).
///
/// Every call is synchronous and made from inside ``SandboxState``, one at a time.
final class SandboxOrderArchive: @unchecked Sendable {
    private let connection: DirectConnection
    /// Whether the state actor writes through this archive (no data file).
    let writable: Bool

    private init(connection: DirectConnection, writable: Bool) {
        self.connection = connection
        self.writable = writable
    }

    deinit { connection.close() }

    /// The schema of the orders table, version 2: the JSON document and the columns the
    /// lookups need. Rows keep their insertion order (upserts keep the rowid), which is the
    /// order in which the orders were created.
    static let ordersTable = """
        CREATE TABLE IF NOT EXISTS sandbox_orders (
            id TEXT PRIMARY KEY, document TEXT NOT NULL, trade_point TEXT NOT NULL, order_id TEXT NOT NULL,
            payment_token TEXT NOT NULL, qr_token TEXT, timed INTEGER NOT NULL DEFAULT 0)
        """
    static let ordersIndexes = [
        "CREATE INDEX IF NOT EXISTS sandbox_orders_token ON sandbox_orders (payment_token)",
        "CREATE INDEX IF NOT EXISTS sandbox_orders_qr ON sandbox_orders (qr_token) WHERE qr_token IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS sandbox_orders_order ON sandbox_orders (order_id)",
        "CREATE INDEX IF NOT EXISTS sandbox_orders_timed ON sandbox_orders (id) WHERE timed = 1",
    ]

    /// Moves a version 1 table (id and document only) to version 2, keeping creation order.
    static let migrationFromVersion1 = [
        "ALTER TABLE sandbox_orders RENAME TO sandbox_orders_v1",
        ordersTable,
        """
        INSERT INTO sandbox_orders (id, document, trade_point, order_id, payment_token, qr_token, timed)
        SELECT id, document, json_extract(document, '$.tradePointId'), json_extract(document, '$.orderId'),
            json_extract(document, '$.paymentToken'), json_extract(document, '$.qrToken'),
            CASE WHEN json_extract(document, '$.status') = 'PENDING'
                AND (json_extract(document, '$.settleAt') IS NOT NULL OR json_extract(document, '$.qrExpiresAt') IS NOT NULL)
                THEN 1 ELSE 0 END
        FROM sandbox_orders_v1 ORDER BY json_extract(document, '$.createdAt'), id
        """,
        "DROP TABLE sandbox_orders_v1",
    ]

    /// The upsert of one order; the persistence uses the same statement.
    static let upsert = """
        INSERT INTO sandbox_orders (id, document, trade_point, order_id, payment_token, qr_token, timed) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET document = excluded.document, qr_token = excluded.qr_token, timed = excluded.timed
        """

    /// The row key of an order: trade point and order id.
    static func rowID(_ order: SandboxOrder) -> String { order.tradePointID + "\u{1F}" + order.orderID }

    /// Whether an order needs the sweep (a pending order with a timer); such orders stay in memory.
    static func isTimed(_ order: SandboxOrder) -> Bool {
        order.status == .pending && (order.settleAt != nil || order.qrExpiresAt != nil)
    }

    /// The values of ``upsert`` for an order.
    static func values(_ order: SandboxOrder) throws -> [SQLiteData] {
        [
            .text(rowID(order)), .text(String(decoding: try encoder.encode(order), as: UTF8.self)), .text(order.tradePointID),
            .text(order.orderID), .text(order.paymentToken), order.qrToken.map { .text($0) } ?? .null, .integer(isTimed(order) ? 1 : 0),
        ]
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
    static func reading(path: String) throws -> SandboxOrderArchive {
        SandboxOrderArchive(connection: try ArchiveConnection.reading(path: path), writable: false)
    }

    /// A throwaway archive in the temporary directory, unlinked at once: nothing is left
    /// behind however the process ends.
    static func temporary() throws -> SandboxOrderArchive {
        SandboxOrderArchive(
            connection: try ArchiveConnection.temporary(named: "kaspi-sandbox", schema: [ordersTable] + ordersIndexes), writable: true)
    }

    // MARK: Writes (no data file, or a reset)

    /// Writes orders leaving memory, in one transaction.
    func save(_ orders: [SandboxOrder]) throws {
        try connection.run("BEGIN")
        do {
            for order in orders { try connection.run(Self.upsert, try Self.values(order)) }
            try connection.run("COMMIT")
        } catch {
            _ = try? connection.run("ROLLBACK")
            throw error
        }
    }

    /// Removes the orders of one trade point, or all. With a data file the deletion is durable
    /// (this connection commits it as the persistence would).
    func delete(tradePoint: String?) throws {
        if let tradePoint {
            try connection.run("DELETE FROM sandbox_orders WHERE trade_point = ?", [.text(tradePoint)])
        } else {
            try connection.run("DELETE FROM sandbox_orders")
        }
    }

    // MARK: Reads

    private func orders(_ rows: [DirectRow]) throws -> [SandboxOrder] {
        try rows.map { row in
            guard case .text(let document)? = row.column("document") else { throw DirectSQLiteError(message: "an order row has no document") }
            return try decoder.decode(SandboxOrder.self, from: Data(document.utf8))
        }
    }

    func order(tradePoint: String, orderID: String) throws -> SandboxOrder? {
        try orders(connection.run("SELECT document FROM sandbox_orders WHERE id = ?", [.text(tradePoint + "\u{1F}" + orderID)])).first
    }

    func order(paymentToken: String) throws -> SandboxOrder? {
        try orders(connection.run("SELECT document FROM sandbox_orders WHERE payment_token = ?", [.text(paymentToken)])).first
    }

    func order(qrToken: String) throws -> SandboxOrder? {
        try orders(connection.run("SELECT document FROM sandbox_orders WHERE qr_token = ?", [.text(qrToken)])).first
    }

    /// The trade points that have an order with this id.
    func tradePoints(havingOrder orderID: String) throws -> [String] {
        try connection.run("SELECT trade_point FROM sandbox_orders WHERE order_id = ? ORDER BY rowid", [.text(orderID)]).compactMap {
            if case .text(let point)? = $0.first { point } else { nil }
        }
    }

    /// Orders in creation order; the last `limit` when one is given.
    func orders(tradePoint: String?, last limit: Int? = nil) throws -> [SandboxOrder] {
        var sql = "SELECT document FROM sandbox_orders"
        var binds: [SQLiteData] = []
        if let tradePoint {
            sql += " WHERE trade_point = ?"
            binds.append(.text(tradePoint))
        }
        if let limit {
            sql += " ORDER BY rowid DESC LIMIT ?"
            binds.append(.integer(limit))
            return try orders(connection.run(sql, binds)).reversed()
        }
        return try orders(connection.run(sql + " ORDER BY rowid", binds))
    }

    func count() throws -> Int {
        if case .integer(let n)? = try connection.run("SELECT count(*) FROM sandbox_orders").first?.first { return n }
        return 0
    }

    /// The pending orders with a timer, which live in memory.
    func timedOrders() throws -> [SandboxOrder] {
        try orders(connection.run("SELECT document FROM sandbox_orders WHERE timed = 1 ORDER BY rowid"))
    }
}
