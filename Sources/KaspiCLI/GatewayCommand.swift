import ArgumentParser
import Configuration
import Foundation
import Hummingbird
import KaspiGateway
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiSupport
import Logging
import ServiceLifecycle
import Synchronization

/// Options shared by `kaspi gateway` and `kaspi gateway migrate`.
struct GatewayOptions: ParsableArguments {
    @Option(help: "A JSON configuration file (default: $KASPI_GATEWAY_CONFIG); flags and the environment override it.")
    var config: String?

    @Option(help: "An SQLite file or a postgres:// URL (default: $KASPI_GATEWAY_DATABASE, else kaspi-gateway.sqlite).")
    var database: String?

    /// The configuration from the file, the environment and `overrides` (flags), in rising
    /// precedence; `--database` is one of the flags.
    func configuration(overrides: [String: ConfigValue] = [:]) async throws -> GatewayConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var flags = overrides
        if let database { flags["database"] = ConfigValue(.string(database), isSecret: true) }
        return try await GatewayConfiguration.load(file: config ?? environment["KASPI_GATEWAY_CONFIG"], environment: environment, overrides: flags)
    }
}

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the merchant's payment service in front of Kaspi Pay.",
        discussion: """
            Merchant API keys come from $KASPI_GATEWAY_API_KEYS (comma-separated; only their \
            SHA-256 is kept) or apiKeyHashes in the file.

            Two profiles. --profile guide (the default; $KASPI_GATEWAY_PROFILE): the integration \
            guide's API, with KASPI_TRADE_POINT_ID, KASPI_API_KEY and KASPI_BASE_URL; register \
            <public URL>/webhooks/kaspi as the trade point's webhook URL. --profile qr: Kaspi's \
            partner API (the Kaspi QR API), with KASPI_QR_SCHEME and its credentials (see \
            docs/kaspi-qr.md); no webhooks, every outcome is polled. Register the gateway as a \
            device first: `kaspi gateway tradepoints`, then `kaspi gateway device register \
            --trade-point N`. See docs/gateway.md.
            """,
        subcommands: [
            Serve.self, Migrate.self, BackupCommand.self, RestoreCommand.self, KeyCommand.self, SecretCommand.self, TradePointsCommand.self,
            DeviceCommand.self,
            CheckCommand.self,
        ],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the gateway (the default).")

        @OptionGroup var options: GatewayOptions
        @Option(help: "Address to listen on.") var host: String?
        @Option(help: "Port to listen on (default 8282).") var port: Int?
        @Option(name: .customLong("public-url"), help: "The gateway's public base URL.") var publicURL: String?
        @Option(name: .customLong("admin-host"), help: "Where the dashboard and metrics listen (default 127.0.0.1).") var adminHost: String?
        @Option(name: .customLong("admin-port"), help: "Their port (default: the public port plus one; 0 picks a free one).") var adminPort: Int?
        @Option(name: .customLong("merchant-webhook-url"), help: "Where events for your systems go (default: $KASPI_GATEWAY_EVENTS_URL).")
        var merchantWebhookURL: String?
        @Option(name: .customLong("first-poll-after"), help: "Seconds before a pending order is first polled.") var firstPollAfter: Double?
        @Option(name: .customLong("worker-interval"), help: "Seconds between rounds of background work.") var workerInterval: Double?
        @Option(name: .customLong("instance-id"), help: "This instance's name in work leases.") var instanceID: String?
        @Option(name: .customLong("work-batch-size"), help: "Orders or events one round of background work claims.") var workBatchSize: Int?
        @Option(
            name: .customLong("trusted-proxy"),
            help:
                "A TLS proxy in front of the gateway (an address or CIDR network; repeatable): only its requests may name their client in X-Forwarded-For."
        )
        var trustedProxies: [String] = []
        @Option(help: "guide (the integration guide's API) or qr (Kaspi's partner API) (default: $KASPI_GATEWAY_PROFILE, else guide).")
        var profile: String?
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup(title: "Kaspi QR API (--profile qr)") var qr: QRCredentialOptions
        @OptionGroup var logs: LogOptions

        /// Refuses a flag the chosen profile would not use, rather than ignore it.
        func checkFlags(useQR: Bool) throws {
            if useQR {
                if connection.tradePointID != nil {
                    throw CLIError.invalidInput("--trade-point-id applies to --profile guide only; the QR profile's trade points are its devices'")
                }
                if connection.timeout != 30 || connection.noRetry || connection.verbose {
                    throw CLIError.invalidInput("--timeout, --no-retry and --verbose apply to --profile guide only")
                }
            } else if let first = qr.given.first {
                throw CLIError.invalidInput("\(first.flag) applies to --profile qr only (this gateway runs the guide profile)")
            }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            try await Console.run(json: false) {
                try logs.bootstrap()
                let chosen = (profile ?? environment["KASPI_GATEWAY_PROFILE"] ?? "guide").lowercased()
                guard ["guide", "kaspi-pay", "qr", "kaspi-qr"].contains(chosen) else {
                    throw GatewayConfigurationError.invalid("profile", "must be guide or qr, not \(chosen)")
                }
                let useQR = chosen == "qr" || chosen == "kaspi-qr"
                try checkFlags(useQR: useQR)
                var flags: [String: ConfigValue] = [:]
                if let host { flags["host"] = ConfigValue(.string(host), isSecret: false) }
                if let port { flags["port"] = ConfigValue(.int(port), isSecret: false) }
                if let publicURL { flags["publicUrl"] = ConfigValue(.string(publicURL), isSecret: false) }
                if let adminHost { flags["adminHost"] = ConfigValue(.string(adminHost), isSecret: false) }
                if let adminPort { flags["adminPort"] = ConfigValue(.int(adminPort), isSecret: false) }
                if let merchantWebhookURL { flags["merchantWebhookUrl"] = ConfigValue(.string(merchantWebhookURL), isSecret: false) }
                if let firstPollAfter { flags["firstPollAfter"] = ConfigValue(.double(firstPollAfter), isSecret: false) }
                if let workerInterval { flags["workerInterval"] = ConfigValue(.double(workerInterval), isSecret: false) }
                if let instanceID { flags["instanceId"] = ConfigValue(.string(instanceID), isSecret: false) }
                if let workBatchSize { flags["workBatchSize"] = ConfigValue(.int(workBatchSize), isSecret: false) }
                if !trustedProxies.isEmpty { flags["trustedProxies"] = ConfigValue(.stringArray(trustedProxies), isSecret: false) }
                var configuration = try await options.configuration(overrides: flags)
                if !configuration.hasChosenInstanceID, configuration.port != 0 {
                    // Stable across restarts, so that a restarted instance takes back its leases.
                    configuration.instanceID = "\(ProcessInfo.processInfo.hostName):\(configuration.port)"
                }
                try configuration.validate()
                var logger = Logger(label: "kaspi-gateway")
                logger.logLevel = environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
                let provider: any PaymentProvider
                let transport: AsyncHTTPClientTransport
                let store: any GatewayStore
                let services: [any Service]
                let profileLine: String
                var certificate: ClientCertificate? = nil
                if useQR {
                    let settings = try qr.settings(
                        environment: environment, env: connection.environment, baseURL: connection.baseURL, apiKey: connection.apiKey)
                    (store, services) = try await GatewayStorage.open(configuration, logger: logger)
                    // Kaspi publishes no rate limit for the QR API; KASPI_RATE_LIMIT (calls a
                    // minute, shared by every instance on the database) sets one if needed.
                    var limiter: SharedRateLimiter? = nil
                    if let raw = environment["KASPI_RATE_LIMIT"], !raw.isEmpty {
                        guard let perMinute = Int(raw), (0...100_000).contains(perMinute) else { throw ConfigurationError.invalidRateLimit(raw) }
                        if perMinute > 0 { limiter = SharedRateLimiter(store: store, key: "kaspi-qr", limit: perMinute, window: 60) }
                    }
                    certificate = try ClientCertificate.read(settings)
                    (provider, _, transport) = try GatewayProviders.kaspiQR(settings, store: store, rateLimiter: limiter, logger: logger)
                    profileLine =
                        "Profile: the Kaspi QR API, \(settings.scheme) at \(settings.host)\(settings.proxy.map { " through the proxy \($0)" } ?? ""); no webhooks, outcomes are polled"
                } else {
                    let kaspi = try connection.configuration()
                    (store, services) = try await GatewayStorage.open(configuration, logger: logger)
                    // Kaspi's limit is per trade point, not per instance: the window lives in the
                    // database, shared by every instance on it.
                    let limiter = SharedRateLimiter(store: store, configuration: kaspi)
                    (provider, transport) = GatewayProviders.guide(kaspi, rateLimiter: limiter, logger: logger)
                    profileLine = "Profile: the integration guide's API at \(kaspi.environment)"
                }
                let settings = configuration
                let startupLogger = logger
                // The gateway exists once built; the start-up message asks it for the admin port.
                let gatewayBox = Mutex<Gateway?>(nil)
                let (gateway, app) = try buildGatewayApplication(
                    configuration: configuration, store: store, provider: provider, services: services, logger: logger,
                    migrated: { applied in startupLogger.info("Migrations applied", metadata: ["versions": "\(applied)"]) },
                    adminPasswordGenerated: { generated in
                        Console.out("Dashboard password (shown once; set KASPI_GATEWAY_ADMIN_PASSWORD to choose your own): \(generated)")
                    },
                    beforeServing: {
                        if useQR, try await store.devices(provider: KaspiQRProvider.providerName).isEmpty {
                            Console.out(
                                "No device is registered with Kaspi yet: checkouts fail until you run `kaspi gateway device register --trade-point N`."
                            )
                        }
                    },
                    onServerRunning: { port in
                        let base = settings.publicBase(boundPort: port)
                        let admin = await gatewayBox.withLock({ $0 })?.waitForAdminListener() ?? "(not listening)"
                        Console.out(
                            """
                            Kaspi gateway listening on http://\(settings.host):\(port) (\(settings.databaseDescription))
                            \(profileLine)
                            Merchant API: \(base)/v1\(useQR ? "" : "   Kaspi webhook URL to register: \(base)/webhooks/kaspi")
                            Dashboard: \(admin)/admin   Metrics: \(admin)/metrics   (the admin listener, not the public one)
                            """)
                    })
                gatewayBox.withLock { $0 = gateway }
                if let certificate {
                    gateway.clientCertificate = certificate
                    let line = certificate.summary(at: Date())
                    if certificate.needsRenewal(at: Date()) { logger.warning("\(line)") } else { logger.info("\(line)") }
                }
                do {
                    // The pool, the worker and the server are the application's services; they
                    // end at SIGINT or SIGTERM, the server first and the pool last.
                    try await app.runService()
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
                let configuration = try await options.configuration()
                let logger = Logger(label: "kaspi-gateway")
                let applied = try await GatewayStorage.with(configuration, logger: logger) { store in
                    let applied = try await store.migrate()
                    return (applied, try await store.schemaVersion())
                }
                Console.out(
                    applied.0.isEmpty
                        ? "\(configuration.databaseDescription) is up to date (schema version \(applied.1))."
                        : "Applied migrations \(applied.0.map(String.init).joined(separator: ", ")) to \(configuration.databaseDescription); schema version \(applied.1)."
                )
            }
        }
    }
}

