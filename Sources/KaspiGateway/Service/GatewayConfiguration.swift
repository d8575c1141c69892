import Crypto
import Foundation
import KaspiPay
import KaspiSupport

/// The gateway's settings. Every value is validated at start (``validate()``), each problem
/// with its own message.
public struct GatewayConfiguration: Sendable {
    /// The address to listen on.
    public var host: String = "127.0.0.1"
    /// The port; 0 picks a free one.
    public var port: Int = 8282
    /// The address of the admin listener, which serves the dashboard (`/admin`) and
    /// `/metrics`: loopback by default, so that neither is on the public listener.
    public var adminHost: String = "127.0.0.1"
    /// Its port; nil is the public port plus one (8283 beside the default 8282), or a free
    /// port when the public one is 0.
    public var adminPort: Int?
    /// The admin listener's port as configured: ``adminPort``, else ``port`` + 1 (0 for 0).
    public var resolvedAdminPort: Int { adminPort ?? (port == 0 ? 0 : port + 1) }
    /// The gateway's public base URL: the return and fail pages and payment links live under it.
    public var publicURL: String?
    /// The SQLite file (the default) …
    public var sqlitePath: String = "kaspi-gateway.sqlite"
    /// … or a PostgreSQL URL, which wins when set.
    public var postgresURL: String?
    /// SHA-256 hex digests of the merchant API keys the gateway accepts, with full access.
    public var apiKeyHashes: [String] = []
    /// SHA-256 hex digests of restricted keys that may only read (`GET` under `/v1`): for a
    /// reporting job or a support tool.
    public var readOnlyKeyHashes: [String] = []
    /// SHA-256 hex digests of restricted keys that may take payments and read, but not refund
    /// (no refunds, manual refunds or return QRs): for the shop's checkout, say.
    public var paymentKeyHashes: [String] = []
    /// Where events for the merchant's systems are POSTed; nil keeps them in the outbox only.
    public var merchantWebhookURL: String?
    /// The Standard Webhooks secret (`whsec_…`) signing those events.
    public var merchantWebhookSecret: String?
    /// How long after creation a pending order is first polled.
    public var firstPollAfter: TimeInterval = 60
    /// Polls back off from this …
    public var pollInterval: TimeInterval = 15
    /// … up to this.
    public var maxPollInterval: TimeInterval = 600
    /// A redirect or link order still pending after this long expires.
    public var expireAfter: TimeInterval = 3600
    /// A QR order still pending after this long expires (Kaspi's QR lives 5 minutes).
    public var qrExpireAfter: TimeInterval = 900
    /// How long after expiry Kaspi is still asked about an order, in case a payment arrives
    /// late and its webhook was lost.
    public var latePaymentWindow: TimeInterval = 24 * 3600
    /// How often an expired order is asked about during ``latePaymentWindow``.
    public var latePollInterval: TimeInterval = 900
    /// How often the slower background passes run: deleting expired idempotency keys and
    /// settling refunds with unknown outcomes.
    public var maintenanceInterval: TimeInterval = 30
    /// How old a pending refund must be before reconciliation treats its outcome as unknown
    /// (no call to Kaspi lasts longer).
    public var refundSettleAfter: TimeInterval = 120
    /// How long a stored order may wait for its create call before a provider's "not found"
    /// means the call never arrived (and the order expires).
    public var createGracePeriod: TimeInterval = 120
    /// How often the workers look for due work.
    public var workerInterval: TimeInterval = 1
    /// How many claimed orders are polled at once (each waits on the provider, not the CPU).
    /// It bounds how many calls are in flight, not how many are made: each pending order is
    /// asked once an interval (Kaspi's, on the QR API), so the rate follows the pending orders;
    /// a wider window lets one gateway keep up with more of them (see BENCHMARKS.md).
    public var pollConcurrency: Int = 32
    /// How many outgoing events are delivered at once (a slow merchant endpoint then holds
    /// up only its own deliveries).
    public var deliveryConcurrency: Int = 8
    /// How long one delivery of an outgoing event may take; each claimed event's lease is
    /// sized to it.
    public var eventDeliveryTimeout: TimeInterval = 10
    /// Delays between retries of an outgoing event; after the last, it is marked failed.
    public var eventRetrySeconds: [Double] = [5, 30, 120, 600, 1800, 3600, 7200]
    /// The dashboard's password; nil generates one at first start (printed once, its hash
    /// stored in the database).
    public var adminPassword: String?
    /// How many orders or events one round of background work claims at most.
    public var workBatchSize: Int = 50
    /// Whether an `APPROVED` webhook is confirmed with Kaspi's status call before it makes an
    /// order paid (the guide's webhook signature does not cover the status). On by default.
    public var confirmPaidWebhooks: Bool = true
    /// How long an Idempotency-Key is kept; a background pass deletes older ones.
    public var idempotencyKeyLifetime: TimeInterval = 24 * 3600
    /// How long a request may hold an Idempotency-Key without a final answer before a retry is
    /// told that it was interrupted (a crash) rather than still in progress.
    public var idempotencyInterruptedAfter: TimeInterval = 120
    /// The TLS proxies in front of the gateway (addresses or CIDR networks): only a request from
    /// one of them may name its client in `X-Forwarded-For` or `Forwarded`. Every throttle keys
    /// on that client. Empty (the default): each request's client is its TCP peer.
    public var trustedProxies: [String] = []
    /// Where a checkout's `mobileReturnUrl` may send the payer: URL prefixes such as
    /// `yourapp://` (an app's scheme) or `https://shop.example.kz/app/`. Any other is refused,
    /// so that a checkout cannot turn the return page into a redirect to anywhere (or to
    /// `javascript:`). None by default: mobile returns are off until configured.
    public var mobileReturnURLs: [String] = []
    /// The payer's pages' language when the payer's browser names none of `kk`, `ru`, `en`
    /// (and no `?lang=` or earlier choice says otherwise): `ru` unless set.
    public var defaultLanguage = "ru"
    /// This instance's name in leases. Keep it stable across restarts (`kaspi gateway` uses
    /// the host name and port) so that a restarted instance takes back its own leases.
    public var instanceID: String = GatewayConfigurationDefaults.instanceID() {
        didSet { hasChosenInstanceID = true }
    }
    /// Whether ``instanceID`` was set rather than left at its random default.
    public private(set) var hasChosenInstanceID = false

