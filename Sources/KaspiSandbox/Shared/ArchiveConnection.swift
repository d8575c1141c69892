import Foundation
import KaspiSQLite

/// The SQLite connections the sandbox's archives (orders, QR purchases) read and write through.
enum ArchiveConnection {
    /// Reads the data file that the persistence writes (WAL mode, so it sees what was committed).
    static func reading(path: String) throws -> DirectConnection {
        let connection = try DirectConnection(path: path)
        try connection.run("PRAGMA busy_timeout=5000")
        return connection
    }

    /// A throwaway database in the temporary directory with `schema` run in it, unlinked at once:
    /// nothing is left behind however the process ends. One connection, so no WAL and no shared
    /// memory: the journal stays in memory, nothing is synced, the lock is taken once.
    static func temporary(named prefix: String, schema: [String]) throws -> DirectConnection {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString).sqlite").path
        let connection = try DirectConnection(path: path)
        do {
            for statement in ["PRAGMA journal_mode=MEMORY", "PRAGMA synchronous=OFF", "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA cache_size=-2048"]
                + schema
            {
                try connection.run(statement)
            }
        } catch {
            connection.close()
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        try? FileManager.default.removeItem(atPath: path)
        return connection
    }
}
