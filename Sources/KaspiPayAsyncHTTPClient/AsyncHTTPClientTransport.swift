import AsyncHTTPClient
import HTTPTypes
public import KaspiPay
import NIOCore
import NIOHTTP1
import NIOSSL

/// TLS settings for the Kaspi QR API's mutual TLS (r2, r3) and Kaspi's private CA.
public struct KaspiTLSSettings: Sendable, Hashable {
    /// The client certificate and its key.
    public enum ClientIdentity: Sendable, Hashable {
        /// A PEM certificate (chain) file and a PEM private key file.
        case pem(certificatePath: String, keyPath: String)
        /// A PKCS#12 (`.p12`/`.pfx`) file holding both, and its password.
        case pkcs12(path: String, password: String)
    }

    /// Which server certificates are trusted.
    public enum Trust: Sendable, Hashable {
        /// The system's roots (production hosts with public certificates).
        case system
        /// The CAs of a PEM bundle only (Kaspi's test host chains to Kaspi's private CA: the
        /// root and intermediate from the bank's archive; or a local sandbox's `ca.pem`).
        case caBundle(path: String)
        /// The system's roots plus a PEM bundle.
        case systemAndCABundle(path: String)
    }

    /// The client certificate, for mutual TLS (the Kaspi QR API's r2 and r3).
    public var clientIdentity: ClientIdentity?
    /// Which certificate authorities sign the server.
    public var trust: Trust

    /// Creates TLS settings; without arguments, the system's roots and no client certificate.
    public init(clientIdentity: ClientIdentity? = nil, trust: Trust = .system) {
        self.clientIdentity = clientIdentity
        self.trust = trust
    }

    /// The settings for a Kaspi QR API client's certificate files: the client identity, and
    /// the CA bundle alone when one is given (Kaspi's test host chains to its private CA).
    public init(_ files: KaspiQRAPI.CertificateFiles) {
        switch files.identity {
        case .pem(let certificatePath, let keyPath): clientIdentity = .pem(certificatePath: certificatePath, keyPath: keyPath)
        case .pkcs12(let path, let password): clientIdentity = .pkcs12(path: path, password: password)
        }
        trust = files.caBundlePath.map { .caBundle(path: $0) } ?? .system
    }

    /// The NIOSSL configuration: TLS 1.2 or later, full verification against the trust.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError/unreadableFile(variable:path:)`` when a file
    ///   cannot be read or parsed (its content never appears in the error).
    public func makeTLSConfiguration() throws(ConfigurationError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        func load<T>(_ variable: String, _ path: String, _ body: () throws -> T) throws(ConfigurationError) -> T {
            do { return try body() } catch { throw .unreadableFile(variable: variable, path: path) }
        }
        switch trust {
        case .system: break
        case .caBundle(let path):
            tls.trustRoots = .certificates(try load("CA bundle", path) { try NIOSSLCertificate.fromPEMFile(path) })
        case .systemAndCABundle(let path):
            tls.additionalTrustRoots = [.certificates(try load("CA bundle", path) { try NIOSSLCertificate.fromPEMFile(path) })]
        }
        switch clientIdentity {
        case nil: break
        case .pem(let certificatePath, let keyPath):
            let chain = try load("client certificate", certificatePath) { try NIOSSLCertificate.fromPEMFile(certificatePath) }
            guard !chain.isEmpty else { throw .unreadableFile(variable: "client certificate", path: certificatePath) }
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(try load("client key", keyPath) { try NIOSSLPrivateKey(file: keyPath, format: .pem) })
        case .pkcs12(let path, let password):
            let bundle = try load("PKCS#12 file", path) { try NIOSSLPKCS12Bundle(file: path, passphrase: Array(password.utf8)) }
            tls.certificateChain = bundle.certificateChain.map { .certificate($0) }
            tls.privateKey = .privateKey(bundle.privateKey)
        }
        return tls
    }
}

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
        let configuration = Self.configuration(
            connectTimeout: connectTimeout, readTimeout: readTimeout, maxResponseSize: maxResponseSize, maxConnections: maxConnections)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.maxResponseSize = maxResponseSize
    }

    /// Creates a transport with its own `HTTPClient` and TLS settings: a client certificate
    /// for mutual TLS (the Kaspi QR API's r2 and r3) and the CAs to trust.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError/unreadableFile(variable:path:)`` when a
    ///   certificate, key or bundle cannot be read.
    public init(
        tls: KaspiTLSSettings, connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30),
        maxResponseSize: Int = 1 << 20, maxConnections: Int = 64
    ) throws(ConfigurationError) {
        var configuration = Self.configuration(
            connectTimeout: connectTimeout, readTimeout: readTimeout, maxResponseSize: maxResponseSize, maxConnections: maxConnections)
        configuration.tlsConfiguration = try tls.makeTLSConfiguration()
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.maxResponseSize = maxResponseSize
    }

    private static func configuration(
        connectTimeout: Duration, readTimeout: Duration, maxResponseSize: Int, maxConnections: Int
    ) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnections))
        // A refused connection fails the attempt at once; the client's bounded retries decide
        // what follows (AsyncHTTPClient would otherwise reconnect until the deadline).
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(
            connect: .nanoseconds(
                Int64(connectTimeout.components.seconds) * 1_000_000_000
                    + connectTimeout.components.attoseconds / 1_000_000_000),
            read: .nanoseconds(
                Int64(readTimeout.components.seconds) * 1_000_000_000
                    + readTimeout.components.attoseconds / 1_000_000_000))
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .enabled(limit: .size(maxResponseSize))
        return configuration
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