/// The Kaspi QR API's device commands share the gateway's database and the QR connection flags.
struct GatewayQRContext {
    static func run<T: Sendable>(
        options: GatewayOptions, connection: QRAPIConnection, _ body: @escaping (KaspiQRAPI.AnyClient, any GatewayStore) async throws -> T
    ) async throws -> T {
        let configuration = try await options.configuration()
        let settings = try connection.settings()
        let transport = try KaspiQRSetup.transport(settings)
        var logger = Logger(label: "kaspi", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = connection.verbose ? .debug : .critical
        do {
            let client = try KaspiQRSetup.client(settings, transport: transport, logger: logger)
            let result = try await GatewayStorage.with(configuration, logger: logger) { store in
                _ = try await store.migrate()
                return try await body(client, store)
            }
            try? await transport.shutdown()
            return result
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }
}

struct TradePointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tradepoints", abstract: "List the trade points Kaspi has for the configured organization (Kaspi QR API).")
    @OptionGroup var options: GatewayOptions
    @OptionGroup var connection: QRAPIConnection
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let (points, devices) = try await GatewayQRContext.run(options: options, connection: connection) { client, store in
                (try await client.tradePoints(), try await store.devices(provider: KaspiQRProvider.providerName))
            }
            if output.json {
                struct Point: Encodable {
                    var tradePointID: Int64
                    var name: String
                    var devices: [String]

                    enum CodingKeys: String, CodingKey {
                        case tradePointID = "tradePointId"
                        case name
                        case devices
                    }
                }
                Console.json(
                    encoding: points.map { point in
                        Point(tradePointID: point.id, name: point.name, devices: devices.filter { $0.tradePointID == point.id }.map(\.id))
                    })
            } else {
                for point in points {
                    let here = devices.filter { $0.tradePointID == point.id }
                    Console.out("\(point.id)\t\(point.name)\(here.isEmpty ? "" : "\t(devices: \(here.map(\.id).joined(separator: ", ")))")")
                }
            }
        }
    }
}

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Register, list, rotate or delete the gateway's devices with Kaspi (Kaspi QR API).",
        subcommands: [Register.self, List.self, Rotate.self, Delete.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register this gateway as a device on a trade point; its token is stored in the database.")
        @Option(name: .customLong("trade-point"), help: "The trade point id (see `kaspi gateway tradepoints`).") var tradePoint: Int64
        @Option(name: .customLong("device-id"), help: "The id to register under (default: a new one).") var deviceID: String?
        @Flag(name: .customLong("default"), help: "Use it for checkouts without a reference prefix of their own.") var isDefault = false
        @Option(name: .customLong("reference-prefix"), help: "Checkouts whose merchant reference starts with this use this device.")
        var referencePrefix: String?
        @OptionGroup var options: GatewayOptions
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                if let referencePrefix, referencePrefix.isEmpty || referencePrefix.count > 64 {
                    throw CLIError.invalidInput("--reference-prefix must be 1 to 64 characters")
                }
                let device = try await GatewayQRContext.run(options: options, connection: connection) { client, store in
                    try await KaspiQRSetup.registerDevice(
                        client: client, store: store, tradePointID: tradePoint, deviceID: deviceID, isDefault: isDefault,
                        referencePrefix: referencePrefix)
                }
                if output.json {
                    Console.json(encoding: DeviceOutput(device))
                } else {
                    Console.out(
                        "Device \(device.id) (\(device.deviceID)) registered on trade point \(device.tradePointID)\(device.isDefault ? ", the default" : ""); its token (\(device.redactedToken)) is in the database."
                    )
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered devices (tokens redacted).")
        @OptionGroup var options: GatewayOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let configuration = try await options.configuration()
                let devices = try await GatewayStorage.with(configuration, logger: Logger(label: "kaspi")) { store in
                    _ = try await store.migrate()
                    return try await store.devices(provider: KaspiQRProvider.providerName)
                }
                if output.json {
                    Console.json(encoding: devices.map(DeviceOutput.init))
                } else if devices.isEmpty {
                    Console.out("No device is registered: `kaspi gateway device register --trade-point N`.")
                } else {
                    for d in devices {
                        Console.out(
                            "\(d.id)\t\(d.deviceID)\ttrade point \(d.tradePointID)\(d.organizationBin.map { "\tBIN \($0)" } ?? "")\ttoken \(d.redactedToken)\(d.isDefault ? "\tdefault" : "")\(d.referencePrefix.map { "\tprefix \($0)" } ?? "")"
                        )
                    }
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a device with a new one on its trade point (a new token), then delete the old one.")
        @Argument(help: "The device (dev_… or its device id).") var id: String
        @OptionGroup var options: GatewayOptions
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let device = try await GatewayQRContext.run(options: options, connection: connection) { client, store in
                    try await KaspiQRSetup.rotateDevice(client: client, store: store, id: id)
                }
                if output.json {
                    Console.json(encoding: DeviceOutput(device))
                } else {
                    Console.out("\(id) replaced by \(device.id) (\(device.deviceID)); the old token no longer works.")
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a device at Kaspi and in the database.")
        @Argument(help: "The device (dev_… or its device id).") var id: String
        @OptionGroup var options: GatewayOptions
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let device = try await GatewayQRContext.run(options: options, connection: connection) { client, store in
                    try await KaspiQRSetup.deleteDevice(client: client, store: store, id: id)
                }
                if output.json { Console.json(["deleted": device.id]) } else { Console.out("Device \(device.id) (\(device.deviceID)) deleted.") }
            }
        }
    }
}

