import Foundation
import Logging
import PostgresNIO

/// The store for more than one machine: several gateway instances share one PostgreSQL.
/// Orders are locked with `SELECT … FOR UPDATE` while they change, and background work is
/// claimed with `FOR UPDATE SKIP LOCKED` and a lease that expires.
///
/// The `PostgresClient` pool is a service: run ``client`` in the application's service group,
/// or use ``withStore(url:logger:_:)``.
public final class PostgresGatewayStore: GatewayStore {
    /// The connection pool; it must be running (it is a `Service`).
    public let client: PostgresClient
    let logger: Logger
    /// The webhook path's group commit (see ``update(provider:providerOrderID:_:)``).
    let groupCommit: PostgresGroupCommit

    public init(client: PostgresClient, logger: Logger = Logger(label: "kaspi-gateway-postgres")) {
        self.client = client
        self.logger = logger
        self.groupCommit = PostgresGroupCommit(client: client, logger: logger)
    }

    /// How many group commits of status reports have carried how many reports.
    public var groupCommitStatistics: (batches: Int, jobs: Int) { groupCommit.batchStatistics }

    /// Parses a `postgres://user:password@host:port/database` URL into a client configuration.
    ///
    /// - Throws: ``StoreError/database(_:)`` naming what is wrong (never the password).
    public static func configuration(url text: String) throws -> PostgresClient.Configuration {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError.database("the database URL must look like postgres://user:password@host:5432/database")
        }
        guard let host = url.host, !host.isEmpty else { throw StoreError.database("the database URL has no host") }
        guard let user = url.user, !user.isEmpty else { throw StoreError.database("the database URL has no user") }
        let database = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let query = URLComponents(string: text)?.queryItems ?? []
        let tls: PostgresClient.Configuration.TLS
        switch query.first(where: { $0.name == "sslmode" })?.value ?? "disable" {
        case "disable": tls = .disable
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password?.removingPercentEncoding ?? url.password,
            database: database.isEmpty ? nil : database, tls: tls)
        // Enough for group commits to form under load; several instances share the server's
        // max_connections (100 by default), so it can be set with ?pool_max=N.
        var maximum = 20
        if let text = query.first(where: { $0.name == "pool_max" })?.value {
            guard let value = Int(text), (1...500).contains(value) else { throw StoreError.database("pool_max in the database URL must be 1 to 500") }
            maximum = value
        }
        configuration.options.maximumConnections = maximum
        return configuration
    }

    /// Runs `body` with a store whose pool runs for the duration.
    public static func withStore<T: Sendable>(
        url: String, logger: Logger = Logger(label: "kaspi-gateway-postgres"), _ body: (PostgresGatewayStore) async throws -> T
    ) async throws -> T {
        try await withStore(configuration: try configuration(url: url), logger: logger, body)
    }

    /// Runs `body` with a store over a client made from `configuration`.
    public static func withStore<T: Sendable>(
        configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "kaspi-gateway-postgres"),
        _ body: (PostgresGatewayStore) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(PostgresGatewayStore(client: client, logger: logger))
        }
    }

    public func close() async throws {}

    // MARK: Plumbing

    func map(_ error: any Error) -> any Error { Self.mapError(error) }

    static func mapError(_ error: any Error) -> any Error {
        if let error = error as? StoreError { return error }
        if let error = error as? PSQLError {
            switch error.serverInfo?[.sqlState] {
            case "23505": return StoreError.duplicateOrder("")
            case "23514": return StoreError.database("a constraint refused the change")
            default: return StoreError.database("PostgreSQL: \(error.serverInfo?[.message] ?? "\(error.code)")")
            }
        }
        return error
    }

    func rows(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [PostgresRandomAccessRow] {
        do {
            let sequence: PostgresRowSequence
            if let connection {
                sequence = try await connection.query(query, logger: logger)
            } else {
                sequence = try await client.query(query, logger: logger)
            }
            var result: [PostgresRandomAccessRow] = []
            for try await row in sequence { result.append(row.makeRandomAccess()) }
            return result
        } catch {
            throw map(error)
        }
    }

    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw map(error.closureError ?? error.commitError ?? error.beginError ?? error)
        } catch {
            throw map(error)
        }
    }

    // MARK: Migrations

    public func migrate() async throws -> [Int] {
        try await transaction { connection in
            // One instance migrates at a time.
            _ = try await rows("SELECT pg_advisory_xact_lock(727274271)", on: connection)
            _ = try await rows(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)", on: connection)
            let current = Int(
                try await rows("SELECT COALESCE(MAX(version), 0)::BIGINT AS v FROM schema_migrations", on: connection).first?.int("v") ?? 0)
            guard current <= Migrations.latest else { throw StoreError.schemaTooNew(found: current, known: Migrations.latest) }
            var applied: [Int] = []
            for migration in Migrations.all(.postgres) where migration.version > current {
                // The migrations' own text, written in this package: no parameters.
                for statement in migration.statements { _ = try await rows(PostgresQuery(unsafeSQL: statement), on: connection) }
                _ = try await rows(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(Int32(migration.version)), \(ms: Date()))", on: connection)
                applied.append(migration.version)
            }
            return applied
        }
    }

    public func schemaVersion() async throws -> Int {
        let exists = try await rows("SELECT to_regclass('schema_migrations')::TEXT AS t").first?.string("t")
        guard exists != nil else { return 0 }
        return Int(try await rows("SELECT COALESCE(MAX(version), 0)::BIGINT AS v FROM schema_migrations").first?.int("v") ?? 0)
    }

}

extension PostgresRandomAccessRow: RowReader {
    func string(_ column: String) -> String? {
        guard contains(column) else { return nil }
        return try? self[column].decode(String?.self)
    }

    func int(_ column: String) -> Int64? {
        guard contains(column) else { return nil }
        if let value = try? self[column].decode(Int64?.self) { return value }
        if let value = try? self[column].decode(Int32?.self) { return Int64(value) }
        return nil
    }
}

extension PostgresQuery.StringInterpolation {
    /// A moment as the stores keep it: milliseconds since 1970 (`BIGINT`), or `NULL`.
    mutating func appendInterpolation(ms date: Date?) {
        appendInterpolation(date?.ms)
    }

    /// A value the shared row encoder wrote, as one parameter.
    mutating func appendInterpolation(_ value: StoreValue) {
        switch value {
        case .text(let text): appendInterpolation(text)
        case .int(let int): appendInterpolation(int)
        case .int32(let int): appendInterpolation(int)
        }
    }

    /// Values the shared row encoder wrote, one parameter each, separated by commas.
    mutating func appendInterpolation(values: [StoreValue]) {
        for (index, value) in values.enumerated() {
            if index > 0 { appendLiteral(", ") }
            appendInterpolation(value)
        }
    }
}
