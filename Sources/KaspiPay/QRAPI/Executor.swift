import Foundation
import HTTPTypes
import KaspiSupport
import Logging

extension KaspiQRAPI {
    /// How a call may be repeated.
    enum Repeat: Sendable {
        /// A read, or a write Kaspi documents as idempotent: repeat transient failures.
        case safe
        /// A create or a refund: never repeated; a lost answer is an unknown outcome.
        case never(externalID: String?)
    }

    /// One request.
    struct Call: Sendable {
        var method: HTTPRequest.Method
        var version = "v01"
        /// Path segments after `/{scheme}/{version}/`, unescaped.
        var segments: [String]
        var query: [(String, String)] = []
        var body: [UInt8]?
        /// For logs and errors, e.g. `qr/create`.
        var name: String
        var repeatMode: Repeat
    }

    /// Remembers that a server has no v02 status.
    final class V02Fallback: @unchecked Sendable {
        private let lock = NSLock()
        private var useV01 = false
        var active: Bool { lock.withLock { useV01 } }
        func activate() { lock.withLock { useV01 = true } }
    }

    /// Sends calls: headers, rate limit, retries for safe calls, envelope and errors.
    struct Executor: Sendable {
        let configuration: Configuration
        let root: URL
        let scheme: String
        let apiKey: APIKey?
        let transport: any KaspiTransport
        let clock: ElapsedClock
        let limiter: (any RequestRateLimiter)?
        let logger: Logger
        let fallback = V02Fallback()
        let random: @Sendable () -> Double = { Double.random(in: 0..<1) }

        static let snippetLimit = 256

        func makeRequest(_ call: Call) -> HTTPRequest {
            var authority = root.host ?? ""
            if authority.contains(":") { authority = "[\(authority)]" }
            if let port = root.port { authority += ":\(port)" }
            var basePath = root.path
            while basePath.hasSuffix("/") { basePath.removeLast() }
            var path = basePath + "/" + ([scheme, call.version] + call.segments).map(RequestExecutor.escapeSegment).joined(separator: "/")
            if !call.query.isEmpty {
                path += "?" + call.query.map { "\(Self.escapeQuery($0.0))=\(Self.escapeQuery($0.1))" }.joined(separator: "&")
            }
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            fields[.accept] = "application/json"
            fields[.userAgent] = "KaspiKit/0.1 (KaspiPay; Kaspi QR API)"
            if let requestID = HTTPField.Name("X-Request-ID") {
                fields[requestID] = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            }
            if let apiKey, let name = HTTPField.Name("Api-Key") { fields[name] = apiKey.revealed }
            return HTTPRequest(
                method: call.method, scheme: root.scheme?.lowercased() ?? "https", authority: authority, path: path,
                headerFields: fields)
        }

        static func escapeQuery(_ text: String) -> String { PercentEncoding.escape(text, allowing: PercentEncoding.query) }

        func scrub(_ text: String) -> String {
            guard let apiKey else { return text }
            return Redaction.scrub(text, secret: apiKey.revealed)
        }

        func snippet(_ body: [UInt8]) -> String {
            Redaction.snippet(of: body, limit: Self.snippetLimit, secret: apiKey?.revealed ?? "")
        }

