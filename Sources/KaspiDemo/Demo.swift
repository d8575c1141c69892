import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiGateway
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiSandbox
import KaspiSupport
import Logging
import ServiceLifecycle

/// `kaspi demo`: a sandbox, a gateway (SQLite in a local folder) and a demo shop in one
/// process, wired together, stopped cleanly on Ctrl-C.
public struct Demo: Sendable {
    /// The address the three servers listen on.
    public var host = "127.0.0.1"
    /// The sandbox's port.
    public var sandboxPort = 8181
    /// The gateway's port.
    public var gatewayPort = 8282
    /// The gateway's admin listener (the dashboard and metrics).
    public var adminPort = 8283
    /// The demo shop's port.
    public var shopPort = 8383
    /// Where the gateway's database lives.
    public var dataDirectory = ".kaspi-demo"
    /// Which API the gateway speaks: the guide's (nil), or the Kaspi QR API in a scheme.
    public var qrScheme: KaspiQRAPI.SchemeName? = nil
    /// The sandbox's TLS port for the Kaspi QR API (r2, r3), like Kaspi's test host's.
    public var qrTLSPort = 8545

    /// The defaults: loopback, ports 8181, 8282 (8283 for the dashboard) and 8383.
    public init() {}

    /// The URLs the demo serves.
    public struct URLs: Sendable {
        /// The demo shop.
        public var shop: String
        /// The gateway's base URL.
        public var gateway: String
        /// The sandbox's base URL.
        public var sandbox: String
        /// The gateway API key the shop uses.
        public var gatewayAPIKey: String
        /// The gateway's dashboard.
        public var admin: String
        /// The dashboard's password.
        public var adminPassword: String
        /// Whether the demo listens beyond loopback (its credentials are then made for the run).
        public var exposed: Bool
    }

    /// Random letters and digits, for credentials made for one run.
    static func randomText(_ count: Int) -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    /// Starts everything and runs until SIGINT or SIGTERM (or until `until` returns, for tests).
    ///
    /// - Parameters:
    ///   - ready: called once every server listens.
    ///   - until: when given, the demo stops after it returns instead of waiting for a signal.
    public func run(
        logger: Logger, ready: @escaping @Sendable (URLs) async -> Void, until: (@Sendable (URLs) async throws -> Void)? = nil
    ) async throws {
        let authority = URLHost.authority(host)
        guard let sandboxURL = URL(string: "http://\(authority):\(sandboxPort)"), sandboxURL.host != nil else {
            throw GatewayConfigurationError.invalid("--host", "must be a host name or an IP address (got \(host))")
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let gatewayBase = "http://\(authority):\(gatewayPort)"
        // Beyond loopback anyone on the network can reach the dashboard and the API: the
        // credentials are then made for this run rather than the fixed ones the docs show.
        var listening = GatewayConfiguration()
        listening.host = host
        let exposed = !listening.listensOnLoopback
        let apiKey = exposed ? "demo_" + Self.randomText(32) : "demo_shop_key"
        let adminPassword = exposed ? Self.randomText(20) : "kaspikit-demo"
        let kaspiKey = "demo_sandbox_key"

        var sandboxConfiguration = SandboxConfiguration()
        sandboxConfiguration.host = host
        sandboxConfiguration.port = sandboxPort
        sandboxConfiguration.webhookRetrySeconds = [2, 10, 30, 120]
        sandboxConfiguration.tradePoints = [
            SandboxTradePoint(
                id: "DEMO-TP", apiKey: kaspiKey, webhookURL: "\(gatewayBase)/webhooks/kaspi",
                returnURLPrefixes: ["\(gatewayBase)/pay/"], displayName: "KaspiKit demo shop")
        ]
        let certificates = SandboxCertificates.Paths(directory: (dataDirectory as NSString).appendingPathComponent("certs"))
        if let scheme = qrScheme {
            sandboxConfiguration.qrAPI.statusPollingInterval = 3
            if scheme != .r1 {
                // Certificates made on the fly, as Kaspi's cert.request hands them out.
                sandboxConfiguration.qrAPI.tlsPorts = [qrTLSPort]
                sandboxConfiguration.qrAPI.certificatesDirectory = certificates.directory
            }
        }
        let sandbox = try await Sandbox(configuration: sandboxConfiguration, logger: logger)

        var gatewayConfiguration = GatewayConfiguration()
        gatewayConfiguration.host = host
        gatewayConfiguration.port = gatewayPort
        // The dashboard and metrics on their own listener, beside the others.
        gatewayConfiguration.adminHost = host
        gatewayConfiguration.adminPort = adminPort
        gatewayConfiguration.publicURL = gatewayBase
        gatewayConfiguration.sqlitePath = (dataDirectory as NSString).appendingPathComponent("gateway.sqlite")
        gatewayConfiguration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: apiKey)]
        gatewayConfiguration.firstPollAfter = 3
        gatewayConfiguration.pollInterval = 2
        gatewayConfiguration.maxPollInterval = 10
        gatewayConfiguration.workerInterval = 0.5
        gatewayConfiguration.adminPassword = adminPassword
        let eventsSecret = StandardWebhooks.makeSecret()
        gatewayConfiguration.merchantWebhookURL = "http://\(authority):\(shopPort)/events"
        // The shop's result page is the one place its checkouts send payers back to.
        gatewayConfiguration.mobileReturnURLs = ["http://\(authority):\(shopPort)/result"]
        gatewayConfiguration.merchantWebhookSecret = eventsSecret
        try gatewayConfiguration.validate()
        let store = try await SQLiteGatewayStore.open(path: gatewayConfiguration.sqlitePath, logger: logger)
        let transport: AsyncHTTPClientTransport
        let provider: any PaymentProvider
        var qrClient: KaspiQRAPI.AnyClient? = nil
        if let scheme = qrScheme {
            var settings = KaspiQRAPI.Settings(scheme: scheme, host: .custom(sandboxURL))
            switch scheme {
            case .r1:
                settings.apiKey = try APIKey(SandboxQRAPIConfiguration.defaultOrganizations[0].apiKey)
            case .r2, .r3:
                guard let tlsURL = URL(string: "https://\(authority):\(qrTLSPort)") else {
                    throw GatewayConfigurationError.invalid("--qr-port", "must be a port number")
                }
                settings.host = .custom(tlsURL)
                settings.certificates = KaspiQRAPI.CertificateFiles(
                    identity: .pem(certificatePath: certificates.clientCertificate, keyPath: certificates.clientKey),
                    caBundlePath: certificates.caCertificate)
                settings.organizationBin = try KaspiQRAPI.OrganizationBIN(SandboxQRAPIConfiguration.defaultOrganizations[0].bin)
            }
            let qr = try GatewayProviders.kaspiQR(settings, store: store, logger: logger)
            (provider, transport) = (qr.provider, qr.transport)
            qrClient = qr.client
        } else {
            let kaspi = KaspiConfiguration(
                environment: .custom(sandboxURL), tradePointID: "DEMO-TP", apiKey: try APIKey(kaspiKey))
            (provider, transport) = GatewayProviders.guide(kaspi, logger: logger)
        }
        let (gateway, gatewayApp) = try buildGatewayApplication(
            configuration: gatewayConfiguration, store: store, provider: provider, logger: logger)
        let shop = try DemoShop(
            gatewayURL: gatewayBase, apiKey: apiKey, eventsSecret: eventsSecret, qrProfile: qrScheme != nil,
            remoteInvoices: qrScheme == .r3, sandboxURL: "http://\(authority):\(sandboxPort)", shopURL: "http://\(authority):\(shopPort)")
        let shopApp = Application(
            router: shop.router(), configuration: .init(address: .hostname(host, port: shopPort), serverName: "kaspi-demo-shop"), logger: logger)

