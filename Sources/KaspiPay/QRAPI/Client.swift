import Foundation
import HTTPTypes
import Logging

extension KaspiQRAPI {
    /// Settings shared by the three schemes' clients.
    public struct Configuration: Sendable {
        /// Which server: Kaspi's test or production host, or any URL.
        public var host: Host
        /// The deadline for one HTTP exchange.
        public var requestTimeout: Duration
        /// When reads are repeated. Creates and refunds are never repeated.
        public var retryPolicy: RetryPolicy
        /// A client-side limit, or nil. Kaspi documents only `remote/client-info`'s 50 calls a
        /// minute per device.
        public var rateLimit: KaspiConfiguration.RateLimit?
        /// Which `payment/status` to ask.
        public var statusVersion: StatusVersion

        /// Creates a client; the HTTP transport is injected.
        public init(
            host: Host, requestTimeout: Duration = .seconds(30), retryPolicy: RetryPolicy = .default,
            rateLimit: KaspiConfiguration.RateLimit? = nil, statusVersion: StatusVersion = .v02WithFallback
        ) {
            self.host = host
            self.requestTimeout = requestTimeout
            self.retryPolicy = retryPolicy
            self.rateLimit = rateLimit
            self.statusVersion = statusVersion
        }
    }

    /// A typed client for one scheme of the Kaspi QR API.
    ///
    /// ```swift
    /// let client = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
    ///     apiKey: try APIKey(apiKey), configuration: .init(host: .test), transport: transport)
    /// let token = try await client.registerDevice(id: "till-1", tradePointID: 19)
    /// let qr = try await client.createQR(device: token, amount: 200)
    /// let outcome = try await client.waitForPayment(qr)
    /// ```
    ///
    /// r2 and r3 authenticate with the transport's client certificate (see
    /// `AsyncHTTPClientTransport`'s TLS settings); r1 with the API key. Calls that a scheme
    /// does not offer are not available on its client: refunds with a return QR exist on
    /// `Client<R2>` only, refunds without the customer and remote invoices on `Client<R3>`.
    public struct Client<Scheme: KaspiQRAPIScheme>: Sendable {
        let executor: Executor
        /// The organization this client acts for (r3 only).
        let organization: OrganizationBIN?

        /// The configuration the client was made with.
        public var configuration: Configuration { executor.configuration }

        init(
            apiKey: APIKey?, organization: OrganizationBIN?, configuration: Configuration, transport: some KaspiTransport,
            clock: some Clock<Duration>, rateLimiter: (any RequestRateLimiter)?, logger: Logger
        ) throws(ConfigurationError) {
            let scheme = SchemeName(rawValue: Scheme.pathSegment) ?? .r1
            let root = try configuration.host.root(for: scheme)
            let limiter: (any RequestRateLimiter)? =
                rateLimiter ?? configuration.rateLimit.map { RateLimiter(limit: $0.requests, per: $0.window, clock: clock) }
            executor = Executor(
                configuration: configuration, root: root, scheme: Scheme.pathSegment, apiKey: apiKey, transport: transport,
                clock: ElapsedClock(clock), limiter: limiter, logger: logger)
            self.organization = organization
        }
    }
}

extension KaspiQRAPI.Client where Scheme == KaspiQRAPI.R1 {
    /// A client for r1, authenticated by the `Api-Key` header.
    ///
    /// - Throws: ``ConfigurationError`` when the host has no address for r1.
    public init(
        apiKey: APIKey, configuration: KaspiQRAPI.Configuration, transport: some KaspiTransport,
        clock: some Clock<Duration> = ContinuousClock(), rateLimiter: (any RequestRateLimiter)? = nil,
        logger: Logger = Logger(label: "kaspi-qr-api")
    ) throws(ConfigurationError) {
        try self.init(
            apiKey: apiKey, organization: nil, configuration: configuration, transport: transport, clock: clock,
            rateLimiter: rateLimiter, logger: logger)
    }
}

extension KaspiQRAPI.Client where Scheme == KaspiQRAPI.R2 {
    /// A client for r2. The transport presents the client certificate.
    ///
    /// - Throws: ``ConfigurationError/unknownProductionHost(_:)`` for ``KaspiQRAPI/Host/production``:
    ///   Kaspi publishes no r2 production host.
    public init(
        configuration: KaspiQRAPI.Configuration, transport: some KaspiTransport,
        clock: some Clock<Duration> = ContinuousClock(), rateLimiter: (any RequestRateLimiter)? = nil,
        logger: Logger = Logger(label: "kaspi-qr-api")
    ) throws(ConfigurationError) {
        try self.init(
            apiKey: nil, organization: nil, configuration: configuration, transport: transport, clock: clock,
            rateLimiter: rateLimiter, logger: logger)
    }
}

extension KaspiQRAPI.Client where Scheme == KaspiQRAPI.R3 {
    /// A client for r3 acting for one organization. The transport presents the client
    /// certificate; ``acting(for:)`` gives a client for another organization of the same
    /// certificate.
    public init(
        organizationBin: KaspiQRAPI.OrganizationBIN, configuration: KaspiQRAPI.Configuration, transport: some KaspiTransport,
        clock: some Clock<Duration> = ContinuousClock(), rateLimiter: (any RequestRateLimiter)? = nil,
        logger: Logger = Logger(label: "kaspi-qr-api")
    ) throws(ConfigurationError) {
        try self.init(
            apiKey: nil, organization: organizationBin, configuration: configuration, transport: transport, clock: clock,
            rateLimiter: rateLimiter, logger: logger)
    }

    /// The organization this client acts for.
    public var organizationBin: KaspiQRAPI.OrganizationBIN {
        // Always set: an r3 client is only made with a BIN.
        organization ?? KaspiQRAPI.OrganizationBIN(unchecked: "")
    }

    /// The same client, acting for another organization of the same certificate.
    public func acting(for organizationBin: KaspiQRAPI.OrganizationBIN) -> Self {
        Self(executor: executor, organization: organizationBin)
    }
}

extension KaspiQRAPI.Client {
    init(executor: KaspiQRAPI.Executor, organization: KaspiQRAPI.OrganizationBIN?) {
        self.executor = executor
        self.organization = organization
    }
}
