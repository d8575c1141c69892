import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

/// The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on
/// disk before it is acknowledged. This type is the SQL; ``SQLiteGroupCommit`` runs it: every
/// write is a job that shares a transaction and one commit with the jobs waiting at the time,
/// and reads use a connection of their own.
public final class SQLiteGatewayStore: GatewayStore {
    let engine: SQLiteGroupCommit
    let logger: Logger

    init(engine: SQLiteGroupCommit, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    /// Opens (or creates) the database file. Migrations are not applied: call ``migrate()``.
    ///
    /// - Parameters:
    ///   - path: the file, or `:memory:` for a throwaway database.
    ///   - maxBatch: the most write jobs one transaction (one commit) holds.
    public static func open(
        path: String, maxBatch: Int = 256, logger: Logger = Logger(label: "kaspi-gateway-sqlite")
    ) async throws -> SQLiteGatewayStore {
        SQLiteGatewayStore(engine: try await SQLiteGroupCommit.open(path: path, maxBatch: maxBatch, logger: logger), logger: logger)
    }

    /// The `synchronous` setting actually in force on the writing connection (2 is FULL).
    public func synchronousSetting() async throws -> Int {
        try await onWriter { db in try db.run("PRAGMA synchronous").first?.first?.integer ?? -1 }
    }

    /// The journal mode actually in force (`wal` for a file).
    public func journalMode() async throws -> String {
        try await onWriter { db in try db.run("PRAGMA journal_mode").first?.first?.string ?? "?" }
    }

    /// How many commits have held how many write jobs since the store was opened.
    public var commitStatistics: (commits: Int, jobs: Int) { engine.commitStatistics }

    /// Refuses new work, waits for the writes and the checkpoint in flight, then closes the
    /// connections and their threads.
    public func close() async throws { try await engine.close() }

    func onWriter<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        try await engine.onWriter(body)
    }

    func fetch(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [DirectRow] {
        try await engine.fetch(sql, binds)
    }

    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        try await engine.transaction(body)
    }

    static func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }
    static func int(_ value: Int64?) -> SQLiteData { value.map { .integer(Int($0)) } ?? .null }
    static func int(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }
    /// A value the shared row encoder wrote, as SQLite binds it.
    static func data(_ value: StoreValue) -> SQLiteData {
        switch value {
        case .text(let text): text.map { .text($0) } ?? .null
        case .int(let int): int.map { .integer(Int($0)) } ?? .null
        case .int32(let int): int.map { .integer(Int($0)) } ?? .null
        }
    }
    /// The update of an order's changed columns, if its version is still the one read.
    static let orderUpdateSQL = RowEncoding.orderUpdateSQL { _ in "?" }

    // MARK: Migrations

    public func migrate() async throws -> [Int] {
        let logger = self.logger
        return try await onWriter { db in
            try db.run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            let current = try db.run("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
            guard current <= Migrations.latest else { throw StoreError.schemaTooNew(found: current, known: Migrations.latest) }
            var applied: [Int] = []
            for migration in Migrations.all(.sqlite) where migration.version > current {
                try db.run("BEGIN IMMEDIATE")
                do {
                    for statement in migration.statements { try db.run(statement) }
                    try db.run(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [.integer(migration.version), .integer(Int(Date().ms))])
                    try db.run("COMMIT")
                } catch {
                    _ = try? db.run("ROLLBACK")
                    throw error
                }
                applied.append(migration.version)
                logger.info("Applied migration", metadata: ["version": "\(migration.version)"])
            }
            return applied
        }
    }

    public func schemaVersion() async throws -> Int {
        let exists = try await fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
        guard !exists.isEmpty else { return 0 }
        return Int(try await fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0)
    }

}

struct SQLiteRowReader: RowReader {
    let row: DirectRow
    init(_ row: DirectRow) { self.row = row }
    func string(_ column: String) -> String? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.string
    }
    func int(_ column: String) -> Int64? {
        guard let data = row.column(column), data != .null else { return nil }
        return data.integer.map { Int64($0) }
    }
}
