import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiPay
import QRCodeEncoder
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import KaspiSupport

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

    /// Creates a sandbox. With no trade point configured, one test trade point is added.
    ///
    /// - Throws: ``SandboxConfigurationError`` for an invalid configuration; an error when the
    ///   data file cannot be opened.
    public init(configuration: SandboxConfiguration, logger: Logger = Logger(label: "kaspi-sandbox")) async throws {
        var configuration = configuration
        if configuration.tradePoints.isEmpty { configuration.tradePoints = [SandboxConfiguration.defaultTradePoint()] }
        try configuration.validate()
        self.configuration = configuration
        self.clock = SandboxClock()
        self.logger = logger
        var persistence: (any SandboxPersistence)? = nil
        if let path = configuration.dataPath {
            persistence = try await SQLiteSandboxPersistence.open(path: path, logger: logger)
        }
        self.persistence = persistence
        self.state = SandboxState(configuration: configuration, clock: clock, persistence: persistence, logger: logger)
        try await state.restore()
        self.qrState = QRAPIState(configuration: configuration.qrAPI, clock: clock, persistence: persistence, logger: logger)
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

    /// Settles an order as the payer would: `APPROVED`, `DECLINED` or `CANCELLED`.
    ///
    /// - Returns: the order after the change, or nil when there is no such order.
    @discardableResult
    public func trigger(_ status: String, orderId: String, tradePointId: String) async throws -> SandboxOrder? {
        let order = await state.settle(tradePoint: tradePointId, orderId: orderId, to: status, via: "helper")
        try await state.waitForWrites()
        return order
    }

    /// Every order, oldest first.
    public func orders(tradePointId: String? = nil) async -> [SandboxOrder] {
        await state.allOrders(tradePoint: tradePointId)
    }

    /// Every webhook and its attempts, oldest first.
    public func webhooks(tradePointId: String? = nil, orderId: String? = nil) async -> [WebhookDelivery] {
        await state.allDeliveries(tradePoint: tradePointId, orderId: orderId)
    }

    /// Sets the faults injected for a trade point.
    public func setFaults(_ faults: SandboxFaults, tradePointId: String) async {
        await state.setFaults(faults, for: tradePointId)
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
        router.get("/health") { _, _ in Self.json(.ok, #"{"status":"ok"}"#) }
        router.post("/api/v1/orders/create") { request, context in await self.createOrder(request, kind: .redirect) }
        router.post("/api/v1/qr/create") { request, context in await self.createOrder(request, kind: .qr) }
        router.get("/api/v1/orders/:orderId/status") { request, context in
            await self.orderStatus(request, orderId: context.parameters.get("orderId") ?? "")
        }
        router.get("/api/v1/qr/:token/status") { request, context in
            await self.qrStatus(request, token: context.parameters.get("token") ?? "")
        }
        router.post("/api/v1/orders/:orderId/refund") { request, context in
            await self.refund(request, orderId: context.parameters.get("orderId") ?? "")
        }
        addPaymentPage(to: router)
        addHelpers(to: router)
        // The Kaspi QR API over plain HTTP: r1 works here; r2 and r3 answer -10000 (no
        // client certificate without TLS).
        addQRAPI(to: router) { _, _ in QRAPICaller(certificate: nil, remoteAddress: nil) }
        return router
    }

    // MARK: The API

    private func api(_ body: () async throws(SandboxAPIError) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            var headers = HTTPFields()
            if let retryAfter = error.retryAfter { headers[.retryAfter] = "\(retryAfter)" }
            return Self.json(
                .init(code: error.status),
                #"{"code":"\#(error.code)","message":\#(JSONText.string(error.message))}"#, headers: headers)
        }
    }

    private func readJSONObject(_ request: Request) async throws(SandboxAPIError) -> [String: JSONValue] {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: 64 * 1024) } catch {
            throw .invalidRequest("The body is larger than 64 KiB.")
        }
        guard case .object(let object)? = JSONValue.parse(buffer.readableBytesView) else {
            throw .invalidRequest("The body must be a JSON object.")
        }
        return object
    }

    /// Rate limit, then injected faults, for a request of a known trade point.
    private func admit(_ tradePoint: String) async throws(SandboxAPIError) {
        if let wait = await state.takeRateLimitSlot(tradePoint) {
            throw SandboxAPIError(
                code: "RATE_LIMITED", status: 429,
                message: "Over \(configuration.rateLimitPerMinute ?? 0) requests a minute for this trade point; retry after \(wait) s.",
                retryAfter: wait)
        }
        let (latency, outcome) = await state.injectedAPIFault(tradePoint)
        if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
        switch outcome {
        case .none: break
        case .fail:
            throw SandboxAPIError(code: "SANDBOX_INJECTED_FAILURE", status: 503, message: "Injected failure (sandbox fault injection).")
        case .timeout(let seconds):
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            throw SandboxAPIError(code: "SANDBOX_INJECTED_TIMEOUT", status: 504, message: "Injected timeout (sandbox fault injection).")
        }
    }

    private func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return "" }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    /// The payment page's absolute URL: under `publicUrl` when configured, else under the
    /// address the server is bound to (never a request's `Host` header, which the caller
    /// chooses).
    func paymentURL(token: String) -> String {
        var base: String
        if let publicURL = configuration.publicURL {
            base = publicURL
        } else {
            let port = boundPort.load(ordering: .relaxed)
            let host = ["0.0.0.0", "::", ""].contains(configuration.host) ? "127.0.0.1" : configuration.host
            base = "http://\(URLHost.authority(host)):\(port == 0 ? configuration.port : port)"
        }
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/pay/\(token)"
    }

    private func createOrder(_ request: Request, kind: SandboxOrder.Kind) async -> Response {
        await api { () throws(SandboxAPIError) in
            let body = try await readJSONObject(request)
            let fields = try CreateFields(body, kind: kind)
            guard let point = await state.tradePoint(id: fields.tradePointId) else {
                throw SandboxAPIError(code: "TRADE_POINT_NOT_FOUND", status: 404, message: "No trade point \(fields.tradePointId).")
            }
            try await admit(point.id)
            guard let key = try? APIKey(point.apiKey), Signature.isValid(fields.signature, kind: kind == .qr ? .createQR : .createOrder, amount: fields.amount, orderId: fields.orderId, apiKey: key)
            else {
                throw SandboxAPIError(code: "INVALID_SIGNATURE", status: 400, message: "The signature must be sha256(amount + orderId + apiKey) in lowercase hex.")
            }
            if let bearer = bearer(request), !Signature.constantTimeEquals(bearer, point.apiKey) { throw .unauthorized }
            guard fields.amount >= 100 else {
                throw SandboxAPIError(code: "AMOUNT_TOO_SMALL", status: 400, message: "The minimum is 100 tenge.")
            }
            for (name, url) in [("returnUrl", fields.returnUrl), ("failUrl", fields.failUrl)] {
                guard let url else { continue }
                if !point.returnURLPrefixes.isEmpty, !point.returnURLPrefixes.contains(where: { url.hasPrefix($0) }) {
                    throw SandboxAPIError(
                        code: "INVALID_RETURN_URL", status: 400,
                        message: "\(name) does not start with a prefix registered for this trade point.")
                }
            }
            let order = try await state.create(
                tradePoint: point.id, orderId: fields.orderId, amount: fields.amount, description: fields.description,
                returnUrl: fields.returnUrl, failUrl: fields.failUrl, kind: kind)
            do { try await state.waitForWrites() } catch {
                throw SandboxAPIError(code: "SANDBOX_STORAGE_ERROR", status: 500, message: "Could not store the order.")
            }
            if await state.takeLostResponse(point.id) { throw Self.lostResponse }
            let url = paymentURL(token: order.paymentToken)
            if kind == .qr {
                let png = (try? QRCode(encoding: url).png(scale: 4)) ?? []
                return Self.json(.ok, #"{"qrCode":"\#(Data(png).base64EncodedString())","qrToken":"\#(order.qrToken ?? "")"}"#)
            }
            return Self.json(.ok, #"{"orderId":\#(JSONText.string(order.orderId)),"paymentUrl":\#(JSONText.string(url)),"status":"\#(order.status)"}"#)
        }
    }

    private func authenticatedTradePoint(_ request: Request) async throws(SandboxAPIError) -> SandboxTradePoint {
        guard let key = bearer(request), !key.isEmpty, let point = await state.tradePoint(apiKey: key) else { throw .unauthorized }
        return point
    }

    private func orderStatus(_ request: Request, orderId: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let point = try await authenticatedTradePoint(request)
            try await admit(point.id)
            guard let order = await state.order(tradePoint: point.id, orderId: orderId) else {
                throw .notFound("No order \(orderId) for this trade point.")
            }
            try? await state.waitForWrites()
            var fields = [
                #""status":"\#(order.status)""#, #""orderId":\#(JSONText.string(order.orderId))"#, #""amount":\#(order.amount)"#,
                #""refundedAmount":\#(order.refundedAmount)"#,
                #""paymentUrl":\#(JSONText.string(paymentURL(token: order.paymentToken)))"#,
            ]
            if let transaction = order.transactionId { fields.append(#""transactionId":\#(JSONText.string(transaction))"#) }
            if let token = order.qrToken {
                fields.append(#""qrToken":"\#(token)""#)
                let png = (try? QRCode(encoding: paymentURL(token: order.paymentToken)).png(scale: 4)) ?? []
                fields.append(#""qrCode":"\#(Data(png).base64EncodedString())""#)
            }
            return Self.json(.ok, "{" + fields.joined(separator: ",") + "}")
        }
    }

    private func qrStatus(_ request: Request, token: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let point = try await authenticatedTradePoint(request)
            try await admit(point.id)
            guard let order = await state.order(qrToken: token, tradePoint: point.id) else {
                throw .notFound("No QR payment \(token) for this trade point.")
            }
            try? await state.waitForWrites()
            return Self.json(.ok, #"{"status":"\#(order.status)"}"#)
        }
    }

    private func refund(_ request: Request, orderId: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let body = try await readJSONObject(request)
            guard case .integer(let amount64)? = body["amount"], amount64 >= 1, amount64 <= Int64(Int32.max) else {
                throw .invalidRequest("amount must be a positive integer number of tenge.")
            }
            guard case .string(let signature)? = body["signature"] else { throw .invalidRequest("signature must be a string.") }
            var transactionId: String? = nil
            switch body["transactionId"] {
            case nil, .null?: break
            case .string(let text)? where !text.isEmpty && text.count <= 128: transactionId = text
            default: throw .invalidRequest("transactionId must be a string of 1 to 128 characters.")
            }
            let amount = Int(amount64)
            // The trade point: from the bearer key, else the one whose key signed this order's refund.
            var candidates: [SandboxTradePoint] = []
            if let key = bearer(request), !key.isEmpty {
                guard let point = await state.tradePoint(apiKey: key) else { throw .unauthorized }
                candidates = [point]
            } else {
                for id in await state.tradePoints(havingOrder: orderId) {
                    if let point = await state.tradePoint(id: id) { candidates.append(point) }
                }
            }
            let owners = await state.tradePoints(havingOrder: orderId)
            candidates = candidates.filter { owners.contains($0.id) }
            guard !candidates.isEmpty else { throw .notFound("No order \(orderId).") }
            guard let point = candidates.first(where: { point in
                guard let key = try? APIKey(point.apiKey) else { return false }
                return Signature.isValid(signature, kind: .refund, amount: amount, orderId: orderId, apiKey: key)
            }) else {
                throw SandboxAPIError(code: "INVALID_SIGNATURE", status: 400, message: "The signature must be sha256(amount + orderId + apiKey) in lowercase hex.")
            }
            try await admit(point.id)
            let (order, refund) = try await state.refund(tradePoint: point.id, orderId: orderId, amount: amount, transactionId: transactionId)
            do { try await state.waitForWrites() } catch {
                throw SandboxAPIError(code: "SANDBOX_STORAGE_ERROR", status: 500, message: "Could not store the refund.")
            }
            if await state.takeLostResponse(point.id) { throw Self.lostResponse }
            return Self.json(
                .ok,
                #"{"orderId":\#(JSONText.string(order.orderId)),"refundId":"\#(refund.refundId)","amount":\#(refund.amount),"refundedAmount":\#(order.refundedAmount)}"#)
        }
    }

    static let lostResponse = SandboxAPIError(
        code: "SANDBOX_LOST_RESPONSE", status: 502, message: "Injected lost response: the request took effect (sandbox fault injection).")

    static func json(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ status: HTTPResponse.Status, encoding value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return json(status, String(decoding: data, as: UTF8.self))
    }
}

/// The validated fields of a create request (order or QR).
struct CreateFields {
    var amount: Int
    var orderId: String
    var tradePointId: String
    var signature: String
    var returnUrl: String?
    var failUrl: String?
    var description: String?

    init(_ body: [String: JSONValue], kind: SandboxOrder.Kind) throws(SandboxAPIError) {
        guard case .integer(let amount)? = body["amount"], abs(amount) <= Int64(Int32.max) else {
            throw .invalidRequest("amount must be an integer number of tenge.")
        }
        guard case .string(let orderId)? = body["orderId"] else { throw .invalidRequest("orderId must be a string.") }
        guard (try? OrderID(orderId)) != nil else {
            throw .invalidRequest("orderId must be 1 to 64 characters of A-Z a-z 0-9 _ . : -.")
        }
        guard case .string(let tradePointId)? = body["tradePointId"], !tradePointId.isEmpty, tradePointId.count <= 64 else {
            throw .invalidRequest("tradePointId must be a string of 1 to 64 characters.")
        }
        guard case .string(let signature)? = body["signature"] else { throw .invalidRequest("signature must be a string.") }
        self.amount = Int(amount)
        self.orderId = orderId
        self.tradePointId = tradePointId
        self.signature = signature
        if kind == .redirect {
            for name in ["returnUrl", "failUrl"] {
                guard case .string(let url)? = body[name] else { throw .invalidRequest("\(name) must be a string.") }
                guard (try? KaspiEnvironment.custom(parsing: url)) != nil, url.utf8.count <= 2048 else {
                    throw .invalidRequest("\(name) must be an absolute http(s) URL of at most 2048 bytes.")
                }
                if name == "returnUrl" { returnUrl = url } else { failUrl = url }
            }
            switch body["description"] {
            case nil, .null?: break
            case .string(let text)? where text.count <= 256: description = text
            default: throw .invalidRequest("description must be a string of at most 256 characters.")
            }
        }
    }
}
