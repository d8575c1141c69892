import Foundation
import KaspiSQLite
import KaspiSupport
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

/// SQLite's group commit, for ``SQLiteGatewayStore``: one file in WAL mode with
/// `synchronous=FULL`, so a commit is on disk before it is acknowledged.
///
/// Writes use group commit: every write is a job for one writing connection, and the jobs
/// waiting when the writer becomes free run together in one transaction, each inside its own
/// savepoint (a job that fails is rolled back alone), and share one commit, so one `fsync`
/// serves many requests. No job's caller hears of success before the commit that holds its
/// changes is durable; when a commit fails, every job in it fails. A batch runs on the
/// writer's own thread in one go, with prepared statements kept. Reads use a second
/// connection on another thread, which sees only committed data.
final class SQLiteGroupCommit: Sendable {
    private let writer: DirectConnection
    private let writerThread: NIOThreadPool
    /// Reads' connection and thread; nil for `:memory:`, where reads run on the writer
    /// between batches.
    private let reader: (connection: DirectConnection, thread: NIOThreadPool)?
    /// Checkpoints the WAL into the database file off the commit path; nil for `:memory:`.
    private let checkpointer: (connection: DirectConnection, thread: NIOThreadPool)?
    private let checkpoint = Mutex((running: false, commitsSince: 0))
    /// Commits between two checkpoints.
    private static let checkpointEvery = 200
    private let queue = Mutex(WriteQueue())
    private let statistics = Mutex((commits: 0, jobs: 0))
    private let logger: Logger
    private let maxBatch: Int

    private struct WriteQueue {
        var jobs: [WriteJob] = []
        var draining = false
        /// Set by ``close()``: no job is taken any more.
        var closed = false
        /// The drain in flight, and the checkpoint in flight: ``close()`` waits for both.
        var drainTask: Task<Void, Never>?
        var checkpointTask: Task<Void, Never>?
    }

