import ArgumentParser
import Foundation
import Hummingbird
import KaspiGateway
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import Logging

/// Options shared by `kaspi gateway` and `kaspi gateway migrate`.
struct GatewayOptions: ParsableArguments {
    @Option(help: "A JSON configuration file (default: $KASPI_GATEWAY_CONFIG); flags and the environment override it.")
    var config: String?

    @Option(help: "An SQLite file or a postgres:// URL (default: $KASPI_GATEWAY_DATABASE, else kaspi-gateway.sqlite).")
    var database: String?

    func configuration() throws -> GatewayConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var configuration = GatewayConfiguration()
        if let path = config ?? environment["KASPI_GATEWAY_CONFIG"] { configuration = try GatewayConfiguration.load(file: path) }
        if let database = database ?? environment["KASPI_GATEWAY_DATABASE"] { configuration.setDatabase(database) }
        return configuration
    }
}

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the merchant's payment service in front of Kaspi Pay.",
        discussion: """
            Merchant API keys come from $KASPI_GATEWAY_API_KEYS (comma-separated; only their
            SHA-256 is kept) or apiKeyHashes in the file. Kaspi credentials: KASPI_TRADE_POINT_ID,
            KASPI_API_KEY, and KASPI_ENV or KASPI_BASE_URL (a sandbox, say). Register
            <public URL>/webhooks/kaspi as the trade point's webhook URL. See docs/gateway.md.
            """,
        subcommands: [Serve.self, Migrate.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the gateway (the default).")

        @OptionGroup var options: GatewayOptions
        @Option(help: "Address to listen on.") var host: String?
        @Option(help: "Port to listen on (default 8282).") var port: Int?
        @Option(name: .customLong("public-url"), help: "The gateway's public base URL.") var publicURL: String?
        @Option(name: .customLong("merchant-webhook-url"), help: "Where events for your systems go (default: $KASPI_GATEWAY_EVENTS_URL).") var merchantWebhookURL: String?
        @Option(name: .customLong("first-poll-after"), help: "Seconds before a pending order is first polled.") var firstPollAfter: Double?
        @Option(name: .customLong("worker-interval"), help: "Seconds between rounds of background work.") var workerInterval: Double?
        @Option(name: .customLong("instance-id"), help: "This instance's name in work leases.") var instanceID: String?
        @Option(name: .customLong("work-batch-size"), help: "Orders or events one round of background work claims.") var workBatchSize: Int?
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            try await Console.run(json: false) {
                var configuration = try options.configuration()
                if let host { configuration.host = host }
                if let port = port ?? environment["KASPI_GATEWAY_PORT"].flatMap(Int.init) { configuration.port = port }
                if let publicURL = publicURL ?? environment["KASPI_GATEWAY_PUBLIC_URL"] { configuration.publicURL = publicURL }
                if let keys = environment["KASPI_GATEWAY_API_KEYS"] {
                    configuration.apiKeyHashes += keys.split(separator: ",").map { GatewayConfiguration.hash(apiKey: $0.trimmingCharacters(in: .whitespaces)) }
                }
                if let url = merchantWebhookURL ?? environment["KASPI_GATEWAY_EVENTS_URL"] { configuration.merchantWebhookURL = url }
                if let secret = environment["KASPI_GATEWAY_EVENTS_SECRET"] { configuration.merchantWebhookSecret = secret }
                if let firstPollAfter { configuration.firstPollAfter = firstPollAfter }
                if let workerInterval { configuration.workerInterval = workerInterval }
                if let instanceID {
                    configuration.instanceID = instanceID
                } else if !configuration.hasChosenInstanceID, configuration.port != 0 {
                    // Stable across restarts, so that a restarted instance takes back its leases.
                    configuration.instanceID = "\(ProcessInfo.processInfo.hostName):\(configuration.port)"
                }
                if let workBatchSize { configuration.workBatchSize = workBatchSize }
                if let password = environment["KASPI_GATEWAY_ADMIN_PASSWORD"] { configuration.adminPassword = password }
                if let confirm = environment["KASPI_GATEWAY_CONFIRM_PAID_WEBHOOKS"] {
                    guard let value = ["true": true, "1": true, "false": false, "0": false][confirm.lowercased()] else {
                        throw GatewayConfigurationError.invalid("KASPI_GATEWAY_CONFIRM_PAID_WEBHOOKS", "must be true or false")
                    }
                    configuration.confirmPaidWebhooks = value
                }
                try configuration.validate()
                let kaspi = try connection.configuration()
                var logger = Logger(label: "kaspi-gateway")
                logger.logLevel = environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
                let (store, services) = try await GatewayStorage.open(configuration, logger: logger)
                let transport = AsyncHTTPClientTransport(readTimeout: kaspi.requestTimeout)
                // Kaspi's limit is per trade point, not per instance: the window lives in the
                // database, shared by every instance on it.
                let limiter = SharedRateLimiter(store: store, configuration: kaspi)
                let provider = KaspiPayProvider(client: KaspiClient(configuration: kaspi, transport: transport, rateLimiter: limiter, logger: logger))
                let gateway = Gateway(configuration: configuration, store: store, provider: provider, logger: logger)
                let settings = configuration
                let app = gateway.application { port in
                    let base = settings.publicBase(boundPort: port)
                    Console.out("""
                        Kaspi gateway listening on http://\(settings.host):\(port) (\(settings.databaseDescription))
                        Merchant API: \(base)/v1   Kaspi webhook URL to register: \(base)/webhooks/kaspi
                        Dashboard: \(base)/admin
                        """)
                }
                do {
                    // The PostgreSQL pool runs beside the server; migrations run before it serves.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for service in services { group.addTask { try await service.run() } }
                        let applied = try await store.migrate()
                        if !applied.isEmpty { logger.info("Migrations applied", metadata: ["versions": "\(applied)"]) }
                        if let generated = try await gateway.prepareAdmin() {
                            Console.out("Dashboard password (shown once; set KASPI_GATEWAY_ADMIN_PASSWORD to choose your own): \(generated)")
                        }
                        try await app.runService()
                        group.cancelAll()
                    }
                } catch {
                    await gateway.shutdown()
                    try? await transport.shutdown()
                    try? await store.close()
                    throw error
                }
                await gateway.shutdown()
                try? await transport.shutdown()
                try? await store.close()
            }
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the database migrations and exit.")
        @OptionGroup var options: GatewayOptions

        func run() async throws {
            try await Console.run(json: false) {
                let configuration = try options.configuration()
                let logger = Logger(label: "kaspi-gateway")
                let applied = try await GatewayStorage.with(configuration, logger: logger) { store in
                    let applied = try await store.migrate()
                    return (applied, try await store.schemaVersion())
                }
                Console.out(applied.0.isEmpty
                    ? "\(configuration.databaseDescription) is up to date (schema version \(applied.1))."
                    : "Applied migrations \(applied.0.map(String.init).joined(separator: ", ")) to \(configuration.databaseDescription); schema version \(applied.1).")
            }
        }
    }
}