    /// The defaults: loopback on port 8282, SQLite in `kaspi-gateway.sqlite`.
    public init() {}

    /// The fewest characters a merchant API key may have: `kaspi gateway key` makes 43 random
    /// ones (256 bits).
    public static let minimumAPIKeyLength = 32

    /// A new random API key (`kk_` and 43 characters of base64url, 256 bits).
    public static func makeAPIKey() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let text = bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return "kk_" + text.trimmingCharacters(in: CharacterSet(charactersIn: "="))
    }

    /// The hex SHA-256 of an API key, as stored in ``apiKeyHashes``.
    public static func hash(apiKey: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Data(apiKey.utf8))))
    }

    /// Whether ``host`` is a loopback address, reachable from this machine only.
    public var listensOnLoopback: Bool {
        ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
    }

    /// The public base URL without a trailing slash: ``publicURL``, or on loopback
    /// `http://host:port` with the port the server is bound to.
    public func publicBase(boundPort: Int?) -> String {
        if var base = publicURL {
            while base.hasSuffix("/") { base.removeLast() }
            return base
        }
        return "http://\(URLHost.authority(host)):\(boundPort ?? port)"
    }

    /// Checks every value.
    ///
    /// - Throws: ``GatewayConfigurationError`` naming the first problem.
    public func validate() throws(GatewayConfigurationError) {
        guard (0...65535).contains(port) else { throw .invalid("port", "must be between 0 and 65535") }
        guard (0...65535).contains(resolvedAdminPort) else { throw .invalid("adminPort", "must be between 0 and 65535") }
        if resolvedAdminPort != 0, resolvedAdminPort == port, adminHost == host {
            throw .invalid("adminPort", "must differ from port: the dashboard and metrics have a listener of their own")
        }
        guard !adminHost.isEmpty, URL(string: "http://\(URLHost.authority(adminHost)):1/") != nil else {
            throw .invalid("adminHost", "must be a host name or an IP address")
        }
        if let publicURL {
            guard let url = URL(string: publicURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw .invalid("publicUrl", "must be an absolute http(s) URL")
            }
        }
        if publicURL == nil, !listensOnLoopback {
            throw .invalid(
                "publicUrl",
                "is required when the gateway listens beyond loopback (\(host)): payers are sent back to it, and it is never taken from a request's Host header"
            )
        }
        if let postgresURL, !(postgresURL.hasPrefix("postgres://") || postgresURL.hasPrefix("postgresql://")) {
            throw .invalid("databaseUrl", "must start with postgres:// (the password is never printed)")
        }
        guard !(apiKeyHashes + readOnlyKeyHashes + paymentKeyHashes).isEmpty else {
            throw .invalid("apiKeys", "none configured: set KASPI_GATEWAY_API_KEYS (or apiKeyHashes in the file) so that merchants can authenticate")
        }
        for (name, hashes) in [("apiKeyHashes", apiKeyHashes), ("readOnlyKeyHashes", readOnlyKeyHashes), ("paymentKeyHashes", paymentKeyHashes)] {
            for hash in hashes where hash.count != 64 || !hash.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
                throw .invalid(name, "each must be 64 lowercase hex characters (the SHA-256 of a key)")
            }
        }
        if let hook = merchantWebhookURL {
            guard let url = URL(string: hook), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw .invalid("merchantWebhookUrl", "must be an absolute http(s) URL")
            }
            guard let secret = merchantWebhookSecret, StandardWebhooks.key(from: secret) != nil else {
                throw .invalid("merchantWebhookSecret", "must be set as whsec_ followed by base64 (at least 24 bytes) when merchantWebhookUrl is")
            }
        }
        for (name, value) in [
            ("firstPollAfter", firstPollAfter), ("pollInterval", pollInterval), ("maxPollInterval", maxPollInterval),
            ("expireAfter", expireAfter), ("qrExpireAfter", qrExpireAfter), ("workerInterval", workerInterval),
            ("idempotencyKeyLifetime", idempotencyKeyLifetime), ("latePollInterval", latePollInterval), ("refundSettleAfter", refundSettleAfter),
            ("maintenanceInterval", maintenanceInterval), ("eventDeliveryTimeout", eventDeliveryTimeout),
            ("idempotencyInterruptedAfter", idempotencyInterruptedAfter),
        ]
        where !(value > 0 && value.isFinite) {
            throw .invalid(name, "must be a positive number of seconds")
        }
        guard latePaymentWindow >= 0, latePaymentWindow.isFinite else { throw .invalid("latePaymentWindow", "must be zero or more seconds") }
        if let adminPassword, adminPassword.count < 8 { throw .invalid("adminPassword", "must be at least 8 characters") }
        guard (1...1000).contains(workBatchSize) else { throw .invalid("workBatchSize", "must be from 1 to 1000") }
        guard (1...64).contains(pollConcurrency) else { throw .invalid("pollConcurrency", "must be from 1 to 64") }
        guard (1...64).contains(deliveryConcurrency) else { throw .invalid("deliveryConcurrency", "must be from 1 to 64") }
        _ = try TrustedProxies(trustedProxies)
        _ = try MobileReturnURLs(mobileReturnURLs)
        guard ["kk", "ru", "en"].contains(defaultLanguage) else { throw .invalid("defaultLanguage", "must be kk, ru or en") }
        guard !eventRetrySeconds.isEmpty, eventRetrySeconds.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw .invalid("eventRetrySeconds", "must be one or more non-negative delays")
        }
    }
}

enum GatewayConfigurationDefaults {
    static func instanceID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(GatewayIDShort.make())"
    }
}

enum GatewayIDShort {
    static func make() -> String { String(UUID().uuidString.prefix(8)).lowercased() }
}

/// A problem with the gateway's configuration.
public enum GatewayConfigurationError: Error, Sendable, CustomStringConvertible {
    case invalid(String, String)

    /// `GATEWAY_CONFIG_INVALID`.
    public var code: String { "GATEWAY_CONFIG_INVALID" }

    public var description: String {
        switch self {
        case .invalid(let key, let problem): "\(code): \(key) \(problem)."
        }
    }
}

/// Signing the Standard Webhooks way: `webhook-id`, `webhook-timestamp`, and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
public enum StandardWebhooks {
    /// The key inside a `whsec_…` secret.
    public static func key(from secret: String) -> SymmetricKey? {
        guard secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))), data.count >= 24 else { return nil }
        return SymmetricKey(data: data)
    }

    /// A new random secret.
    public static func makeSecret() -> String {
        "whsec_" + Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
    }

    /// The `webhook-signature` header value.
    public static func signature(id: String, timestamp: Int64, body: String, key: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: key)
        return "v1," + Data(mac).base64EncodedString()
    }
}