    private init(
        writer: DirectConnection, writerThread: NIOThreadPool, reader: (DirectConnection, NIOThreadPool)?,
        checkpointer: (DirectConnection, NIOThreadPool)?, maxBatch: Int, logger: Logger
    ) {
        self.writer = writer
        self.writerThread = writerThread
        self.reader = reader.map { (connection: $0.0, thread: $0.1) }
        self.checkpointer = checkpointer.map { (connection: $0.0, thread: $0.1) }
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// Opens (or creates) the database file. Migrations are not applied: call ``migrate()``.
    ///
    /// - Parameters:
    ///   - path: the file, or `:memory:` for a throwaway database.
    ///   - maxBatch: the most write jobs one transaction (one commit) holds.
    static func open(path: String, maxBatch: Int, logger: Logger) async throws -> SQLiteGroupCommit {
        let memory = path == ":memory:"
        var writerPragmas = [
            "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000",
            // SQLiteNIO's SQLite is built with SECURE_DELETE, which zeroes every freed byte on
            // disk; the gateway's data is not erased but superseded, so skip it.
            "PRAGMA secure_delete=OFF", "PRAGMA cache_size=-8192",
            // Each job of a shared commit runs in a savepoint, whose statement journal would
            // otherwise be a temporary file written for every page a job changes.
            "PRAGMA temp_store=MEMORY",
        ]
        if !memory {
            // Checkpoints run on their own connection and thread (see checkpointSoon()), so
            // that no commit waits for the database file's fsync.
            writerPragmas = ["PRAGMA journal_mode=WAL"] + writerPragmas + ["PRAGMA wal_autocheckpoint=0"]
        }
        if !memory, !path.isEmpty {
            // The database holds the dashboard's session key, the client-secret key, device
            // tokens and the password hash: its owner's only, from the first byte.
            do {
                for (file, mode) in try PrivateFiles.prepareDatabase(at: path) {
                    logger.notice(
                        "Narrowed the permissions of \(file) from \(String(mode, radix: 8)) to 600: it holds the gateway's keys and must be readable by its owner only"
                    )
                }
            } catch {
                throw StoreError.database(error.description)
            }
        }
        var opened: [(DirectConnection, NIOThreadPool)] = []
        do {
            let writer = try await connection(path: path, pragmas: writerPragmas)
            opened.append(writer)
            var reader: (DirectConnection, NIOThreadPool)?
            var checkpointer: (DirectConnection, NIOThreadPool)?
            if !memory {
                reader = try await connection(path: path, pragmas: ["PRAGMA busy_timeout=5000", "PRAGMA query_only=1", "PRAGMA cache_size=-8192"])
                opened.append(reader!)
                checkpointer = try await connection(path: path, pragmas: ["PRAGMA busy_timeout=5000", "PRAGMA synchronous=FULL"])
            }
            return SQLiteGroupCommit(
                writer: writer.0, writerThread: writer.1, reader: reader, checkpointer: checkpointer, maxBatch: max(1, maxBatch), logger: logger)
        } catch {
            for (connection, thread) in opened {
                try? await thread.runIfActive { connection.close() }
                try? await thread.shutdownGracefully()
            }
            throw StoreError.database("cannot open \(path): \(error)")
        }
    }

    /// Opens a connection on a thread of its own and applies `pragmas` to it.
    private static func connection(path: String, pragmas: [String]) async throws -> (DirectConnection, NIOThreadPool) {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        do {
            let connection = try await thread.runIfActive { () throws -> DirectConnection in
                let connection = try DirectConnection(path: path)
                for pragma in pragmas { try connection.run(pragma) }
                return connection
            }
            return (connection, thread)
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
    }

    /// How many commits have held how many write jobs since the store was opened.
    var commitStatistics: (commits: Int, jobs: Int) {
        statistics.withLock { ($0.commits, $0.jobs) }
    }

    /// Refuses new jobs, waits for the batch and the checkpoint in flight, then closes the
    /// connections and stops their threads.
    func close() async throws {
        let (drain, checkpoint) = queue.withLock { state -> ((Task<Void, Never>)?, (Task<Void, Never>)?) in
            state.closed = true
            return (state.drainTask, state.checkpointTask)
        }
        await drain?.value
        await checkpoint?.value
        if let checkpointer {
            try await checkpointer.thread.runIfActive { checkpointer.connection.close() }
            try await checkpointer.thread.shutdownGracefully()
        }
        try await onWriter { db in db.close() }
        if let reader {
            try await reader.thread.runIfActive { reader.connection.close() }
            try await reader.thread.shutdownGracefully()
        }
        try await writerThread.shutdownGracefully()
    }

    // MARK: Plumbing

    /// Runs `body` on the writer's thread, between batches.
    func onWriter<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        let writer = self.writer
        return try await writerThread.runIfActive { try Self.mapped { try body(writer) } }
    }

    /// Runs a read-only statement on the reader (or, for `:memory:`, on the writer between batches).
    func fetch(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [DirectRow] {
        if let reader {
            let connection = reader.connection
            return try await reader.thread.runIfActive { try Self.mapped { try connection.run(sql, binds) } }
        }
        return try await onWriter { db in try db.run(sql, binds) }
    }

    private static func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DirectSQLiteError {
            throw map(error)
        }
    }

    private static func map(_ error: DirectSQLiteError) -> any Error {
        let message = error.message
        if message.contains("UNIQUE constraint failed: orders") { return StoreError.duplicateOrder("") }
        if message.contains("CHECK constraint failed") { return StoreError.database("a constraint refused the change") }
        return StoreError.database("SQLite: \(message.prefix(200))")
    }

    /// Runs `body` as one write job: in a transaction shared with the other jobs waiting at
    /// the time, inside its own savepoint. Returns (or throws) only after that transaction's
    /// commit (or rollback).
    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (DirectConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let result = Mutex<T?>(nil)
            let job = WriteJob(
                work: { db in
                    do {
                        let value = try Self.mapped { try body(db) }
                        result.withLock { $0 = value }
                        return nil
                    } catch {
                        return error
                    }
                },
                finish: { failure in
                    if let failure {
                        continuation.resume(throwing: failure)
                    } else if let value = result.withLock({ $0.take() }) {
                        continuation.resume(returning: value)
                    } else {
                        continuation.resume(throwing: StoreError.database("a write finished without a result"))
                    }
                })
            let accepted = queue.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.jobs.append(job)
                if !state.draining {
                    state.draining = true
                    // A drain lives while jobs wait; close() waits for it.
                    state.drainTask = Task { await self.drain() }
                }
                return true
            }
            if !accepted { job.finish(StoreError.database("the store is closed")) }
        }
    }

    /// Commits batches until no job waits.
    private func drain() async {
        while true {
            let batch = queue.withLock { state -> [WriteJob] in
                guard !state.jobs.isEmpty else {
                    state.draining = false
                    return []
                }
                return state.jobs.removeFirst(upTo: maxBatch)
            }
            if batch.isEmpty { return }
            let writer = self.writer
            let logger = self.logger
            let outcomes: [(any Error)?]
            do {
                outcomes = try await writerThread.runIfActive { Self.commit(batch, on: writer, logger: logger) }
            } catch {
                outcomes = batch.map { _ in error }
            }
            statistics.withLock {
                $0.commits += 1
                $0.jobs += batch.count
            }
            for (job, failure) in zip(batch, outcomes) { job.finish(failure) }
            checkpointSoon()
        }
    }

    /// Every so many commits, copies the WAL into the database file on the checkpointer's
    /// thread (PASSIVE: it never blocks the writer or readers). SQLite starts the WAL over
    /// once everything in it is checkpointed.
    private func checkpointSoon() {
        guard let checkpointer else { return }
        let start = checkpoint.withLock { state -> Bool in
            state.commitsSince += 1
            guard !state.running, state.commitsSince >= Self.checkpointEvery else { return false }
            state.running = true
            state.commitsSince = 0
            return true
        }
        guard start else { return }
        let logger = self.logger
        queue.withLock { state in
            guard !state.closed else { return }
            // One checkpoint at a time; close() waits for it.
            state.checkpointTask = Task { [self] in
                do {
                    try await checkpointer.thread.runIfActive { _ = try checkpointer.connection.run("PRAGMA wal_checkpoint(PASSIVE)") }
                } catch {
                    logger.warning("A WAL checkpoint failed; the next one will retry", metadata: ["error": "\(error)"])
                }
                self.checkpoint.withLock { $0.running = false }
            }
        }
    }

    /// Runs the jobs in one transaction and commits it, on the writer's thread. Returns each
    /// job's failure (nil for success); when the transaction cannot commit, every job fails.
    private static func commit(_ batch: [WriteJob], on db: DirectConnection, logger: Logger) -> [(any Error)?] {
        do {
            try db.run("BEGIN IMMEDIATE")
        } catch let error as DirectSQLiteError {
            return batch.map { _ in map(error) }
        } catch {
            return batch.map { _ in error }
        }
        var outcomes: [(any Error)?] = []
        do {
            if batch.count == 1 {
                // Alone: the transaction is the job's, so no savepoint is needed.
                if let failure = batch[0].work(db) {
                    _ = try? db.run("ROLLBACK")
                    return [failure]
                }
                outcomes = [nil]
            } else {
                for job in batch {
                    try db.run("SAVEPOINT job")
                    let failure = job.work(db)
                    if failure != nil { try db.run("ROLLBACK TO job") }
                    try db.run("RELEASE job")
                    outcomes.append(failure)
                }
            }
            try db.run("COMMIT")
            return outcomes
        } catch {
            // The transaction as a whole failed (a failed commit, an I/O error): nothing of it
            // is stored, so no job may report success.
            _ = try? db.run("ROLLBACK")
            logger.error("A group commit failed; its jobs are rolled back", metadata: ["jobs": "\(batch.count)", "error": "\(error)"])
            let mappedError = (error as? DirectSQLiteError).map(map) ?? error
            return batch.map { _ in mappedError }
        }
    }
}

/// One write waiting for the group commit: `work` runs its statements (inside the shared
/// transaction) and keeps its result; `finish` answers its caller after the commit.
struct WriteJob: Sendable {
    let work: @Sendable (DirectConnection) -> (any Error)?
    let finish: @Sendable ((any Error)?) -> Void
}

extension Array {
    /// Removes and returns the first `limit` elements, or all when there are fewer: a group
    /// commit's next batch.
    mutating func removeFirst(upTo limit: Int) -> [Element] {
        let count = Swift.min(self.count, limit)
        defer { removeFirst(count) }
        return Array(prefix(count))
    }
}
