import Foundation
import HTTPTypes
import Logging

/// A typed, async client for the Kaspi Pay API of one trade point.
///
/// ```swift
/// let client = KaspiClient(configuration: try KaspiConfiguration(), transport: transport)
/// let order = try await client.orders.create(NewOrder(amount: 5000, orderId: "ORDER-1",
///     returnURL: returnURL, failURL: failURL))
/// ```
///
/// Calls are grouped by resource: ``orders``, ``qr`` and ``refunds``. Every request goes
/// through one ``RateLimiter``, is retried only where that is safe (see ``RetryPolicy``), and
/// fails with a ``KaspiError``. Nothing the client logs contains the API key or a body.
public struct KaspiClient: Sendable {
    /// Orders: create, status, and waiting for an outcome.
    public let orders: Orders
    /// QR payments: create, status, and waiting for an outcome.
    public let qr: QR
    /// Refunds, full and partial.
    public let refunds: Refunds

    let executor: RequestExecutor

    /// The configuration the client was created with.
    public var configuration: KaspiConfiguration { executor.configuration }

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - configuration: server, credentials, timeouts, retries and rate limit.
    ///   - transport: what sends the HTTP requests.
    ///   - clock: used for retry delays, polling and the rate limiter.
    ///   - rateLimiter: a limiter to share with other clients of the same trade point; by
    ///     default one is made from `configuration.rateLimit`.
    ///   - logger: where requests are logged (method, path, status, latency; never bodies).
    ///   - random: numbers in `0..<1` for jitter; injectable for tests.
    public init(
        configuration: KaspiConfiguration,
        transport: some KaspiTransport,
        clock: some Clock<Duration> = ContinuousClock(),
        rateLimiter: (any RequestRateLimiter)? = nil,
        logger: Logger = Logger(label: "kaspi-pay"),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        let limiter: (any RequestRateLimiter)? =
            rateLimiter
            ?? configuration.rateLimit.map {
                RateLimiter(limit: $0.requests, per: $0.window, clock: clock)
            }
        let executor = RequestExecutor(
            configuration: configuration, transport: transport, clock: ElapsedClock(clock),
            limiter: limiter, logger: logger, random: random)
        self.executor = executor
        self.orders = Orders(executor: executor)
        self.qr = QR(executor: executor)
        self.refunds = Refunds(executor: executor)
    }
}

/// Builds, sends, retries and interprets requests.
struct RequestExecutor: Sendable {
    let configuration: KaspiConfiguration
    let transport: any KaspiTransport
    let clock: ElapsedClock
    let limiter: (any RequestRateLimiter)?
    let logger: Logger
    let random: @Sendable () -> Double

    /// The largest error body quoted in a message.
    static let snippetLimit = 256

    /// One request to the API.
    struct Call: Sendable {
        var method: HTTPRequest.Method
        /// Path segments after the base URL, unescaped.
        var segments: [String]
        var body: [UInt8]?
        /// A short name for logs and metrics, e.g. `orders.create`.
        var name: String
    }

    func call(_ method: HTTPRequest.Method, _ segments: [String], body: (some Encodable)?, name: String) throws(KaspiError) -> Call {
        var bytes: [UInt8]? = nil
        if let body {
            do {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                bytes = Array(try encoder.encode(body))
            } catch {
                throw .invalidRequest(ServerReply(httpStatus: 0, message: "could not encode the request"))
            }
        }
        return Call(method: method, segments: segments, body: bytes, name: name)
    }

