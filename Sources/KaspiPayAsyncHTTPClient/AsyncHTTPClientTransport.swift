import AsyncHTTPClient
import Foundation
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

    /// When the client certificate (the first of its chain, or the PKCS#12 file's) stops being
    /// valid, and the file it came from; nil without a client certificate.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError/unreadableFile(variable:path:)`` when the file
    ///   cannot be read or parsed.
    public func clientCertificateExpiry() throws(ConfigurationError) -> (path: String, notValidAfter: Date)? {
        let path: String
        let certificate: NIOSSLCertificate?
        switch clientIdentity {
        case nil: return nil
        case .pem(let certificatePath, _):
            path = certificatePath
            do { certificate = try NIOSSLCertificate.fromPEMFile(certificatePath).first } catch {
                throw .unreadableFile(variable: "client certificate", path: certificatePath)
            }
        case .pkcs12(let p12, let password):
            path = p12
            do { certificate = try NIOSSLPKCS12Bundle(file: p12, passphrase: Array(password.utf8)).certificateChain.first } catch {
                throw .unreadableFile(variable: "PKCS#12 file", path: p12)
            }
        }
        guard let certificate else { throw .unreadableFile(variable: "client certificate", path: path) }
        return (path, Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter)))
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
    /// The TLS files, to name them when a handshake is refused.
    private let tls: KaspiTLSSettings?
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
    ///   - proxy: a forward HTTP proxy to leave through (`CONNECT` for https).
    public init(
        connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30),
        maxResponseSize: Int = 1 << 20, maxConnections: Int = 64, proxy: KaspiQRAPI.Proxy? = nil
    ) {
        let configuration = Self.configuration(
            connectTimeout: connectTimeout, readTimeout: readTimeout, maxResponseSize: maxResponseSize, maxConnections: maxConnections,
            proxy: proxy)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.maxResponseSize = maxResponseSize
        self.tls = nil
    }

    /// Creates a transport with its own `HTTPClient` and TLS settings: a client certificate
    /// for mutual TLS (the Kaspi QR API's r2 and r3) and the CAs to trust. Through a `proxy`,
    /// the TLS session (and the client certificate) runs end to end inside its tunnel.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError/unreadableFile(variable:path:)`` when a
    ///   certificate, key or bundle cannot be read.
    public init(
        tls: KaspiTLSSettings, connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30),
        maxResponseSize: Int = 1 << 20, maxConnections: Int = 64, proxy: KaspiQRAPI.Proxy? = nil
    ) throws(ConfigurationError) {
        var configuration = Self.configuration(
            connectTimeout: connectTimeout, readTimeout: readTimeout, maxResponseSize: maxResponseSize, maxConnections: maxConnections,
            proxy: proxy)
        configuration.tlsConfiguration = try tls.makeTLSConfiguration()
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.maxResponseSize = maxResponseSize
        self.tls = tls
    }

    private static func configuration(
        connectTimeout: Duration, readTimeout: Duration, maxResponseSize: Int, maxConnections: Int, proxy: KaspiQRAPI.Proxy?
    ) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        if let proxy {
            let authorization = proxy.user.map { HTTPClient.Authorization.basic(username: $0, password: proxy.password ?? "") }
            configuration.proxy = .server(host: proxy.host, port: proxy.port, authorization: authorization)
        }
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
        self.tls = nil
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
            case .proxyAuthenticationRequired:
                throw TransportError.failed("the forward proxy asks for credentials (407): give them as http://USER:PASSWORD@HOST:PORT")
            case .invalidProxyResponse:
                throw TransportError.failed("the forward proxy refused the CONNECT tunnel to \(authority) (allowed ports, ACLs)")
            default:
                throw TransportError.failed(Self.describe(error))
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NIOSSLError {
            if let refused = Self.refusal(error, tls: tls) { throw refused }
            throw TransportError.failed(Self.describe(error))
        } catch let error as BoringSSLError {
            // TLS 1.3: the server judges the client certificate after the client's side of
            // the handshake, so its alert arrives with the first read.
            if let refused = Self.refusal(error, tls: tls) { throw refused }
            throw TransportError.failed(Self.describe(error))
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

    /// A handshake that failed for good, said plainly: which side refused, why, and the file
    /// concerned. Other TLS errors (a connection cut mid-handshake) stay ordinary failures.
    static func refusal(_ error: any Error, tls: KaspiTLSSettings?) -> TransportError? {
        let text: String
        if let error = error as? NIOSSLError {
            guard case .handshakeFailed(let inner) = error else { return nil }
            text = String(describing: inner)
        } else if let error = error as? BoringSSLError {
            text = String(describing: error)
        } else {
            return nil
        }
        // BoringSSL's reason names, e.g. "…:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA at <file>".
        let reasons = text.split(whereSeparator: { !($0.isUppercase || $0.isNumber || $0 == "_") }).map(String.init).filter {
            $0.contains("_") && $0.count >= 8
        }
        guard let reason = reasons.first(where: { $0.contains("ALERT") || $0.contains("VERIFY") }) else { return nil }
        let certificate: String
        switch tls?.clientIdentity {
        case .pem(let path, _): certificate = "the client certificate \(path)"
        case .pkcs12(let path, _): certificate = "the client certificate in \(path)"
        case nil: certificate = "the connection (no client certificate configured)"
        }
        if reason.contains("VERIFY") {
            let trust: String
            switch tls?.trust {
            case .caBundle(let path), .systemAndCABundle(let path): trust = "the CA bundle \(path)"
            case .system, nil: trust = "the system's CAs (set a CA bundle for Kaspi's private CA)"
            }
            return .tlsRefused("Kaspi's server certificate is not trusted by \(trust) (\(reason))")
        }
        let why: String
        switch reason {
        case "TLSV1_ALERT_UNKNOWN_CA": why = "it is not signed by a CA the server trusts: use the certificate Kaspi issued for this environment"
        case "TLSV1_ALERT_DECRYPT_ERROR":
            why = "its signature does not check out against the CA the server trusts (another CA of the same name?): use the certificate Kaspi issued"
        case "SSLV3_ALERT_CERTIFICATE_EXPIRED": why = "it has expired: renew it with Kaspi"
        case "SSLV3_ALERT_CERTIFICATE_REVOKED": why = "it was revoked"
        case "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_CERTIFICATE_REQUIRED": why = "the server requires a client certificate"
        default: why = "the server refused the handshake"
        }
        return .tlsRefused("Kaspi refused \(certificate) during the TLS handshake: \(why) (\(reason))")
    }
}
