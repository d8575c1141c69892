import Foundation
import Logging
import NIOSSL
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

    /// What a database URL says.
    struct Settings {
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String?
        var tls: TLSChoice
        var maximumConnections: Int
    }

    /// The TLS a URL asks for, for the pool and for one connection alike.
    enum TLSChoice {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }

    /// Parses a `postgres://user:password@host:port/database` URL into a client configuration.
    ///
    /// - Throws: ``StoreError/database(_:)`` naming what is wrong (never the password).
    public static func configuration(url text: String) throws -> PostgresClient.Configuration {
        let settings = try settings(url: text)
        let tls: PostgresClient.Configuration.TLS =
            switch settings.tls {
            case .disable: .disable
            case .prefer(let tls): .prefer(tls)
            case .require(let tls): .require(tls)
            }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database, tls: tls)
        configuration.options.maximumConnections = settings.maximumConnections
        // The pool starts a timer each time a connection goes back to it: a keep-alive ping
        // (30 s by default) and an idle timeout. A timer cancelled early is still held until its
        // deadline (about half a kilobyte each), so at a thousand releases a second the default
        // 30 s ping and 60 s timeout kept tens of megabytes of dead timers. No ping, then, and a
        // short idle timeout: a connection left idle for 10 s is closed (and opened again when
        // wanted), so none sits idle long enough for a firewall or NAT to drop it unseen.
        configuration.options.keepAliveBehavior = nil
        configuration.options.connectionIdleTimeout = .seconds(10)
        return configuration
    }

    static func settings(url text: String) throws -> Settings {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError.database("the database URL must look like postgres://user:password@host:5432/database")
        }
        guard let host = url.host, !host.isEmpty else { throw StoreError.database("the database URL has no host") }
        guard let user = url.user, !user.isEmpty else { throw StoreError.database("the database URL has no user") }
        let database = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let query = URLComponents(string: text)?.queryItems ?? []
        let tls = try tlsMode(
            host: host, mode: query.first(where: { $0.name == "sslmode" })?.value,
            rootCertificate: query.first(where: { $0.name == "sslrootcert" })?.value)
        // Enough for group commits to form under load; several instances share the server's
        // max_connections (100 by default), so it can be set with ?pool_max=N.
        var maximum = 20
        if let text = query.first(where: { $0.name == "pool_max" })?.value {
            guard let value = Int(text), (1...500).contains(value) else { throw StoreError.database("pool_max in the database URL must be 1 to 500") }
            maximum = value
        }
        return Settings(
            host: host, port: url.port ?? 5432, user: user, password: url.password?.removingPercentEncoding ?? url.password,
            database: database.isEmpty ? nil : database, tls: tls, maximumConnections: maximum)
    }

    /// The URL's `sslmode`, as libpq reads it, with a safer default: `verify-full` (TLS, the
    /// server's certificate checked against `sslrootcert`, or the system's roots, and its name
    /// against the host) for any host but this machine, `disable` for loopback. `verify-ca`
    /// checks the certificate but not the name; `require` and `prefer` encrypt without checking
    /// who answers, as libpq does. `allow` (plain text first) and anything else are refused.
    static func tlsMode(host: String, mode: String?, rootCertificate: String?) throws -> TLSChoice {
        let loopback = ["localhost", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
        var verified = TLSConfiguration.makeClientConfiguration()
        if let rootCertificate, rootCertificate != "system" {
            guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
                throw StoreError.database("sslrootcert in the database URL names a file that cannot be read")
            }
            verified.trustRoots = .file(rootCertificate)
        }
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.certificateVerification = .none
        switch mode ?? (loopback ? "disable" : "verify-full") {
        case "disable": return .disable
        case "prefer": return .prefer(unverified)
        case "require": return .require(unverified)
        case "verify-ca":
            verified.certificateVerification = .noHostnameVerification
            return .require(verified)
        case "verify-full":
            verified.certificateVerification = .fullVerification
            return .require(verified)
        default:
            throw StoreError.database("sslmode in the database URL must be disable, prefer, require, verify-ca or verify-full")
        }
    }

    /// Opens one connection with the URL's settings and closes it, so that a start that cannot
    /// reach the database, or whose TLS check fails, says so at once and why, rather than the
    /// pool retrying behind a waiting query.
    ///
    /// - Throws: ``StoreError/database(_:)`` with the reason (never the password).
    public static func probe(url text: String, logger: Logger) async throws {
        let settings = try settings(url: text)
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch settings.tls {
            case .disable: tls = .disable
            case .prefer(let configuration): tls = .prefer(try NIOSSLContext(configuration: configuration))
            case .require(let configuration): tls = .require(try NIOSSLContext(configuration: configuration))
            }
        } catch {
            throw StoreError.database("the TLS settings in the database URL cannot be used: \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try? await connection.close()
        } catch let error as PSQLError {
            let reason = error.serverInfo?[.message] ?? error.underlying.map { "\($0)" } ?? "\(error.code)"
            throw StoreError.database("cannot connect to PostgreSQL at \(settings.host):\(settings.port): \(reason.prefix(300))")
        } catch {
            throw StoreError.database("cannot connect to PostgreSQL at \(settings.host):\(settings.port): \(String(describing: error).prefix(300))")
        }
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
