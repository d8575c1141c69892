import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiPay
import KaspiSupport
import KaspiWeb
import Logging
import NIOCore
import QRCodeEncoder
import ServiceLifecycle
import Synchronization

/// A stateful local emulator of the Kaspi Pay API: orders, QR payments, refunds, a payment
/// page, signed webhooks with retries, fault injection, a controllable clock and test
/// helpers under `/sandbox/`.
///
/// ```swift
/// let sandbox = try await Sandbox(configuration: configuration, logger: logger)
/// let app = sandbox.application()      // a Hummingbird application; run it or test it
/// ```
public final class Sandbox: Sendable {
    /// The configuration in force (trade points included).
    public let configuration: SandboxConfiguration
    /// Sandbox time.
    public let clock: SandboxClock
    let state: SandboxState
    let logger: Logger
    let httpClient: HTTPClient
    let persistence: (any SandboxPersistence)?
    /// The port the server is bound to, once it runs (the configured one may be 0).
    let boundPort = Atomic<Int>(0)
    /// The Kaspi QR API's state.
    let qrState: QRAPIState
    /// The CA that issued the r2/r3 client certificates, when TLS is configured.
    let certificateAuthority: SandboxCertificateAuthority?
    /// The QR API's TLS ports once bound, by their index in the configuration.
    let qrTLSBoundPorts = Mutex<[Int: Int]>([:])
    /// The payment pages' templates and stylesheet.
    let pages: PageLibrary

    /// Creates a sandbox. With no trade point configured, one test trade point is added.
    ///
    /// - Throws: ``SandboxConfigurationError`` for an invalid configuration; an error when the
    ///   data file cannot be opened.
    public init(configuration: SandboxConfiguration, logger: Logger = Logger(label: "kaspi-sandbox")) async throws {
        var configuration = configuration
        if configuration.tradePoints.isEmpty { configuration.tradePoints = [SandboxConfiguration.defaultTradePoint()] }
        try configuration.validate()
        self.configuration = configuration
        self.pages = try PageLibrary(
            bundle: "KaspiKit_KaspiSandbox.resources", folder: "Templates",
            sourceFolder: #filePath.replacingOccurrences(of: "/Shared/Sandbox.swift", with: "/Templates"),
            required: ["layout", "message", "payment", "qr-payment", "index", "webhooks"])
        self.clock = SandboxClock()
        self.logger = logger
        var persistence: (any SandboxPersistence)? = nil
        if let path = configuration.dataPath {
            persistence = try await SQLiteSandboxPersistence.open(path: path, logger: logger)
        }
        self.persistence = persistence
        let archive: SandboxOrderArchive
        let qrArchive: QRPurchaseArchive
        do {
            archive = try persistence.map { try SandboxOrderArchive.reading(path: $0.path) } ?? SandboxOrderArchive.temporary()
            qrArchive = try persistence.map { try QRPurchaseArchive.reading(path: $0.path) } ?? QRPurchaseArchive.temporary()
        } catch {
            try? await persistence?.close()
            throw error
        }
        self.state = SandboxState(
            configuration: configuration, clock: clock, persistence: persistence, archive: archive,
            residentLimit: configuration.memoryOrderLimit, logger: logger)
        try await state.restore()
        self.qrState = QRAPIState(
            configuration: configuration.qrAPI, clock: clock, persistence: persistence, archive: qrArchive,
            residentLimit: configuration.memoryOrderLimit, logger: logger)
        try await qrState.restore()
        if let directory = configuration.qrAPI.certificatesDirectory {
            certificateAuthority = try SandboxCertificateAuthority(
                directory: directory, organizations: configuration.qrAPI.organizations.map(\.bin))
        } else {
            certificateAuthority = nil
        }
        var client = HTTPClient.Configuration()
        client.redirectConfiguration = .disallow
        client.timeout = .init(connect: .seconds(5), read: .seconds(Int64(configuration.webhookTimeoutSeconds.rounded(.up))))
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
    }

