import Foundation
import KaspiGatewayStore
import Logging
import PostgresNIO
import ServiceLifecycle

/// Opens the configured store. For PostgreSQL the returned services hold the connection
/// pool, which must run for the store to work.
public enum GatewayStorage {
    /// Opens the store the configuration names; for PostgreSQL, also the pool's service, which must run for the store to work.
    public static func open(_ configuration: GatewayConfiguration, logger: Logger) async throws -> (store: any GatewayStore, services: [any Service])
    {
        if let url = configuration.postgresURL {
            // Unreachable, refused or a certificate that fails its check: said at once, and why.
            try await PostgresGatewayStore.probe(url: url, logger: logger)
            let client = PostgresClient(configuration: try PostgresGatewayStore.configuration(url: url), backgroundLogger: logger)
            return (PostgresGatewayStore(client: client, logger: logger), [PostgresPool(client: client)])
        }
        let store = try await SQLiteGatewayStore.open(path: configuration.sqlitePath, logger: logger)
        // What is in force, read back: some setups reset `synchronous` after opening WAL.
        let synchronous = try await store.synchronousSetting()
        let names = [0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"]
        let mode = try await store.journalMode()
        logger.info("SQLite opened: journal_mode=\(mode) synchronous=\(synchronous) (\(names[synchronous] ?? "?")), group commit")
        return (store, [])
    }

    /// Runs `body` with the store open (and its pool running), then closes it.
    public static func with<T: Sendable>(
        _ configuration: GatewayConfiguration, logger: Logger, _ body: (any GatewayStore) async throws -> T
    ) async throws -> T {
        let (store, services) = try await open(configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services { group.addTask { try await service.run() } }
            do {
                let result = try await body(store)
                try? await store.close()
                group.cancelAll()
                return result
            } catch {
                try? await store.close()
                group.cancelAll()
                throw error
            }
        }
    }
}

/// The PostgreSQL pool as a service.
struct PostgresPool: Service {
    let client: PostgresClient
    func run() async throws {
        // The pool stops last (services stop in reverse order), by cancellation.
        await cancelWhenGracefulShutdown { await client.run() }
    }
}