    func makeRequest(_ call: Call) -> HTTPRequest {
        let base = configuration.environment.baseURL
        var authority = base.host ?? ""
        if authority.contains(":") { authority = "[\(authority)]" }
        if let port = base.port { authority += ":\(port)" }
        var basePath = base.path
        while basePath.hasSuffix("/") { basePath.removeLast() }
        let path = basePath + "/" + call.segments.map(Self.escapeSegment).joined(separator: "/")
        var fields = HTTPFields()
        fields[.accept] = "application/json"
        fields[.authorization] = "Bearer \(configuration.apiKey.revealed)"
        fields[.userAgent] = "KaspiKit/0.1 (KaspiPay)"
        if call.body != nil { fields[.contentType] = "application/json" }
        return HTTPRequest(
            method: call.method, scheme: base.scheme?.lowercased() ?? "https", authority: authority,
            path: path, headerFields: fields)
    }

    static func escapeSegment(_ segment: String) -> String { PercentEncoding.escape(segment, allowing: PercentEncoding.segment) }

    /// Sends a call once: rate limit, transport, status and error mapping.
    ///
    /// - Returns: the 2xx response's status and body.
    ///
    /// - Parameter startedAt: when the call's first attempt began (``ElapsedClock/now``): a
    ///   retry's timeout is cut to what remains of ``RetryPolicy/maxElapsed``.
    func sendOnce(_ call: Call, attempt: Int, startedAt: Duration? = nil) async throws(KaspiError) -> (status: Int, body: [UInt8]) {
        do {
            try await limiter?.acquire()
        } catch is CancellationError {
            throw .transport("cancelled while waiting for the rate limiter")
        } catch {
            throw .transport(scrub("the rate limiter failed: \(String(describing: error).prefix(120))"))
        }
        let request = makeRequest(call)
        let started = clock.now()
        var metadata: Logger.Metadata = [
            "kaspi.call": "\(call.name)", "http.method": "\(call.method.rawValue)",
            "http.path": "\(request.path ?? "")", "kaspi.attempt": "\(attempt)",
        ]
        logger.debug("Kaspi request", metadata: metadata)
        let response: HTTPResponse
        let body: [UInt8]
        do {
            var timeout = configuration.requestTimeout
            if let startedAt {
                let remaining = configuration.retryPolicy.maxElapsed - (clock.now() - startedAt)
                timeout = min(timeout, max(.milliseconds(100), remaining))
            }
            (response, body) = try await transport.send(request, body: call.body, timeout: timeout)
        } catch let error as TransportError {
            metadata["error"] = "\(error.isTimeout ? "timeout" : "transport")"
            logger.debug("Kaspi request failed", metadata: metadata)
            if error.isTimeout { throw .timeout }
            throw .transport(scrub(error.detail))
        } catch is CancellationError {
            throw .transport("cancelled")
        } catch {
            logger.debug("Kaspi request failed", metadata: metadata)
            throw .transport(scrub(String(describing: error)))
        }
        let latency = clock.now() - started
        metadata["http.status"] = "\(response.status.code)"
        metadata["latency_ms"] = "\(Int(Double(attoseconds: latency) * 1000))"
        logger.debug("Kaspi response", metadata: metadata)
        let status = response.status.code
        if (200..<300).contains(status) { return (status, body) }
        throw mapError(status: status, headers: response.headerFields, body: body)
    }

    func scrub(_ text: String) -> String {
        Redaction.scrub(text, secret: configuration.apiKey.revealed)
    }

