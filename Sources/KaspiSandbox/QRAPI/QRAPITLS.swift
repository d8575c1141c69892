import Foundation
import Hummingbird
import HummingbirdTLS
import KaspiWeb
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// A request context that keeps the connection, so that the QR API can read the client
/// certificate the TLS layer saw.
struct QRAPITLSContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The caller: the client certificate (DER) and the peer's address.
    func caller() async -> QRAPICaller {
        let certificate = try? await channel.nioSSL_peerCertificate().get()
        let der = certificate.flatMap { try? $0.toDERBytes() }
        return QRAPICaller(certificate: der, remoteAddress: channel.remoteAddress?.ipAddress)
    }
}

extension Sandbox {
    /// One TLS server of the QR API: all three schemes, client certificates optional at the
    /// TLS layer (a request without a valid one is answered `-10000`, as Kaspi does).
    func qrTLSApplication(
        port: Int, index: Int, authority: SandboxCertificateAuthority, onRunning: (@Sendable (Int) async -> Void)?
    ) throws -> some ApplicationProtocol {
        let router = Router(context: QRAPITLSContext.self)
        addQRAPI(to: router) { _, context in await context.caller() }
        router.get("/health") { _, _ in Self.json(.ok, encoding: ["status": "ok"]) }
        router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes.map { ($0.method, $0.path.description) }))
        let paths = authority.paths
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(paths.serverCertificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: paths.serverKey, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        let configuration: TLSChannelConfiguration
        if self.configuration.qrAPI.verifyClientCertificates {
            // A TLS-terminating front: a certificate this CA did not issue, or an expired one,
            // is refused with a TLS alert before any request.
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(paths.caCertificate))
            tls.sendCANameList = true
            configuration = TLSChannelConfiguration(tlsConfiguration: tls)
        } else {
            // Ask for a client certificate but do not require one, and accept any at the TLS
            // layer: the QR API checks it against the sandbox's CA and answers -10000 itself.
            tls.certificateVerification = .optionalVerification
            configuration = TLSChannelConfiguration(tlsConfiguration: tls) { _, promise in promise.succeed(.certificateVerified) }
        }
        return Application(
            router: router,
            server: try .tls(.http1(configuration: .init(idleTimeout: .seconds(60))), configuration: configuration),
            configuration: .init(address: .hostname(self.configuration.host, port: port), serverName: "kaspi-sandbox-qr-tls"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                self.qrTLSBoundPorts.withLock { $0[index] = bound }
                await onRunning?(bound)
            },
            logger: logger)
    }

    /// The TLS ports the QR API listens on, once bound (in the configured order).
    public func qrAPITLSPorts() -> [Int] {
        qrTLSBoundPorts.withLock { ports in ports.keys.sorted().compactMap { ports[$0] } }
    }
}
