import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import Logging
import ServiceLifecycle

/// Builds what a gateway process runs, in Hummingbird's style: the gateway over its store and
/// provider, and its HTTP application with the background services. `kaspi gateway` and
/// `kaspi demo` both start here.
///
/// Before the server listens (the services run by then, the PostgreSQL pool among them), the
/// store is migrated, the dashboard's secrets are prepared, and `beforeServing` runs.
///
/// - Parameters:
///   - services: services the store needs running (the PostgreSQL pool).
///   - migrated: told the migrations applied, if any.
///   - adminPasswordGenerated: told the dashboard password generated at first start (shown once).
///   - beforeServing: more to do before the server listens.
///   - onServerRunning: called with the bound port.
/// - Throws: ``KaspiWeb/PageLibrary/LoadError`` when the page templates are missing.
public func buildGatewayApplication(
    configuration: GatewayConfiguration, store: any GatewayStore, provider: any PaymentProvider, services: [any Service] = [],
    logger: Logger = Logger(label: "kaspi-gateway"), migrated: (@Sendable ([Int]) -> Void)? = nil,
    adminPasswordGenerated: (@Sendable (String) -> Void)? = nil, beforeServing: (@Sendable () async throws -> Void)? = nil,
    onServerRunning: (@Sendable (Int) async -> Void)? = nil
) throws -> (gateway: Gateway, application: some ApplicationProtocol) {
    let gateway = Gateway(configuration: configuration, store: store, provider: provider, logger: logger)
    let application = try gateway.application(
        services: services,
        beforeServing: {
            let applied = try await store.migrate()
            if !applied.isEmpty { migrated?(applied) }
            if let generated = try await gateway.prepareAdmin() { adminPasswordGenerated?(generated) }
            try await beforeServing?()
        },
        onServerRunning: onServerRunning)
    return (gateway, application)
}

/// The providers a gateway talks to Kaspi through, built from their settings.
public enum GatewayProviders {
    /// The Kaspi QR API (r1, r2 or r3), its devices read from the store.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError`` for a missing key, BIN or certificate.
    public static func kaspiQR(
        _ settings: KaspiQRAPI.Settings, store: any GatewayStore, rateLimiter: (any RequestRateLimiter)? = nil, logger: Logger
    ) throws(ConfigurationError) -> (provider: KaspiQRProvider, client: KaspiQRAPI.AnyClient, transport: AsyncHTTPClientTransport) {
        let transport = try KaspiQRSetup.transport(settings)
        let client = try KaspiQRSetup.client(settings, transport: transport, rateLimiter: rateLimiter, logger: logger)
        return (KaspiQRProvider(client: client) { try await store.devices(provider: KaspiQRProvider.providerName) }, client, transport)
    }

    /// The integration guide's Kaspi Pay API.
    public static func guide(
        _ configuration: KaspiConfiguration, rateLimiter: (any RequestRateLimiter)? = nil, logger: Logger
    ) -> (provider: KaspiPayProvider, transport: AsyncHTTPClientTransport) {
        let transport = AsyncHTTPClientTransport(readTimeout: configuration.requestTimeout)
        let client = KaspiClient(configuration: configuration, transport: transport, rateLimiter: rateLimiter, logger: logger)
        return (KaspiPayProvider(client: client), transport)
    }
}