        let urls = URLs(
            shop: "http://\(host):\(shopPort)", gateway: gatewayBase, sandbox: "http://\(host):\(sandboxPort)", gatewayAPIKey: apiKey,
            admin: "http://\(authority):\(adminPort)/admin", adminPassword: adminPassword, exposed: exposed)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: try sandbox.application()), .init(service: gatewayApp), .init(service: shopApp)],
                gracefulShutdownSignals: until == nil ? [.sigint, .sigterm] : [], logger: logger))
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await Self.waitUntilUp([urls.sandbox + "/health", urls.gateway + "/health", urls.shop + "/"], client: shop)
                if let qrClient {
                    // The gateway's device on the sandbox's first trade point (idempotent).
                    _ = try await KaspiQRSetup.registerDevice(client: qrClient, store: store, tradePointID: 19, deviceID: "kaspikit-demo")
                }
                await ready(urls)
                if let until {
                    do { try await until(urls) } catch {
                        await group.triggerGracefulShutdown()
                        throw error
                    }
                    await group.triggerGracefulShutdown()
                }
                try await tasks.waitForAll()
            }
        } catch {
            await Self.close(gateway: gateway, shop: shop, transport: transport, store: store)
            throw error
        }
        await Self.close(gateway: gateway, shop: shop, transport: transport, store: store)
    }

    static func close(gateway: Gateway, shop: DemoShop, transport: AsyncHTTPClientTransport, store: SQLiteGatewayStore) async {
        await gateway.shutdown()
        await shop.shutdown()
        try? await transport.shutdown()
        try? await store.close()
    }

    static func waitUntilUp(_ urls: [String], client: DemoShop) async throws {
        for url in urls {
            var up = false
            for _ in 0..<500 where !up {
                var request = HTTPClientRequestFactory.get(url)
                request.method = .GET
                up = (try? await client.http.execute(request, timeout: .seconds(2)).status.code) == 200
                if !up { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard up else { throw DemoError.notUp(url) }
        }
    }
}

enum HTTPClientRequestFactory {
    static func get(_ url: String) -> AsyncHTTPClient.HTTPClientRequest { AsyncHTTPClient.HTTPClientRequest(url: url) }
}

/// Why the demo could not start.
public enum DemoError: Error, CustomStringConvertible {
    case notUp(String)
    public var description: String {
        switch self {
        case .notUp(let url):
            "DEMO_NOT_UP: \(url) did not come up; is another program using its port? Try --sandbox-port, --gateway-port, --shop-port."
        }
    }
}
