import ArgumentParser
import Foundation
import KaspiGateway
import KaspiGatewayStore

/// Prints a copy's progress on standard error, every tenth of the way, for copies large
/// enough to take a while.
struct CopyProgress {
    let verb: String
    var lastTenth = -1

    mutating func report(copied: Int, total: Int) {
        guard total >= 2048 else { return }  // 8 MiB at SQLite's 4 KiB pages
        let tenth = copied * 10 / max(total, 1)
        guard tenth != lastTenth else { return }
        lastTenth = tenth
        Console.err("\(verb): \(tenth * 10)% (\(copied) of \(total) pages)")
    }
}

/// `kaspi gateway backup --to FILE`: a consistent copy of the SQLite database while the
/// gateway runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the SQLite database while the gateway runs: a consistent copy, readable by its owner only (PostgreSQL: pg_dump).")
    @OptionGroup var options: GatewayOptions
    @Option(help: "Where to write the copy (a new file; its owner's only).") var to: String
    @Flag(help: "Replace a file already there.") var force = false
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let configuration = try await options.configuration()
            guard configuration.postgresURL == nil else {
                throw CLIError.invalidInput(
                    "the database is PostgreSQL: back it up with pg_dump --format=custom (see docs/deploy.md, \"Backups\")")
            }
            let started = ContinuousClock.now
            var progress = CopyProgress(verb: "Backing up")
            let summary = try SQLiteBackup.backup(database: configuration.sqlitePath, to: to, replace: force) { copied, total in
                progress.report(copied: copied, total: total)
            }
            let seconds =
                Double((ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000) / 1000
                + Double((ContinuousClock.now - started).components.seconds)
            if output.json {
                Console.json(["file": to, "orders": summary.orders, "schemaVersion": summary.schemaVersion, "bytes": summary.bytes])
            } else {
                Console.out(
                    "Backed up \(summary.orders) orders (schema version \(summary.schemaVersion), \(summary.bytes) bytes) from \(configuration.sqlitePath) to \(to) in \(String(format: "%.1f", seconds)) s."
                )
            }
        }
    }
}

/// `kaspi gateway restore --from FILE`: a backup back into place, for a stopped or new gateway.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup in place as the gateway's SQLite database. Stop the gateway first; start it after.")
    @OptionGroup var options: GatewayOptions
    @Option(help: "The backup to restore.") var from: String
    @Flag(help: "Replace the database already there (the gateway must be stopped).") var force = false
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let configuration = try await options.configuration()
            guard configuration.postgresURL == nil else {
                throw CLIError.invalidInput("the database is PostgreSQL: restore it with pg_restore (see docs/deploy.md, \"Backups\")")
            }
            var progress = CopyProgress(verb: "Restoring")
            let summary = try SQLiteBackup.restore(backup: from, to: configuration.sqlitePath, replace: force) { copied, total in
                progress.report(copied: copied, total: total)
            }
            if output.json {
                Console.json(["database": configuration.sqlitePath, "orders": summary.orders, "schemaVersion": summary.schemaVersion])
            } else {
                Console.out(
                    "Restored \(summary.orders) orders (schema version \(summary.schemaVersion)) from \(from) into \(configuration.sqlitePath); start the gateway: it applies any newer migrations."
                )
            }
        }
    }
}
