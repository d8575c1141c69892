import Foundation
import KaspiSQLite
import KaspiSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Backups of the SQLite store while the gateway runs, and restores into a stopped or new one.
///
/// A backup is SQLite's online backup of the database as of one moment, written to a new
/// file readable by its owner only, checked (`quick_check`), turned into a plain single file
/// (rollback journal, no `-wal`), and only then renamed to its name: a crash leaves no
/// half-written backup under that name.
public enum SQLiteBackup {
    /// What a backup or restore copied.
    public struct Summary: Sendable, Hashable {
        /// The schema version of the copy.
        public var schemaVersion: Int
        /// Orders in the copy.
        public var orders: Int
        /// Its size in bytes.
        public var bytes: Int
    }

    /// A backup or restore refused or failed; the message says what to do.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// `BACKUP_TARGET_EXISTS`, `BACKUP_SOURCE_MISSING`, `BACKUP_INVALID`, `SCHEMA_TOO_NEW` or `BACKUP_FAILED`.
        public var code: String
        /// What happened and what to do.
        public var message: String
        public var description: String { "\(code): \(message)" }
    }

    /// Copies the database at `database` to `destination`.
    ///
    /// - Parameters:
    ///   - replace: replace a file already at `destination` (otherwise refused).
    ///   - progress: the pages copied and the total, after each step.
    public static func backup(
        database: String, to destination: String, replace: Bool = false, progress: (_ copied: Int, _ total: Int) -> Void = { _, _ in }
    ) throws(Failure) -> Summary {
        guard FileManager.default.fileExists(atPath: database) else {
            throw Failure(code: "BACKUP_SOURCE_MISSING", message: "there is no database at \(database)")
        }
        return try copy(from: database, to: destination, replace: replace, checkSchema: false, progress: progress)
    }

    /// Restores `backup` into `database`, for a gateway that is stopped or not yet started:
    /// the backup is checked first (intact, and not from a newer KaspiKit), then copied, and a
    /// database already there is replaced (with `replace`) together with its `-wal` and `-shm`.
    public static func restore(
        backup: String, to database: String, replace: Bool = false, progress: (_ copied: Int, _ total: Int) -> Void = { _, _ in }
    ) throws(Failure) -> Summary {
        guard FileManager.default.fileExists(atPath: backup) else {
            throw Failure(code: "BACKUP_SOURCE_MISSING", message: "there is no backup at \(backup)")
        }
        _ = try inspect(backup, checkSchema: true)
        return try copy(from: backup, to: database, replace: replace, checkSchema: true, progress: progress)
    }

    private static func copy(
        from source: String, to destination: String, replace: Bool, checkSchema: Bool, progress: (Int, Int) -> Void
    ) throws(Failure) -> Summary {
        if FileManager.default.fileExists(atPath: destination), !replace {
            throw Failure(code: "BACKUP_TARGET_EXISTS", message: "\(destination) exists already: choose another name, or pass --force to replace it")
        }
        let directory = (destination as NSString).deletingLastPathComponent
        let partial =
            (directory.isEmpty ? "." : directory) + "/.\((destination as NSString).lastPathComponent).partial-\(UUID().uuidString.prefix(8))"
        do {
            try PrivateFiles.write([], to: partial)
        } catch {
            throw Failure(code: "BACKUP_FAILED", message: error.description)
        }
        do {
            try DirectBackup.copy(from: source, to: partial, progress: progress)
            let summary = try inspect(partial, checkSchema: checkSchema, makeSingleFile: true)
            for suffix in ["-wal", "-shm"] { unlink(destination + suffix) }
            guard rename(partial, destination) == 0 else {
                throw Failure(code: "BACKUP_FAILED", message: "cannot rename the copy to \(destination): \(String(cString: strerror(errno)))")
            }
            syncDirectory(directory.isEmpty ? "." : directory)
            return summary
        } catch let error as Failure {
            removePartial(partial)
            throw error
        } catch {
            removePartial(partial)
            throw Failure(code: "BACKUP_FAILED", message: "\(error)")
        }
    }

    /// Checks a copy and reads its schema version and order count; with `makeSingleFile`,
    /// switches it to a rollback journal so that it is one self-contained file.
    private static func inspect(_ path: String, checkSchema: Bool, makeSingleFile: Bool = false) throws(Failure) -> Summary {
        do {
            let connection = try DirectConnection(path: path)
            defer { connection.close() }
            let check = try connection.run("PRAGMA quick_check").first?.column("quick_check")?.string
            guard check == "ok" else { throw Failure(code: "BACKUP_INVALID", message: "\(path) is damaged (quick_check: \(check ?? "no answer"))") }
            let tables = try connection.run("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'orders')")
            guard tables.count == 2 else { throw Failure(code: "BACKUP_INVALID", message: "\(path) is not a KaspiKit gateway database") }
            let version = try connection.run("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
            if checkSchema, version > Migrations.latest {
                throw Failure(
                    code: "SCHEMA_TOO_NEW",
                    message:
                        "\(path) has schema version \(version) but this KaspiKit knows only up to \(Migrations.latest): restore it with the release that made it, or a newer one"
                )
            }
            let orders = try connection.run("SELECT COUNT(*) AS n FROM orders").first?.column("n")?.integer ?? 0
            if makeSingleFile { try connection.run("PRAGMA journal_mode = DELETE") }
            var info = stat()
            let bytes = stat(path, &info) == 0 ? Int(info.st_size) : 0
            return Summary(schemaVersion: version, orders: orders, bytes: bytes)
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(code: "BACKUP_INVALID", message: "\(path) cannot be read as SQLite: \(error)")
        }
    }

    private static func removePartial(_ path: String) {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) }
    }

    /// Makes the rename durable.
    private static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