    /// The Hummingbird application: the API, the payment page, the helpers, and the
    /// webhook dispatcher as a service.
    ///
    /// - Parameters:
    ///   - onServerRunning: called with the bound port once the server listens.
    ///   - onQRTLSServerRunning: called with each Kaspi QR API TLS port once it listens.
    /// - Throws: when the QR API's TLS ports cannot be set up (unreadable certificates).
    public func application(
        onServerRunning: (@Sendable (Int) async -> Void)? = nil, onQRTLSServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) throws -> some ApplicationProtocol {
        var services: [any Service] = [WebhookDispatcher(sandbox: self)]
        if let authority = certificateAuthority {
            for (index, port) in configuration.qrAPI.tlsPorts.enumerated() {
                services.append(try qrTLSApplication(port: port, index: index, authority: authority, onRunning: onQRTLSServerRunning))
            }
        }
        return Application(
            router: router(),
            // Connections that stop sending (slowloris) are closed rather than held forever.
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaspi-sandbox"),
            services: services,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                self.boundPort.store(port, ordering: .relaxed)
                await onServerRunning?(port)
            },
            logger: logger)
    }

    /// How many requests the rate limit refused (429) since the start.
    public func rateLimitedCount() async -> Int { await state.rateLimited }

    /// Stops background work and closes the data file.
    func shutdown() async {
        try? await httpClient.shutdown()
        try? await state.waitForWrites()
        try? await qrState.waitForWrites()
        try? await persistence?.close()
    }

    // MARK: Test helpers callable in-process

    /// Settles an order as the payer would: approved, declined or cancelled.
    ///
    /// - Returns: the order after the change, or nil when there is no such order.
    @discardableResult
    public func trigger(_ status: PaymentStatus, orderID: String, tradePointID: String) async throws -> SandboxOrder? {
        let order = await state.settle(tradePoint: tradePointID, orderID: orderID, to: status, via: "helper")
        try await state.waitForWrites()
        return order
    }

    /// Every order, oldest first.
    public func orders(tradePointID: String? = nil) async -> [SandboxOrder] {
        await state.allOrders(tradePoint: tradePointID)
    }

    /// Every webhook and its attempts, oldest first.
    public func webhooks(tradePointID: String? = nil, orderID: String? = nil) async -> [WebhookDelivery] {
        await state.allDeliveries(tradePoint: tradePointID, orderID: orderID)
    }

    /// Sets the faults injected for a trade point.
    public func setFaults(_ faults: SandboxFaults, tradePointID: String) async {
        await state.setFaults(faults, for: tradePointID)
    }

    /// Moves sandbox time forward: QR codes expire and due webhook retries fire.
    public func advanceClock(by seconds: TimeInterval) async {
        clock.advance(by: seconds)
        await state.sweep()
        await state.saveClock()
    }
}

extension Sandbox {
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in Self.json(.ok, encoding: ["status": "ok"]) }
        router.post("/api/v1/orders/create") { request, context in await self.createOrder(request, kind: .redirect) }
        router.post("/api/v1/qr/create") { request, context in await self.createOrder(request, kind: .qr) }
        router.get("/api/v1/orders/:orderId/status") { request, context in
            await self.orderStatus(request, orderID: try context.parameters.require("orderId"))
        }
        router.get("/api/v1/qr/:token/status") { request, context in
            await self.qrStatus(request, token: try context.parameters.require("token"))
        }
        router.post("/api/v1/orders/:orderId/refund") { request, context in
            await self.refund(request, orderID: try context.parameters.require("orderId"))
        }
        addPaymentPages(to: router)
        pages.addAssetRoutes(to: router)
        addHelpers(to: router)
        // The Kaspi QR API over plain HTTP: r1 works here; r2 and r3 answer -10000 (no
        // client certificate without TLS).
        addQRAPI(to: router) { _, _ in QRAPICaller(certificate: nil, remoteAddress: nil) }
        // Last, once every route is known: a known path asked with another method is a 405.
        router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes.map { ($0.method, $0.path.description) }))
        return router
    }
}
