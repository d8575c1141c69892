import Foundation

/// Everything a ``KaspiClient`` needs to talk to Kaspi Pay for one trade point.
///
/// Load it from the environment with ``init(environment:)``, which reads:
/// - `KASPI_TRADE_POINT_ID` (required): the trade point id;
/// - `KASPI_API_KEY` (required, secret): the API key;
/// - `KASPI_BASE_URL` (required, or `KASPI_ENV` as a URL): an absolute http(s) URL of a
///   server that follows the integration guide's contract, for example a local
///   `kaspi sandbox`. The guide names no host that Kaspi has confirmed, so there is no
///   default: `KASPI_ENV=production` or `test` alone is refused
///   (``ConfigurationError/unconfirmedHost(_:)``). Kaspi's real partner API is
///   ``KaspiQRAPI``, whose hosts are known;
///   `http://` goes only to this machine (`CONFIG_INSECURE_BASE_URL` otherwise), and with
///   `KASPI_ENV=production` (or a `prod_` key) the host must be Kaspi's (`*.kaspi.kz`) or named
///   in `KASPI_TRUSTED_HOST` (`CONFIG_UNTRUSTED_HOST`);
/// - `KASPI_RATE_LIMIT`: the client-side limit in requests a minute (default 100, Kaspi's);
///   0 switches it off, for a sandbox or when something else limits the traffic.
public struct KaspiConfiguration: Sendable {
    /// Which server to talk to.
    public var environment: KaspiEnvironment
    /// The merchant's trade point.
    public var tradePointID: TradePointID
    /// The merchant's secret key.
    public var apiKey: APIKey
    /// The deadline for one HTTP exchange (connect, send, receive).
    public var requestTimeout: Duration
    /// When failed requests are repeated.
    public var retryPolicy: RetryPolicy
    /// The client-side limit, per trade point; nil to send without limiting.
    public var rateLimit: RateLimit?

    /// A client-side rate limit: `requests` per `window`.
    public struct RateLimit: Sendable, Hashable {
        /// How many requests the window allows.
        public var requests: Int
        /// The sliding window.
        public var window: Duration
        /// Creates a limit of `requests` per `window`.
        public init(requests: Int, per window: Duration) {
            self.requests = max(1, requests)
            self.window = window
        }
        /// Kaspi's limit: 100 requests a minute per trade point.
        public static let kaspi = RateLimit(requests: 100, per: .seconds(60))
    }

    /// Creates a configuration.
    public init(
        environment: KaspiEnvironment,
        tradePointID: TradePointID,
        apiKey: APIKey,
        requestTimeout: Duration = .seconds(30),
        retryPolicy: RetryPolicy = .default,
        rateLimit: RateLimit? = .kaspi
    ) {
        self.environment = environment
        self.tradePointID = tradePointID
        self.apiKey = apiKey
        self.requestTimeout = requestTimeout
        self.retryPolicy = retryPolicy
        self.rateLimit = rateLimit
    }

    /// Reads the configuration from environment variables (see the type's documentation).
    ///
    /// - Parameter environment: the variables; the process environment by default.
    /// - Throws: ``ConfigurationError`` naming the first missing or malformed variable.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines),
                !raw.isEmpty
            else { return nil }
            return raw
        }
        guard let tradePoint = value("KASPI_TRADE_POINT_ID") else {
            throw .missingVariable("KASPI_TRADE_POINT_ID")
        }
        guard let key = value("KASPI_API_KEY") else { throw .missingVariable("KASPI_API_KEY") }
        let tradePointID = try TradePointID(tradePoint)
        let apiKey = try APIKey(key)
        let env = try Self.environment(env: value("KASPI_ENV"), baseURL: value("KASPI_BASE_URL"))
        // The key goes nowhere in the clear, and a production key only to Kaspi or a host the
        // merchant named.
        let production = value("KASPI_ENV").map { (try? KaspiEnvironment(parsing: $0)) == .production } == true || key.hasPrefix("prod_")
        try CredentialDestination.check(env.baseURL, production: production, requiresTLS: false, trusted: value("KASPI_TRUSTED_HOST"))
        var rateLimit: RateLimit? = .kaspi
        if let raw = value("KASPI_RATE_LIMIT") {
            guard let perMinute = Int(raw), (0...100_000).contains(perMinute) else { throw .invalidRateLimit(raw) }
            rateLimit = perMinute == 0 ? nil : RateLimit(requests: perMinute, per: .seconds(60))
        }
        self.init(environment: env, tradePointID: tradePointID, apiKey: apiKey, rateLimit: rateLimit)
    }

    /// Resolves `KASPI_ENV` and `KASPI_BASE_URL` into an environment.
    ///
    /// - Throws: ``ConfigurationError`` when either is malformed, both are set and disagree,
    ///   neither names a URL (``ConfigurationError/missingVariable(_:)``), or `KASPI_ENV`
    ///   names `production` or `test` without a URL (``ConfigurationError/unconfirmedHost(_:)``).
    public static func environment(env: String?, baseURL: String?) throws(ConfigurationError) -> KaspiEnvironment {
        let fromEnv = try env.map { text throws(ConfigurationError) in try KaspiEnvironment(parsing: text) }
        guard let baseURL else {
            switch fromEnv {
            case .custom?: return fromEnv ?? .production
            case .production?, .test?: throw .unconfirmedHost(env ?? "")
            case nil: throw .missingVariable("KASPI_BASE_URL")
            }
        }
        let custom = try KaspiEnvironment.custom(parsing: baseURL)
        if let fromEnv, case .custom(let url) = fromEnv, url != custom.baseURL, let env {
            throw .conflictingEnvironment(env: env, baseURL: baseURL)
        }
        return custom
    }
}
