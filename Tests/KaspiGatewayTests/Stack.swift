import AsyncHTTPClient
import Foundation
import HTTPTypes
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
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// The browser's view: redirects shown, not followed.
let browser = noRedirectClient

struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

/// A Prometheus series' value in a `/metrics` text, e.g. `metric(text, #"x_total{a="b"}"#)`.
func metric(_ text: String, _ series: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
}

func http(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [String: String] = [:]) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await browser.execute(request, timeout: .seconds(30))
    let buffer = try await response.body.collect(upTo: 4 << 20)
    var fields: [String: String] = [:]
    for header in response.headers { fields[header.name.lowercased()] = header.value }
    return HTTPResult(status: Int(response.status.code), headers: fields, body: String(buffer: buffer))
}

/// The merchant's own systems: receives the gateway's events.
final class EventReceiver: Sendable {
    struct Event: Sendable {
        var id: String
        var timestamp: String
        var signature: String
        var body: String
        var type: String { ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["type"] as? String ?? "" }
    }
    private let state = Mutex<(events: [Event], answers: [Int])>(([], []))
    /// How long each answer takes (a slow receiver).
    let delay: Duration
    init(answers: [Int] = [], delay: Duration = .zero) {
        self.delay = delay
        state.withLock { $0.answers = answers }
    }
    var events: [Event] { state.withLock { $0.events } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/events") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            let event = Event(
                id: request.headers[HTTPField.Name("webhook-id")!] ?? "", timestamp: request.headers[HTTPField.Name("webhook-timestamp")!] ?? "",
                signature: request.headers[HTTPField.Name("webhook-signature")!] ?? "", body: String(buffer: body))
            let status = self.state.withLock { state -> Int in
                state.events.append(event)
                return state.answers.isEmpty ? 204 : state.answers.removeFirst()
            }
            return Response(status: .init(code: status))
        }
        return router
    }
}

/// A sandbox, a gateway in front of it and the merchant's event receiver, all in-process on
/// loopback, with the gateway's store on the given database.
struct Stack: Sendable {
    let gateway: Gateway
    let gatewayURL: String
    /// The admin listener: the dashboard and metrics.
    var adminURL: String { gateway.adminBase ?? "http://127.0.0.1:1" }
    let sandbox: Sandbox
    let sandboxURL: String
    let merchant: EventReceiver
    let apiKey = "gw_test_key_123"
    let webhookSecret: String
    /// Everything the gateway and its SDK client logged.
    let logs: InMemoryLogHandler.Store

    func api(
        _ method: HTTPMethod, _ path: String, _ body: String? = nil, idempotencyKey: String? = nil, key: String? = nil
    ) async throws -> HTTPResult {
        var headers = ["Authorization": "Bearer \(key ?? apiKey)", "Content-Type": "application/json"]
        if let idempotencyKey { headers["Idempotency-Key"] = idempotencyKey }
        return try await http(method, gatewayURL + path, body: body, headers: headers)
    }

    func order(_ id: String) async throws -> GatewayOrder? { try await gateway.store.order(id: id) }

    /// Waits (in real time) until the order reaches `state`.
    func waitFor(_ id: String, _ state: OrderState, seconds: Double = 30) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await order(id)?.state == state { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await order(id)?.state == state
    }

