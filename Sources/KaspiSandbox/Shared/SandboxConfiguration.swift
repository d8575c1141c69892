import Foundation
import KaspiPay
import KaspiSupport

/// One merchant's trade point in the sandbox.
public struct SandboxTradePoint: Sendable, Hashable, Codable {
    /// The trade point id (`TradePointId`).
    public var id: String
    /// Its API key: signs requests and webhooks.
    public var apiKey: String
    /// Where status-change webhooks are POSTed; nil sends none.
    public var webhookURL: String?
    /// Prefixes that `returnUrl` and `failUrl` must start with. Empty allows any http(s) URL.
    public var returnURLPrefixes: [String]
    /// The merchant name shown on the payment page.
    public var displayName: String
    /// Faults injected from the start (they can be changed later through the helpers).
    public var faults: SandboxFaults?

    /// Creates a trade point.
    public init(
        id: String, apiKey: String, webhookURL: String? = nil, returnURLPrefixes: [String] = [],
        displayName: String = "Test merchant", faults: SandboxFaults? = nil
    ) {
        self.id = id
        self.apiKey = apiKey
        self.webhookURL = webhookURL
        self.returnURLPrefixes = returnURLPrefixes
        self.displayName = displayName
        self.faults = faults
    }

    enum CodingKeys: String, CodingKey {
        case id, apiKey
        case webhookURL = "webhookUrl"
        case returnURLPrefixes = "returnUrlPrefixes"
        case displayName, faults
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        apiKey = try container.decode(String.self, forKey: .apiKey)
        webhookURL = try container.decodeIfPresent(String.self, forKey: .webhookURL)
        returnURLPrefixes = try container.decodeIfPresent([String].self, forKey: .returnURLPrefixes) ?? []
        displayName = try container.decodeIfPresent(String.self, forKey: .displayName) ?? id
        faults = try container.decodeIfPresent(SandboxFaults.self, forKey: .faults)
    }
}

/// Everything the sandbox can be told. Load it from a JSON file with ``load(file:)``; each
/// field has a default, so `{}` is a valid file.
///
/// Keys: `host`, `port`, `publicUrl`, `tradePoints` (each `id`, `apiKey`, `webhookUrl`,
/// `returnUrlPrefixes`, `displayName`), `rateLimitPerMinute` (0 switches it off),
/// `qrLifetimeSeconds`, `webhookTimeoutSeconds`, `webhookRetrySeconds` (the delays between
/// attempts), `dataPath`.
public struct SandboxConfiguration: Sendable, Codable {
    /// The address to listen on.
    public var host: String = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port: Int = 8181
    /// The base URL payment links use; by default the URL the request came in on.
    public var publicURL: String?
    /// The merchants.
    public var tradePoints: [SandboxTradePoint] = []
    /// Requests a minute per trade point before `RATE_LIMITED`; 0 or nil for no limit.
    public var rateLimitPerMinute: Int? = 100
    /// The rate limit's window in seconds: a minute, as Kaspi's; shorter in tests.
    public var rateLimitWindowSeconds: Double = 60
    /// How long an unpaid QR lives before it reads `CANCELLED`.
    public var qrLifetimeSeconds: Double = 300
    /// The payment pages' language when the payer's browser names none of `kk`, `ru`, `en`
    /// (and no `?lang=` or earlier choice says otherwise): `ru`, as Kaspi's own pages.
    public var defaultLanguage = "ru"
    /// How long a merchant has to answer a webhook.
    public var webhookTimeoutSeconds: Double = 10
    /// Delays before each retry of a webhook that was not acknowledged: by default 6 attempts
    /// over about an hour.
    public var webhookRetrySeconds: [Double] = [10, 60, 300, 900, 2400]
    /// An SQLite file that keeps state across restarts; nil keeps it in a throwaway file of
    /// its own, gone when the process is.
    public var dataPath: String?
    /// How many orders memory holds at most (the others are read back from SQLite when asked
    /// for), so that the sandbox's memory stays flat however many orders a load test makes.
    /// Pending orders with a timer, and orders whose write is still queued, always stay. The
    /// same bound holds for the Kaspi QR API's purchases and for the webhook log (its oldest
    /// sent deliveries leave memory; with a data file they stay in it).
    public var memoryOrderLimit: Int = 5_000
    /// The Kaspi QR API's organizations, timings and TLS ports.
    public var qrAPI = SandboxQRAPIConfiguration()

    /// The defaults: loopback on port 8181, no trade point yet (one test trade point is added at start).
    public init() {}

