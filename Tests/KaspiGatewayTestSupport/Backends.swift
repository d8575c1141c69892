import Foundation
import KaspiGatewayStore
import PostgresNIO
import Testing

/// The database a test runs against.
public enum Backend: String, CustomTestStringConvertible, Sendable, CaseIterable {
    case sqlite, postgres
    public var testDescription: String { rawValue }

    /// PostgreSQL runs when `KASPI_TEST_POSTGRES_URL` is set (`.ci/run` sets it); CI fails
    /// rather than skip when it is missing there.
    public static var postgresURL: String? { ProcessInfo.processInfo.environment["KASPI_TEST_POSTGRES_URL"] }

    public static var available: [Backend] {
        if postgresURL == nil {
            if ProcessInfo.processInfo.environment["CI"] == nil {
                print("note: KASPI_TEST_POSTGRES_URL is not set; the PostgreSQL store tests are skipped (only allowed outside CI)")
                return [.sqlite]
            }
        }
        return [.sqlite, .postgres]
    }
}

/// A migrated store for one test, and how to dispose of it.
public struct StoreHandle: Sendable {
    public let store: any GatewayStore
    public let close: @Sendable () async throws -> Void
}

extension Backend {
    /// Opens a fresh, migrated store: a new SQLite file, or a new PostgreSQL schema whose
    /// pool runs until ``StoreHandle/close``.
    public func open() async throws -> StoreHandle {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(UUID().uuidString).sqlite").path
            let store = try await SQLiteGatewayStore.open(path: path)
            _ = try await store.migrate()
            return StoreHandle(store: store) {
                try await store.close()
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
        case .postgres:
            guard let url = Self.postgresURL else {
                Issue.record("KASPI_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests")
                throw CancellationError()
            }
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try await PostgresGatewayStore.withStore(url: url) { admin in
                _ = try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
            }
            var configuration = try PostgresGatewayStore.configuration(url: url)
            configuration.options.additionalStartupParameters = [("search_path", schema)]
            let client = PostgresClient(configuration: configuration)
            let runner = Task { await client.run() }
            let store = PostgresGatewayStore(client: client)
            _ = try await store.migrate()
            return StoreHandle(store: store) {
                runner.cancel()
                try await Self.drop(schema, url: url)
            }
        }
    }

    static func drop(_ schema: String, url: String) async throws {
        try await PostgresGatewayStore.withStore(url: url) { admin in
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
        }
    }
}

public func makeOrder(
    _ reference: String = "cart-1", amount: Int = 5000, at: Date = Date(timeIntervalSince1970: 1_800_000_000), kind: OrderKind = .redirect
) -> GatewayOrder {
    GatewayOrder(
        id: GatewayID.make("ord"), provider: "kaspi-pay", providerOrderID: GatewayID.make("kp"), kind: kind, amount: amount,
        description: "Order \(reference)", merchantReference: reference, metadata: #"{"cart":"\#(reference)"}"#, createdAt: at,
        nextPollAt: at.addingTimeInterval(60))
}