    /// Pays (or declines) on the sandbox's page as a payer would: the form POST.
    func payOnPage(_ paymentURL: String, action: String = "pay") async throws -> HTTPResult {
        try await http(.POST, paymentURL, body: "action=\(action)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
    }
}

func withStack(
    _ backend: Backend, faults: SandboxFaults? = nil, merchantAnswers: [Int] = [], merchantDelay: Duration = .zero,
    configure: @Sendable (inout GatewayConfiguration) -> Void = { _ in },
    sandbox configureSandbox: @Sendable (inout SandboxConfiguration) -> Void = { _ in },
    limiter: @Sendable (any GatewayStore) -> (any RequestRateLimiter)? = { _ in nil },
    _ body: @Sendable @escaping (Stack) async throws -> Void
) async throws {
    let handle = try await backend.open()
    let gatewayPort = FreePort.find()
    var sandboxConfiguration = SandboxConfiguration()
    sandboxConfiguration.port = 0
    sandboxConfiguration.webhookRetrySeconds = [0.1, 0.1, 0.1]
    sandboxConfiguration.tradePoints = [
        SandboxTradePoint(
            id: "TP-GW", apiKey: "sandbox_gateway_key", webhookURL: "http://127.0.0.1:\(gatewayPort)/webhooks/kaspi",
            returnURLPrefixes: ["http://127.0.0.1:\(gatewayPort)/pay/"], displayName: "Gateway Shop", faults: faults)
    ]
    configureSandbox(&sandboxConfiguration)
    let sandbox = try await Sandbox(configuration: sandboxConfiguration)
    let merchant = EventReceiver(answers: merchantAnswers, delay: merchantDelay)
    let merchantApp = Application(router: merchant.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    do {
        try await merchantApp.test(.live) { merchantClient in
            try await sandbox.application().test(.live) { sandboxClient in
                let sandboxURL = "http://127.0.0.1:\(sandboxClient.port!)"
                var configuration = GatewayConfiguration()
                configuration.port = gatewayPort
                configuration.adminPort = 0
                configuration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "gw_test_key_123")]
                configuration.merchantWebhookURL = "http://127.0.0.1:\(merchantClient.port!)/events"
                let secret = StandardWebhooks.makeSecret()
                configuration.merchantWebhookSecret = secret
                configuration.workerInterval = 0.05
                configuration.firstPollAfter = 30
                configuration.pollInterval = 0.1
                configuration.eventRetrySeconds = [0.1, 0.1, 0.1]
                configuration.adminPassword = "admin-pass-123"
                configuration.mobileReturnURLs = ["yourapp://", "kaspikit-test://"]
                configure(&configuration)
                try configuration.validate()
                let kaspi = KaspiConfiguration(
                    environment: .custom(URL(string: sandboxURL)!), tradePointID: "TP-GW", apiKey: try APIKey("sandbox_gateway_key"),
                    requestTimeout: .seconds(30), retryPolicy: RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(20), jitter: 0))
                let transport = AsyncHTTPClientTransport()
                let (logger, logs) = InMemoryLogHandler.logger(label: "kaspi-gateway")
                let provider = KaspiPayProvider(
                    client: KaspiClient(configuration: kaspi, transport: transport, rateLimiter: limiter(handle.store), logger: logger))
                let gateway = Gateway(configuration: configuration, store: handle.store, provider: provider, logger: logger)
                try await runGateway(gateway, port: gatewayPort, transport: transport) { url in
                    try await body(
                        Stack(
                            gateway: gateway, gatewayURL: url, sandbox: sandbox, sandboxURL: sandboxURL, merchant: merchant, webhookSecret: secret,
                            logs: logs))
                }
            }
        }
        try await handle.close()
    } catch {
        try? await handle.close()
        throw error
    }
}

/// Runs a test's gateway as a service on `port` (the one its sandbox was told, so not the test
/// framework's own), waits until it answers, runs `body` with its URL, then shuts it down and
/// releases its HTTP clients, whether `body` succeeded or threw. Both stacks (the guide's and
/// the Kaspi QR API's) run their gateway through it.
func runGateway(
    _ gateway: Gateway, port: Int, transport: AsyncHTTPClientTransport, _ body: @Sendable (String) async throws -> Void
) async throws {
    do {
        try await gateway.prepareAdmin()
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [try gateway.application()], gracefulShutdownSignals: [], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            let url = "http://127.0.0.1:\(port)"
            var ready = false
            for _ in 0..<400 where !ready {
                ready = (try? await http(.GET, url + "/health").status) == 200
                if !ready { try await Task.sleep(for: .milliseconds(10)) }
            }
            _ = await gateway.waitForAdminListener()
            do {
                try await body(url)
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                throw error
            }
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    } catch {
        await gateway.shutdown()
        try? await transport.shutdown()
        throw error
    }
    await gateway.shutdown()
    try await transport.shutdown()
}
