import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How a session reaches the gateway: one GET. The default is ``URLSessionCheckoutTransport``;
/// tests and apps with their own networking inject another.
public protocol CheckoutTransport: Sendable {
    /// Sends `GET url` with `headers`; returns the status, the headers (names lowercased) and
    /// the body. Throws only when no answer came.
    func get(_ url: URL, headers: [String: String]) async throws -> CheckoutHTTPResponse
}

/// An HTTP answer.
public struct CheckoutHTTPResponse: Sendable, Hashable {
    /// The status code.
    public var status: Int
    /// The headers, names lowercased.
    public var headers: [String: String]
    /// The body.
    public var body: Data

    /// An answer.
    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Foundation's `URLSession`, with no cookies and no cache: the client endpoint is read fresh.
public struct URLSessionCheckoutTransport: CheckoutTransport {
    let session: URLSession

    /// A transport over an ephemeral session whose requests time out after `timeout` seconds.
    public init(timeout: TimeInterval = 15) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        self.session = URLSession(configuration: configuration)
    }

    /// A transport over `session`.
    public init(session: URLSession) { self.session = session }

    public func get(_ url: URL, headers: [String: String]) async throws -> CheckoutHTTPResponse {
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return CheckoutHTTPResponse(status: http.statusCode, headers: fields, body: data)
    }
}
