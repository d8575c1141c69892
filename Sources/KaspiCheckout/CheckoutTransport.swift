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

    /// One ephemeral session for every default transport: a session is never invalidated, so
    /// one per checkout would pile up.
    static let sharedSession: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 15
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        return URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
    }()

    /// Refuses every redirect: it would carry the `Client-Secret` header to wherever the
    /// answer points. The gateway's client endpoint never redirects.
    final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
            completionHandler: @escaping @Sendable (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }

    /// A transport over a shared ephemeral session (no cookies, no cache; 15 s a request).
    public init() { self.session = Self.sharedSession }

    /// A transport over `session`. The default session refuses redirects (they would carry the
    /// client secret elsewhere); give yours a delegate that does the same.
    public init(session: URLSession) { self.session = session }

    public func get(_ url: URL, headers: [String: String]) async throws -> CheckoutHTTPResponse {
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        // A refused redirect comes back as the 3xx answer itself, not followed.
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return CheckoutHTTPResponse(status: http.statusCode, headers: fields, body: data)
    }
}
