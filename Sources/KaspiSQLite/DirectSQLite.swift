import Foundation
import SQLiteNIO
// sqlite-nio's internal C target: not its API, so Package.swift pins sqlite-nio to an exact
// version, this is the only file that imports it, and SQLiteVersionTests fails clearly when
// the SQLite it bundles changes.
import VaporCSQLite

/// A synchronous SQLite connection over the SQLite that SQLiteNIO bundles, with a cache of
/// prepared statements. It is used from one thread at a time: the gateway store's group
/// commit runs a whole batch in one hop on its own thread, and the sandbox reads its order
/// archive inside its state actor.
package final class DirectConnection: @unchecked Sendable {
    /// The version of the SQLite that sqlite-nio bundles, e.g. `3.50.1`.
    package static var bundledSQLiteVersion: String { String(cString: sqlite_nio_sqlite3_libversion()) }

    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    package init(path: String) throws {
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, handle != nil else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "code \(status)"
            sqlite_nio_sqlite3_close(handle)
            handle = nil
            throw DirectSQLiteError(message: message)
        }
    }

    deinit { close() }

    package func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements = [:]
        if let handle { sqlite_nio_sqlite3_close(handle) }
        handle = nil
    }

    private func error() -> DirectSQLiteError {
        DirectSQLiteError(message: handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "closed")
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    package func run(_ sql: String, _ binds: [SQLiteData] = []) throws -> [DirectRow] {
        guard let handle else { throw DirectSQLiteError(message: "the connection is closed") }
        let cached = statements[sql]
        var statement = cached
        if statement == nil {
            guard sqlite_nio_sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, statement != nil else { throw error() }
        }
        // Statements of varying shape (bulk inserts) are not kept.
        let keep = cached != nil || (binds.count <= 64 && statements.count < 128)
        if keep, cached == nil { statements[sql] = statement }
        defer {
            if keep {
                sqlite_nio_sqlite3_reset(statement)
                sqlite_nio_sqlite3_clear_bindings(statement)
            } else {
                sqlite_nio_sqlite3_finalize(statement)
            }
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let v): status = sqlite_nio_sqlite3_bind_int64(statement, index, Int64(v))
            case .float(let v): status = sqlite_nio_sqlite3_bind_double(statement, index, v)
            case .text(let v): status = sqlite_nio_sqlite3_bind_text64(statement, index, v, UInt64(v.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
            case .null: status = sqlite_nio_sqlite3_bind_null(statement, index)
            case .blob(let buffer):
                status = buffer.withUnsafeReadableBytes {
                    sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), Self.transient)
                }
            }
            guard status == SQLITE_OK else { throw error() }
        }
        let count = sqlite_nio_sqlite3_column_count(statement)
        var names: [String] = []
        var rows: [DirectRow] = []
        while true {
            let step = sqlite_nio_sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw error() }
            if names.isEmpty && count > 0 {
                names = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)) }
            }
            var values: [SQLiteData] = []
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch sqlite_nio_sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.integer(Int(sqlite_nio_sqlite3_column_int64(statement, column))))
                case SQLITE_FLOAT: values.append(.float(sqlite_nio_sqlite3_column_double(statement, column)))
                case SQLITE_TEXT:
                    if let text = sqlite_nio_sqlite3_column_text(statement, column) {
                        values.append(.text(String(cString: text)))
                    } else {
                        values.append(.null)
                    }
                default: values.append(.null)
                }
            }
            rows.append(DirectRow(names: names, values: values))
        }
        return rows
    }
}

/// SQLite's online backup: a consistent copy of a database another process is writing.
package enum DirectBackup {
    /// Copies `source` into `destination` (an existing empty file, whose permissions the copy
    /// keeps) with SQLite's online backup API, in steps of `pagesPerStep` pages, calling
    /// `progress` with the pages copied and the total after each step. The copy is the
    /// database as of one moment: in WAL mode writers go on while it runs; if a write lands
    /// between two steps SQLite starts again, so after one restart the rest is copied in a
    /// single step, which a write cannot interrupt.
    package static func copy(
        from source: String, to destination: String, pagesPerStep: Int32 = 1024, progress: (_ copied: Int, _ total: Int) -> Void
    ) throws {
        var from: OpaquePointer?
        var to: OpaquePointer?
        defer {
            sqlite_nio_sqlite3_close(from)
            sqlite_nio_sqlite3_close(to)
        }
        func failure(_ handle: OpaquePointer?, _ what: String) -> DirectSQLiteError {
            DirectSQLiteError(message: "\(what): " + (handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "cannot open"))
        }
        guard sqlite_nio_sqlite3_open_v2(source, &from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw failure(from, "cannot open \(source)")
        }
        sqlite_nio_sqlite3_busy_timeout(from, 5000)
        guard sqlite_nio_sqlite3_open_v2(destination, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw failure(to, "cannot open \(destination)")
        }
        guard let backup = sqlite_nio_sqlite3_backup_init(to, "main", from, "main") else { throw failure(to, "cannot start the backup") }
        var step = pagesPerStep
        var lastRemaining = Int.max
        var status: Int32 = SQLITE_OK
        var busyRounds = 0
        while true {
            status = sqlite_nio_sqlite3_backup_step(backup, step)
            let total = Int(sqlite_nio_sqlite3_backup_pagecount(backup))
            let remaining = Int(sqlite_nio_sqlite3_backup_remaining(backup))
            if status == SQLITE_DONE {
                progress(total, total)
                break
            }
            if status == SQLITE_BUSY || status == SQLITE_LOCKED {
                busyRounds += 1
                guard busyRounds < 600 else { break }
                usleep(50_000)
                continue
            }
            guard status == SQLITE_OK else { break }
            if remaining > lastRemaining { step = -1 }  // restarted by a write: finish in one step
            lastRemaining = remaining
            progress(total - remaining, total)
        }
        let finished = sqlite_nio_sqlite3_backup_finish(backup)
        guard status == SQLITE_DONE, finished == SQLITE_OK else { throw failure(to, "the backup failed") }
    }
}

/// One result row.
package struct DirectRow: Sendable {
    package let names: [String]
    package let values: [SQLiteData]

    package init(names: [String], values: [SQLiteData]) {
        self.names = names
        self.values = values
    }

    package func column(_ name: String) -> SQLiteData? {
        guard let index = names.firstIndex(of: name) else { return nil }
        return values[index]
    }

    package var first: SQLiteData? { values.first }
}

/// An error from SQLite; the message names no data.
package struct DirectSQLiteError: Error, CustomStringConvertible {
    package let message: String
    package init(message: String) { self.message = message }
    package var description: String { message }
}