/// `kaspi gateway key`: a new merchant API key, long and random, and the hash a file keeps.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make a new merchant API key (256 random bits): the key on standard output, its SHA-256 for apiKeyHashes on standard error.")
    @OptionGroup var output: OutputOptions

    func run() throws {
        let key = GatewayConfiguration.makeAPIKey()
        let hash = GatewayConfiguration.hash(apiKey: key)
        if output.json {
            Console.json(["key": key, "sha256": hash])
        } else {
            Console.out(key)
            Console.err("SHA-256 (for apiKeyHashes, readOnlyKeyHashes or paymentKeyHashes in a configuration file): \(hash)")
        }
    }
}

/// `kaspi gateway secret`: a new events secret, in Standard Webhooks' `whsec_…` form.
struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract:
            "Make a new events secret (whsec_ and 256 random bits, Standard Webhooks' form) for KASPI_GATEWAY_EVENTS_SECRET and your events endpoint."
    )
    @OptionGroup var output: OutputOptions

    func run() throws {
        let secret = StandardWebhooks.makeSecret()
        if output.json { Console.json(["secret": secret]) } else { Console.out(secret) }
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the connection to Kaspi (health/ping), that the key or certificate is accepted, and the devices (Kaspi QR API).")
    @OptionGroup var options: GatewayOptions
    @OptionGroup var connection: QRAPIConnection
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let settings = try connection.settings()
            // The certificate's dates are read first: an expired one is said so even though
            // Kaspi then refuses the handshake.
            let certificate = try ClientCertificate.read(settings)
            let now = Date()
            if let certificate, certificate.needsRenewal(at: now) { Console.err("warning: \(certificate.summary(at: now))") }
            let devices = try await GatewayQRContext.run(options: options, connection: connection) { client, store in
                try await client.ping()
                return try await store.devices(provider: KaspiQRProvider.providerName)
            }
            let credential = settings.scheme == .r1 ? "the API key" : "the client certificate"
            if output.json {
                var fields: [String: (any Encodable)?] = [
                    "ok": true, "scheme": settings.scheme.rawValue, "host": "\(settings.host)", "devices": devices.count,
                ]
                if let certificate {
                    fields["certificateExpiresAt"] = ISO8601DateFormatter().string(from: certificate.notValidAfter)
                    fields["certificateDaysLeft"] = certificate.daysLeft(at: now)
                }
                Console.json(fields)
            } else {
                Console.out("Kaspi answers at \(settings.host) (\(settings.scheme)) and accepts \(credential).")
                if let certificate, !certificate.needsRenewal(at: now) { Console.out(certificate.summary(at: now)) }
                Console.out(
                    devices.isEmpty
                        ? "No device is registered yet: `kaspi gateway device register --trade-point N`." : "\(devices.count) device(s) registered.")
            }
        }
    }
}

/// A device as `--json` prints it: the token redacted.
struct DeviceOutput: Encodable {
    var id, deviceID: String
    var tradePointID: Int64
    @EncodedAsNull var organizationBin: String?
    var isDefault: Bool
    @EncodedAsNull var referencePrefix: String?
    var token: String

    init(_ d: ProviderDevice) {
        (id, deviceID, tradePointID, organizationBin, isDefault, referencePrefix, token) = (
            d.id, d.deviceID, d.tradePointID, d.organizationBin, d.isDefault, d.referencePrefix, d.redactedToken
        )
    }

    enum CodingKeys: String, CodingKey {
        case id
        case deviceID = "deviceId"
        case tradePointID = "tradePointId"
        case organizationBin
        case isDefault
        case referencePrefix
        case token
    }
}