    /// Turns a non-2xx response into the matching error.
    func mapError(status: Int, headers: HTTPFields, body: [UInt8]) -> KaspiError {
        let snippet = Redaction.snippet(of: body, limit: Self.snippetLimit, secret: configuration.apiKey.revealed)
        guard let reply = try? JSONDecoder().decode(ErrorReply.self, from: Data(body)), !reply.code.isEmpty
        else {
            if status == 429 {
                return .rateLimited(
                    ServerReply(httpStatus: status, message: ""),
                    retryAfter: Self.retryAfter(headers[.retryAfter], now: Date()))
            }
            return .unexpectedStatus(status, bodySnippet: snippet)
        }
        let server = ServerReply(httpStatus: status, message: scrub(String((reply.message ?? "").prefix(512))))
        switch reply.code {
        case "INVALID_SIGNATURE": return .invalidSignature(server)
        case "ORDER_ALREADY_EXISTS": return .orderAlreadyExists(server)
        case "TRADE_POINT_NOT_FOUND": return .tradePointNotFound(server)
        case "AMOUNT_TOO_SMALL": return .amountTooSmall(server)
        case "INVALID_RETURN_URL": return .invalidReturnURL(server)
        case "UNAUTHORIZED": return .unauthorized(server)
        case "ORDER_NOT_FOUND": return .orderNotFound(server)
        case "INVALID_REQUEST": return .invalidRequest(server)
        case "REFUND_NOT_ALLOWED": return .refundNotAllowed(server)
        case "RATE_LIMITED":
            return .rateLimited(server, retryAfter: Self.retryAfter(headers[.retryAfter], now: Date()))
        default:
            let code = String(scrub(reply.code).prefix(64))
            return .otherAPIError(code: code, server)
        }
    }

    /// Parses `Retry-After`: delay-seconds or an HTTP date.
    static func retryAfter(_ value: String?, now: Date) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) { return seconds >= 0 ? .seconds(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .fromSeconds(max(0, date.timeIntervalSince(now)))
    }

    /// The delay before retry `retry` after `error`, or nil when no retry is allowed: the
    /// attempts are spent, or the retry would start past the call's budget
    /// (``RetryPolicy/maxElapsed`` from `startedAt`).
    func retryDelay(after error: KaspiError, retry: Int, startedAt: Duration) -> Duration? {
        let policy = configuration.retryPolicy
        guard retry < policy.maxAttempts else { return nil }
        var retryAfter: Duration? = nil
        if case .rateLimited(_, let after) = error { retryAfter = after }
        guard let delay = policy.delay(beforeRetry: retry, random: random(), retryAfter: retryAfter) else { return nil }
        guard clock.now() - startedAt + delay < policy.maxElapsed else { return nil }
        return delay
    }

    func sleep(_ delay: Duration, before call: Call, after error: KaspiError, attempt: Int) async throws(KaspiError) {
        logger.info(
            "Retrying Kaspi request",
            metadata: [
                "kaspi.call": "\(call.name)", "kaspi.attempt": "\(attempt)", "error.code": "\(error.code)",
                "delay_ms": "\(Int(Double(attoseconds: delay) * 1000))",
            ])
        do {
            try await clock.sleep(delay)
        } catch {
            throw .transport("cancelled while waiting to retry")
        }
    }

    /// Sends a safe request (a read), retrying every transient failure.
    func sendIdempotent(_ call: Call) async throws(KaspiError) -> [UInt8] {
        var attempt = 1
        let startedAt = clock.now()
        while true {
            do {
                return try await sendOnce(call, attempt: attempt, startedAt: startedAt).body
            } catch {
                guard error.isTransient, let delay = retryDelay(after: error, retry: attempt, startedAt: startedAt) else { throw error }
                try await sleep(delay, before: call, after: error, attempt: attempt)
                attempt += 1
            }
        }
    }

    func decode<T: Decodable>(_ type: T.Type, from body: [UInt8], status: Int = 200) throws(KaspiError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw .undecodableBody(
                status: status, reason: Self.describe(error),
                bodySnippet: Redaction.snippet(of: body, limit: Self.snippetLimit, secret: configuration.apiKey.revealed))
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "missing field \(key.stringValue)"
        case .typeMismatch(let type, let context):
            "field \(context.codingPath.map(\.stringValue).joined(separator: ".")) is not \(type)"
        case .valueNotFound(_, let context):
            "field \(context.codingPath.map(\.stringValue).joined(separator: ".")) is null"
        case .dataCorrupted(let context):
            context.codingPath.isEmpty
                ? "not JSON" : "field \(context.codingPath.map(\.stringValue).joined(separator: ".")) is malformed"
        case nil: "not JSON"
        @unknown default: "malformed"
        }
    }
}
