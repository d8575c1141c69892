import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiSandbox
import Logging
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// A gateway on the Kaspi QR API (one scheme) in front of the sandbox: r1 over HTTP, r2 and
/// r3 over TLS with the sandbox's client certificate (PEM for r2, PKCS#12 for r3). Gateway and
/// sandbox share the sandbox's movable clock, so deadlines pass when a test says so.
struct QRStack: Sendable {
    let gateway: Gateway
    let gatewayURL: String
    /// The admin listener: the dashboard and metrics.
    var adminURL: String { gateway.adminBase ?? "http://127.0.0.1:1" }
    let sandbox: Sandbox
    let sandboxURL: String
    let scheme: KaspiQRAPI.SchemeName
    let client: KaspiQRAPI.AnyClient
    let device: ProviderDevice
    let apiKey = "gw_test_key_123"

    func api(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> HTTPResult {
        try await http(method, gatewayURL + path, body: body, headers: ["Authorization": "Bearer \(apiKey)", "Content-Type": "application/json"])
    }

    func order(_ id: String) async throws -> GatewayOrder? { try await gateway.store.order(id: id) }

    /// The sandbox's purchase behind an order.
    func purchase(_ id: String) async throws -> SandboxQRPurchase? {
        guard let order = try await order(id), let paymentID = KaspiQRProvider.paymentID(of: order) else { return nil }
        return await sandbox.qrPurchases().first { $0.id == paymentID }
    }

    /// Moves sandbox (and gateway) time on, then waits until the order is in `state`.
    func advance(_ seconds: TimeInterval, until id: String, is state: OrderState) async throws -> Bool {
        await sandbox.advanceClock(by: seconds)
        for _ in 0..<400 {
            if try await order(id)?.state == state { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    /// Creates a checkout through the API; returns the order's id.
    func checkout(qr: Bool = false, amount: Int = 5000, reference: String? = nil) async throws -> (id: String, body: [String: Any]) {
        let reference = reference.map { #","merchantReference":"\#($0)""# } ?? ""
        let created = try await api(.POST, qr ? "/v1/qr-checkouts" : "/v1/checkouts", #"{"amount":\#(amount)\#(reference)}"#)
        guard created.status == 201, let id = created.json["id"] as? String else {
            throw QRStackError(message: "checkout failed: \(created.status) \(created.body)")
        }
        return (id, created.json)
    }
}

struct QRStackError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func withQRStack(
    _ backend: Backend, scheme: KaspiQRAPI.SchemeName, configure: @Sendable (inout GatewayConfiguration) -> Void = { _ in },
    sandbox configureSandbox: @Sendable (inout SandboxConfiguration) -> Void = { _ in },
    _ body: @Sendable @escaping (QRStack) async throws -> Void
) async throws {
    let handle = try await backend.open()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-qr-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let certificates = try SandboxCertificates.generate(in: directory, organizations: ["123456789012", "987654321098"], password: "gw-pass")
    var sandboxConfiguration = SandboxConfiguration()
    sandboxConfiguration.port = 0
    sandboxConfiguration.qrAPI.tlsPorts = [0]
    sandboxConfiguration.qrAPI.certificatesDirectory = directory
    configureSandbox(&sandboxConfiguration)
    let sandbox = try await Sandbox(configuration: sandboxConfiguration)
    let gatewayPort = FreePort.find()
    do {
        try await sandbox.application().test(.live) { sandboxClient in
            var tls: [Int] = []
            for _ in 0..<500 where tls.isEmpty {
                tls = sandbox.qrAPITLSPorts()
                try await Task.sleep(for: .milliseconds(10))
            }
            let sandboxURL = "http://127.0.0.1:\(sandboxClient.port!)"
            let tlsURL = "https://127.0.0.1:\(tls.first ?? 0)"
            var environment = ["KASPI_QR_SCHEME": scheme.rawValue, "KASPI_QR_CA_BUNDLE": certificates.caCertificate]
            switch scheme {
            case .r1:
                environment["KASPI_BASE_URL"] = sandboxURL
                environment["KASPI_QR_API_KEY"] = "test_0f8fad5b-d9cb-469f-a165-70867728950e"
            case .r2:
                environment["KASPI_BASE_URL"] = tlsURL
                environment["KASPI_QR_CERT"] = certificates.clientCertificate
                environment["KASPI_QR_KEY"] = certificates.clientKey
            case .r3:
                environment["KASPI_BASE_URL"] = tlsURL
                environment["KASPI_QR_PKCS12"] = certificates.clientPKCS12
                environment["KASPI_QR_PKCS12_PASSWORD"] = "gw-pass"
                environment["KASPI_QR_ORGANIZATION_BIN"] = "123456789012"
            }
            let settings = try KaspiQRAPI.Settings(environment: environment)
            let transport = try KaspiQRSetup.transport(settings)
            let (logger, _) = InMemoryLogHandler.logger(label: "kaspi-gateway")
            let client = try KaspiQRSetup.client(settings, transport: transport, logger: logger)
            let clock: @Sendable () -> Date = { sandbox.clock.now }
            let store = handle.store
            let provider = KaspiQRProvider(client: client, now: clock) { try await store.devices(provider: KaspiQRProvider.providerName) }
            var configuration = GatewayConfiguration()
            configuration.port = gatewayPort
            configuration.adminPort = 0
            configuration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "gw_test_key_123")]
            configuration.workerInterval = 0.05
            configuration.adminPassword = "admin-pass-123"
            configuration.createGracePeriod = 30
            configure(&configuration)
            try configuration.validate()
            let gateway = Gateway(configuration: configuration, store: store, provider: provider, logger: logger, now: clock)
            let device = try await KaspiQRSetup.registerDevice(client: client, store: store, tradePointID: 19, deviceID: "gateway-till")
            try await runGateway(gateway, port: gatewayPort, transport: transport) { url in
                try await body(
                    QRStack(
                        gateway: gateway, gatewayURL: url, sandbox: sandbox, sandboxURL: sandboxURL, scheme: scheme, client: client, device: device))
            }
        }
    } catch {
        try? await handle.close()
        throw error
    }
    try await handle.close()
}
