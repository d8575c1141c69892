import HTTPTypes

/// Sends one HTTP request and returns the response with its whole body.
///
/// The client builds requests and interprets responses; a transport only moves bytes. The
/// server default is `AsyncHTTPClientTransport` in the `KaspiPayAsyncHTTPClient` module;
/// tests and Apple platforms bring their own.
public protocol KaspiTransport: Sendable {
    /// Sends a request.
    ///
    /// - Parameters:
    ///   - request: method, scheme, authority, path and headers.
    ///   - body: the request body, if any.
    ///   - timeout: the deadline for the whole exchange.
    /// - Returns: the response head and its body.
    /// - Throws: ``TransportError`` when no response arrived (``TransportError/timedOut`` when
    ///   the deadline passed); `CancellationError` when the task was cancelled.
    func send(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration) async throws -> (HTTPResponse, [UInt8])
}

/// Why a transport could not deliver a response.
public struct TransportError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable { case timedOut, failed, tlsRefused }
    private let kind: Kind
    /// A short description, without secrets (never the request's headers or body).
    public let detail: String

    /// No response within the deadline.
    public static let timedOut = TransportError(kind: .timedOut, detail: "timed out")

    /// The connection failed, or the response was cut off or too large.
    public static func failed(_ detail: String) -> TransportError {
        TransportError(kind: .failed, detail: detail)
    }

    /// The TLS handshake failed for good: the server refused the client certificate, or its
    /// own certificate is not trusted. Nothing was sent, and trying again cannot help.
    public static func tlsRefused(_ detail: String) -> TransportError {
        TransportError(kind: .tlsRefused, detail: detail)
    }

    /// Whether this is ``timedOut``.
    public var isTimeout: Bool { kind == .timedOut }

    /// Whether this is ``tlsRefused(_:)``.
    public var isTLSRefused: Bool { kind == .tlsRefused }

    public var description: String { detail }
}
