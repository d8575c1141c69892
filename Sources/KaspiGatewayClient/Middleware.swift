public import Foundation
public import HTTPTypes
public import OpenAPIRuntime

/// `Authorization: Bearer <key>` on every request.
struct AuthorizationMiddleware: ClientMiddleware {
    let apiKey: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(apiKey)"
        return try await next(request, body, baseURL)
    }
}

/// Turns a refusal (`{"error": {"code", "message"}}` with a 4xx or 5xx) into
/// ``GatewayClientError/refused(status:code:message:)``.
struct ErrorMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        struct Refusal: Decodable {
            struct Detail: Decodable { var code: String, message: String }
            var error: Detail
        }
        var bytes: [UInt8] = []
        if let responseBody { bytes = try await [UInt8](collecting: responseBody, upTo: 64 * 1024) }
        if let refusal = try? JSONDecoder().decode(Refusal.self, from: Data(bytes)) {
            throw GatewayClientError.refused(status: response.status.code, code: refusal.error.code, message: refusal.error.message)
        }
        throw GatewayClientError.unexpectedResponse(status: response.status.code)
    }
}

/// Retries what is safe: a GET, or a request with an `Idempotency-Key` (the same key each
/// time, so the gateway replays a create that went through rather than making another),
/// after a network error, a 5xx or a 429.
struct RetryMiddleware: ClientMiddleware {
    let policy: KaspiGatewayClient.RetryPolicy

    static let idempotencyKey = HTTPField.Name("Idempotency-Key")

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let safe = request.method == .get || Self.idempotencyKey.map { request.headerFields[$0] != nil } == true
        guard safe, policy.maxAttempts > 1 else { return try await next(request, body, baseURL) }
        // The body is sent again on a retry: read it once.
        var bytes: [UInt8]? = nil
        if let body { bytes = try await [UInt8](collecting: body, upTo: 1 << 20) }
        var attempt = 1
        while true {
            let delay: Duration
            do {
                let (response, responseBody) = try await next(request, bytes.map { HTTPBody($0) }, baseURL)
                let status = response.status.code
                guard status == 429 || status >= 500, attempt < policy.maxAttempts else { return (response, responseBody) }
                delay = Self.retryAfter(response) ?? backoff(attempt)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                guard attempt < policy.maxAttempts else { throw error }
                delay = backoff(attempt)
            }
            try await Task.sleep(for: min(delay, policy.maxDelay))
            attempt += 1
        }
    }

    func backoff(_ attempt: Int) -> Duration {
        let base = policy.initialDelay * (1 << min(attempt - 1, 10))
        return base + base * Double.random(in: 0..<0.25)
    }

    static func retryAfter(_ response: HTTPResponse) -> Duration? {
        guard let text = response.headerFields[.retryAfter], let seconds = Int(text.trimmingCharacters(in: .whitespaces)), seconds >= 0 else {
            return nil
        }
        return .seconds(seconds)
    }
}