    enum CodingKeys: String, CodingKey {
        case host, port
        case publicURL = "publicUrl"
        case tradePoints, rateLimitPerMinute, rateLimitWindowSeconds, qrLifetimeSeconds,
            webhookTimeoutSeconds, webhookRetrySeconds, dataPath, memoryOrderLimit, defaultLanguage
        case qrAPI = "qrApi"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SandboxConfiguration()
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? defaults.host
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? defaults.port
        publicURL = try container.decodeIfPresent(String.self, forKey: .publicURL)
        tradePoints = try container.decodeIfPresent([SandboxTradePoint].self, forKey: .tradePoints) ?? []
        rateLimitPerMinute = try container.decodeIfPresent(Int.self, forKey: .rateLimitPerMinute) ?? defaults.rateLimitPerMinute
        rateLimitWindowSeconds = try container.decodeIfPresent(Double.self, forKey: .rateLimitWindowSeconds) ?? defaults.rateLimitWindowSeconds
        qrLifetimeSeconds = try container.decodeIfPresent(Double.self, forKey: .qrLifetimeSeconds) ?? defaults.qrLifetimeSeconds
        defaultLanguage = try container.decodeIfPresent(String.self, forKey: .defaultLanguage) ?? defaults.defaultLanguage
        webhookTimeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .webhookTimeoutSeconds) ?? defaults.webhookTimeoutSeconds
        webhookRetrySeconds = try container.decodeIfPresent([Double].self, forKey: .webhookRetrySeconds) ?? defaults.webhookRetrySeconds
        dataPath = try container.decodeIfPresent(String.self, forKey: .dataPath)
        memoryOrderLimit = try container.decodeIfPresent(Int.self, forKey: .memoryOrderLimit) ?? defaults.memoryOrderLimit
        qrAPI = try container.decodeIfPresent(SandboxQRAPIConfiguration.self, forKey: .qrAPI) ?? SandboxQRAPIConfiguration()
    }

    /// Reads a JSON configuration file.
    ///
    /// - Throws: ``SandboxConfigurationError`` when it cannot be read or parsed.
    public static func load(file path: String) throws(SandboxConfigurationError) -> SandboxConfiguration {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadableFile(path)
        }
        do {
            return try JSONDecoder().decode(SandboxConfiguration.self, from: data)
        } catch {
            throw .malformedFile(path, reason: String(describing: error).prefix(200).description)
        }
    }

    /// A trade point for trying things out, with a fresh key.
    public static func defaultTradePoint() -> SandboxTradePoint {
        SandboxTradePoint(
            id: "TEST-TP-1", apiKey: "sandbox_" + randomHex(16), webhookURL: nil, returnURLPrefixes: [],
            displayName: "KaspiKit Test Shop")
    }

    /// Checks every value, naming the first problem.
    ///
    /// - Throws: ``SandboxConfigurationError``.
    public func validate() throws(SandboxConfigurationError) {
        guard (0...65535).contains(port) else { throw .invalid("port", "must be between 0 and 65535") }
        if let publicURL, (try? KaspiEnvironment.custom(parsing: publicURL)) == nil {
            throw .invalid("publicUrl", "must be an absolute http(s) URL")
        }
        if let limit = rateLimitPerMinute, limit < 0 { throw .invalid("rateLimitPerMinute", "must be 0 or more") }
        guard (1...10_000_000).contains(memoryOrderLimit) else { throw .invalid("memoryOrderLimit", "must be between 1 and 10000000") }
        guard rateLimitWindowSeconds > 0, rateLimitWindowSeconds <= 3600 else {
            throw .invalid("rateLimitWindowSeconds", "must be between 0 and 3600 seconds")
        }
        guard qrLifetimeSeconds > 0, qrLifetimeSeconds.isFinite else { throw .invalid("qrLifetimeSeconds", "must be positive") }
        guard ["kk", "ru", "en"].contains(defaultLanguage) else { throw .invalid("defaultLanguage", "must be kk, ru or en") }
        guard webhookTimeoutSeconds > 0, webhookTimeoutSeconds <= 300 else {
            throw .invalid("webhookTimeoutSeconds", "must be between 0 and 300")
        }
        guard webhookRetrySeconds.allSatisfy({ $0 >= 0 && $0.isFinite }), webhookRetrySeconds.count <= 50 else {
            throw .invalid("webhookRetrySeconds", "must be at most 50 non-negative delays")
        }
        try qrAPI.validate()
        var ids = Set<String>()
        var keys = Set<String>()
        for point in tradePoints {
            do { _ = try TradePointID(point.id) } catch { throw .invalid("tradePoints.id", error.description) }
            do { _ = try APIKey(point.apiKey) } catch {
                throw .invalid("tradePoints[\(point.id)].apiKey", "is malformed (empty, too long, or has spaces)")
            }
            guard ids.insert(point.id).inserted else { throw .invalid("tradePoints.id", "\(point.id) appears twice") }
            guard keys.insert(point.apiKey).inserted else {
                throw .invalid("tradePoints[\(point.id)].apiKey", "is shared with another trade point; keys identify trade points")
            }
            if let hook = point.webhookURL, (try? KaspiEnvironment.custom(parsing: hook)) == nil {
                throw .invalid("tradePoints[\(point.id)].webhookUrl", "must be an absolute http(s) URL")
            }
            if let problem = point.faults?.problem() { throw .invalid("tradePoints[\(point.id)].faults", problem) }
            for prefix in point.returnURLPrefixes where !(prefix.hasPrefix("http://") || prefix.hasPrefix("https://")) {
                throw .invalid("tradePoints[\(point.id)].returnUrlPrefixes", "\(prefix) must start with http:// or https://")
            }
        }
    }
}

/// A problem with the sandbox's configuration.
public enum SandboxConfigurationError: Error, Sendable, CustomStringConvertible {
    case unreadableFile(String)
    case malformedFile(String, reason: String)
    case invalid(String, String)

    /// A stable machine code, such as `SANDBOX_CONFIG_INVALID`.
    public var code: String {
        switch self {
        case .unreadableFile: "SANDBOX_CONFIG_UNREADABLE"
        case .malformedFile: "SANDBOX_CONFIG_MALFORMED"
        case .invalid: "SANDBOX_CONFIG_INVALID"
        }
    }

    public var description: String {
        switch self {
        case .unreadableFile(let path): "\(code): cannot read \(path); check the path and its permissions."
        case .malformedFile(let path, let reason): "\(code): \(path) is not a valid configuration (\(reason)); see docs/sandbox.md."
        case .invalid(let key, let problem): "\(code): \(key) \(problem)."
        }
    }
}

func randomHex(_ bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return Hex.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
}
