import AsyncHTTPClient
import HTTPTypes
public import KaspiPay
import NIOCore
import NIOHTTP1

/// The server transport for ``KaspiPay/KaspiClient``, over AsyncHTTPClient.
///
/// Create one per process and share it; call ``shutdown()`` when done if the transport
/// created its own `HTTPClient`.
public final class AsyncHTTPClientTransport: KaspiTransport {
    private let client: HTTPClient
    private let ownsClient: Bool
    /// The largest response body read, in bytes; a larger one fails the request.
    public let maxResponseSize: Int

    /// Creates a transport with its own `HTTPClient`.
    ///
    /// - Parameters:
    ///   - connectTimeout: how long to wait for a connection.
    ///   - readTimeout: how long to wait for the next bytes of a response.
    ///   - maxResponseSize: the largest body accepted, 1 MiB by default.
    ///   - maxConnections: connections kept open to the server at most (AsyncHTTPClient's
    ///     default of 8 queues a busy gateway's calls).
    public init(
        connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30),
        maxResponseSize: Int = 1 << 20, maxConnections: Int = 64
    ) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnections))
        // A refused connection fails the attempt at once; the client's bounded retries decide
        // what follows (AsyncHTTPClient would otherwise reconnect until the deadline).
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(
            connect: .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000
                + connectTimeout.components.attoseconds / 1_000_000_000),
            read: .nanoseconds(Int64(readTimeout.components.seconds) * 1_000_000_000
                + readTimeout.components.attoseconds / 1_000_000_000))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .enabled(limit: .size(maxResponseSize))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.maxResponseSize = maxResponseSize
    }

    /// Creates a transport over an existing `HTTPClient`, whose own timeouts then apply.
    /// The caller keeps ownership: ``shutdown()`` does not shut it down.
    public init(client: HTTPClient, maxResponseSize: Int = 1 << 20) {
        self.client = client
        self.ownsClient = false
        self.maxResponseSize = maxResponseSize
    }

    /// Shuts down the `HTTPClient` if this transport created it.
    public func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    public func send(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration) async throws -> (HTTPResponse, [UInt8]) {
        guard let scheme = request.scheme, let authority = request.authority, let path = request.path else {
            throw TransportError.failed("the request has no URL")
        }
        var outgoing = HTTPClientRequest(url: "\(scheme)://\(authority)\(path)")
        outgoing.method = .RAW(value: request.method.rawValue)
        for field in request.headerFields {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        if let body {
            outgoing.body = .bytes(ByteBuffer(bytes: body))
        }
        let deadline = TimeAmount.nanoseconds(
            Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        do {
            let response = try await client.execute(outgoing, timeout: deadline)
            let buffer = try await response.body.collect(upTo: maxResponseSize)
            var fields = HTTPFields()
            for header in response.headers {
                if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
            }
            let head = HTTPResponse(status: .init(code: Int(response.status.code)), headerFields: fields)
            return (head, Array(buffer.readableBytesView))
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                throw TransportError.timedOut
            case .cancelled:
                throw CancellationError()
            default:
                throw TransportError.failed(Self.describe(error))
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw TransportError.failed("the response is larger than \(maxResponseSize) bytes")
        } catch {
            if "\(error)".lowercased().contains("timeout") || "\(error)".contains("timedOut") {
                throw TransportError.timedOut
            }
            throw TransportError.failed(Self.describe(error))
        }
    }

    private static func describe(_ error: any Error) -> String {
        String(String(describing: error).prefix(200))
    }
}