        /// Encodes a request body with PascalCase keys as given.
        static func body(_ fields: [(String, BodyValue)]) -> [UInt8] {
            var out = "{"
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out += "," }
                out += JSONText.string(key) + ":" + value.json
            }
            return Array((out + "}").utf8)
        }

        enum BodyValue {
            case string(String)
            case int(Int64)
            case amount(Decimal)

            var json: String {
                switch self {
                case .string(let text): JSONText.string(text)
                case .int(let number): String(number)
                case .amount(let amount): "\(amount)"
                }
            }
        }

        /// Sends a call and returns its `Data` decoded, or nothing for calls without one.
        func perform<T: Decodable>(_ call: Call, as type: T.Type) async throws(APIError) -> T {
            let body = try await send(call)
            do {
                return try JSONDecoder().decode(DataOf<T>.self, from: Data(body)).data
            } catch {
                if case .never(let externalID) = call.repeatMode {
                    throw .unknownOutcome(
                        call: call.name, externalID: externalID, reason: "the success answer could not be read (\(RequestExecutor.describe(error)))")
                }
                throw .undecodable(call: call.name, reason: RequestExecutor.describe(error), bodySnippet: snippet(body))
            }
        }

        /// Sends a call whose success carries no data.
        func performEmpty(_ call: Call) async throws(APIError) {
            _ = try await send(call)
        }

        /// Sends with retries (safe calls only); returns a success envelope's body.
        func send(_ call: Call) async throws(APIError) -> [UInt8] {
            var attempt = 1
            let startedAt = clock.now()
            while true {
                do {
                    return try await sendOnce(call, attempt: attempt, startedAt: startedAt)
                } catch {
                    guard case .safe = call.repeatMode, error.isTransient,
                        let delay = retryDelay(retry: attempt, startedAt: startedAt)
                    else { throw error }
                    logger.info(
                        "Retrying Kaspi QR API request",
                        metadata: ["kaspi.call": "\(call.name)", "kaspi.attempt": "\(attempt)", "error.code": "\(error.code)"])
                    do { try await clock.sleep(delay) } catch { throw .transport(call: call.name, reason: "cancelled") }
                    attempt += 1
                }
            }
        }

        func retryDelay(retry: Int, startedAt: Duration) -> Duration? {
            let policy = configuration.retryPolicy
            guard retry < policy.maxAttempts, let delay = policy.delay(beforeRetry: retry, random: random()) else { return nil }
            guard clock.now() - startedAt + delay < policy.maxElapsed else { return nil }
            return delay
        }

        func sendOnce(_ call: Call, attempt: Int, startedAt: Duration) async throws(APIError) -> [UInt8] {
            do {
                try await limiter?.acquire()
            } catch {
                throw .transport(call: call.name, reason: "cancelled while waiting for the rate limiter")
            }
            let request = makeRequest(call)
            var metadata: Logger.Metadata = [
                "kaspi.call": "\(call.name)", "http.method": "\(call.method.rawValue)", "kaspi.attempt": "\(attempt)",
                "kaspi.scheme": "\(scheme)",
            ]
            logger.debug("Kaspi QR API request", metadata: metadata)
            let started = clock.now()
            let response: HTTPResponse
            let body: [UInt8]
            do {
                let remaining = configuration.retryPolicy.maxElapsed - (clock.now() - startedAt)
                let timeout = min(configuration.requestTimeout, max(.milliseconds(100), remaining))
                (response, body) = try await transport.send(request, body: call.body, timeout: timeout)
            } catch {
                if let refused = error as? TransportError, refused.isTLSRefused {
                    metadata["error"] = "tls_refused"
                    logger.debug("Kaspi QR API request failed", metadata: metadata)
                    throw .tlsRefused(call: call.name, reason: scrub(refused.detail))
                }
                let isTimeout = (error as? TransportError)?.isTimeout ?? false
                var reason = error is CancellationError ? "cancelled" : scrub(String(String(describing: error).prefix(200)))
                // Query values (a device token, a phone number) stay out of messages too.
                for (_, value) in call.query where value.count >= 4 { reason = Redaction.scrub(reason, secret: value) }
                metadata["error"] = "\(isTimeout ? "timeout" : "transport")"
                logger.debug("Kaspi QR API request failed", metadata: metadata)
                if case .never(let externalID) = call.repeatMode {
                    throw .unknownOutcome(call: call.name, externalID: externalID, reason: isTimeout ? "no answer in time" : reason)
                }
                if isTimeout { throw .timeout(call: call.name) }
                throw .transport(call: call.name, reason: reason)
            }
            metadata["http.status"] = "\(response.status.code)"
            metadata["latency_ms"] = "\(Int(Double(attoseconds: clock.now() - started) * 1000))"
            let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body))
            if let envelope {
                metadata["kaspi.status_code"] = "\(envelope.statusCode)"
                logger.debug("Kaspi QR API response", metadata: metadata)
                guard envelope.statusCode == 0 else {
                    let message = envelope.message.map { scrub(String($0.prefix(512))) }
                    throw .kaspi(StatusCode(rawValue: envelope.statusCode), message: message, call: call.name)
                }
                return body
            }
            logger.debug("Kaspi QR API response", metadata: metadata)
            let status = response.status.code
            if case .never(let externalID) = call.repeatMode, status >= 500 || (200..<300).contains(status) {
                // A proxy's 5xx, or an unreadable success, may hide a purchase that was made.
                throw .unknownOutcome(call: call.name, externalID: externalID, reason: "HTTP \(status) without a Kaspi answer")
            }
            if (200..<300).contains(status) {
                throw .undecodable(call: call.name, reason: "not a Kaspi envelope", bodySnippet: snippet(body))
            }
            throw .unexpectedHTTPStatus(status, call: call.name, bodySnippet: snippet(body))
        }
    }
}
