import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiSandbox
import NIOCore
import NIOHTTP1
import Synchronization

/// An HTTP client that shows redirects instead of following them (the browser's view).
let noRedirects = noRedirectClient

/// A sandbox running in-process on a free loopback port, with an SDK client for its test
/// trade point.
struct Harness: Sendable {
    let sandbox: Sandbox
    let baseURL: URL
    let tradePoint: SandboxTradePoint
    let client: KaspiClient
    let contract = try! ContractChecker.kaspiPay()

    var apiKey: APIKey { try! APIKey(tradePoint.apiKey) }

    /// Sends a raw request and returns status, headers and body.
    func raw(
        _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [String: String] = [:]
    ) async throws -> (status: Int, headers: [String: String], body: String) {
        var request = HTTPClientRequest(url: baseURL.absoluteString + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await noRedirects.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 4 << 20)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return (Int(response.status.code), fields, String(buffer: buffer))
    }

    /// A raw JSON POST signed like the guide's code, with or without the bearer header.
    func post(_ path: String, _ json: String, bearer: String? = nil) async throws -> (status: Int, headers: [String: String], body: String) {
        var headers = ["Content-Type": "application/json"]
        if let bearer { headers["Authorization"] = "Bearer \(bearer)" }
        return try await raw(.POST, path, body: json, headers: headers)
    }

    func sign(_ amount: Int, _ orderID: String, kind: Signature.Kind = .createOrder) -> String {
        Signature.compute(kind, amount: amount, orderID: orderID, apiKey: apiKey)
    }

    /// The checker's violations of a response body against the contract.
    func violations(_ body: String, path: String, method: String, status: Int) throws -> [String] {
        contract.violations(of: Array(body.utf8), against: try contract.responseSchema(path: path, method: method, status: status))
    }
}

func withSandbox<T: Sendable>(
    configure: (inout SandboxConfiguration) -> Void = { _ in },
    retry: RetryPolicy = RetryPolicy(maxAttempts: 4, initialDelay: .milliseconds(20), jitter: 0),
    _ body: @Sendable @escaping (Harness) async throws -> T
) async throws -> T {
    var configuration = SandboxConfiguration()
    configuration.port = 0
    configuration.tradePoints = [
        SandboxTradePoint(
            id: "TP-1", apiKey: "sandbox_test_key_1", returnURLPrefixes: ["https://shop.example/"], displayName: "Test Shop")
    ]
    configuration.webhookRetrySeconds = [0.05, 0.05, 0.05]
    configure(&configuration)
    let sandbox = try await Sandbox(configuration: configuration)
    let box = Mutex<T?>(nil)
    try await sandbox.application().test(.live) { testClient in
        let url = URL(string: "http://127.0.0.1:\(testClient.port!)")!
        let point = sandbox.configuration.tradePoints[0]
        let transport = AsyncHTTPClientTransport()
        let client = KaspiClient(
            configuration: KaspiConfiguration(
                environment: .custom(url), tradePointID: try TradePointID(point.id), apiKey: try APIKey(point.apiKey),
                requestTimeout: .seconds(30), retryPolicy: retry, rateLimit: nil),
            transport: transport)
        do {
            let value = try await body(Harness(sandbox: sandbox, baseURL: url, tradePoint: point, client: client))
            box.withLock { $0 = value }
            try await transport.shutdown()
        } catch {
            try await transport.shutdown()
            throw error
        }
    }
    return box.withLock { $0! }
}

/// A merchant's webhook endpoint: records every POST and answers from a script (200 once
/// the script runs out).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var body: [UInt8]
        var contentType: String?
    }

    private let state = Mutex<(received: [Received], script: [Int])>(([], []))

    init(answers: [Int] = []) { state.withLock { $0.script = answers } }

    var received: [Received] { state.withLock { $0.received } }

    func run<T: Sendable>(_ body: @Sendable @escaping (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/hooks/kaspi") { request, _ in
            let bytes = try await request.body.collect(upTo: 1 << 16)
            let status = self.state.withLock { state -> Int in
                state.received.append(Received(body: Array(bytes.readableBytesView), contentType: request.headers[.contentType]))
                return state.script.isEmpty ? 200 : state.script.removeFirst()
            }
            return Response(status: .init(code: status), body: .init(byteBuffer: ByteBuffer(string: #"{"received":true}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let box = Mutex<T?>(nil)
        try await app.test(.live) { client in
            let value = try await body("http://127.0.0.1:\(client.port!)/hooks/kaspi")
            box.withLock { $0 = value }
        }
        return box.withLock { $0! }
    }

    /// Waits (in real time) until `count` webhooks arrived.
    func waitFor(_ count: Int, seconds: Double = 30) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if received.count >= count { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return received.count >= count
    }
}

func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
