public import Configuration
import Foundation
import Synchronization
import SystemPackage

extension GatewayConfiguration {
    /// Reads every setting from `providers` (the first that has a key wins) over the defaults.
    ///
    /// Keys are the configuration file's (`pollInterval`, `publicUrl`, …). A value that is
    /// present but cannot be read as its type is refused, never skipped: a typo in a number
    /// must not leave the default in place silently. ``validate()`` then checks ranges.
    ///
    /// - Throws: ``GatewayConfigurationError`` naming the first key that could not be read.
    public init(providers: [any ConfigProvider]) throws(GatewayConfigurationError) {
        self.init()
        guard !providers.isEmpty else { return }
        let problems = ReadProblems()
        let reader = ConfigReader(providers: providers, accessReporter: problems)
        for setting in Self.settings { setting.read(reader, &self) }
        if let problem = problems.first { throw .invalid(problem.key, problem.message) }
    }

    /// Reads the gateway's settings the way `kaspi gateway` does: `overrides` (its flags) win
    /// over the environment's `KASPI_GATEWAY_…` variables, which win over the JSON file.
    ///
    /// Every file key has a variable: `KASPI_GATEWAY_` and the key in upper snake case
    /// (`pollInterval` is `KASPI_GATEWAY_POLL_INTERVAL`; lists are comma-separated). Besides,
    /// `KASPI_GATEWAY_API_KEYS` holds merchant API keys themselves (only their SHA-256 is
    /// kept; each at least 32 characters), `KASPI_GATEWAY_READ_KEYS` and
    /// `KASPI_GATEWAY_PAYMENT_KEYS` restricted ones, and `KASPI_GATEWAY_EVENTS_URL` and `KASPI_GATEWAY_EVENTS_SECRET` set
    /// `merchantWebhookUrl` and `merchantWebhookSecret`.
    ///
    /// - Throws: ``GatewayConfigurationError`` when the file cannot be read, holds a key the
    ///   gateway does not know, or a value cannot be read as its type.
    public static func load(
        file path: String?, environment: [String: String], overrides: [String: ConfigValue] = [:]
    ) async throws(GatewayConfigurationError) -> GatewayConfiguration {
        var providers: [any ConfigProvider] = []
        if !overrides.isEmpty {
            providers.append(
                InMemoryProvider(
                    name: "flags", values: Dictionary(uniqueKeysWithValues: overrides.map { (AbsoluteConfigKey(ConfigKey($0.key)), $0.value) })))
        }
        providers.append(
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(Self.secretVariables))
                .mapKeys { key in AbsoluteConfigKey(["kaspi", "gateway"] + key.components.map { Self.variableAliases[$0] ?? $0 }) })
        if let path {
            try checkFileKeys(path)
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw .invalid("--config \(path)", "is not a valid configuration file")
            }
        }
        var configuration = try GatewayConfiguration(providers: providers)
        for (variable, path) in [
            ("KASPI_GATEWAY_API_KEYS", \GatewayConfiguration.apiKeyHashes), ("KASPI_GATEWAY_READ_KEYS", \GatewayConfiguration.readOnlyKeyHashes),
            ("KASPI_GATEWAY_PAYMENT_KEYS", \GatewayConfiguration.paymentKeyHashes),
        ] {
            guard let keys = environment[variable] else { continue }
            for key in keys.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                // A key is a password nobody types: long and random, or it can be guessed.
                guard key.count >= minimumAPIKeyLength else {
                    throw .invalid(variable, "each key must be at least \(minimumAPIKeyLength) characters; `kaspi gateway key` makes one")
                }
                configuration[keyPath: path].append(GatewayConfiguration.hash(apiKey: key))
            }
        }
        return configuration
    }

    /// The file must be one JSON object whose keys the gateway knows: a misspelt key would
    /// otherwise leave its default in place without a word.
    private static func checkFileKeys(_ path: String) throws(GatewayConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalid("--config \(path)", "cannot be read") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalid("--config \(path)", "is not a valid configuration file (a JSON object is expected)")
        }
        let known = Set(settings.map(\.key))
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid("--config \(path)", "has an unknown key \"\(unknown.prefix(64))\"; the keys are listed in docs/gateway.md")
        }
    }

    /// The keys a configuration file may hold, each read by ``init(providers:)``.
    public static var fileKeys: [String] { settings.map(\.key) }

    /// Environment names that differ from the file key's upper snake case.
    private static let variableAliases = ["merchantWebhookUrl": "eventsUrl", "merchantWebhookSecret": "eventsSecret"]
    private static let secretVariables: Set<String> = [
        "KASPI_GATEWAY_EVENTS_SECRET", "KASPI_GATEWAY_ADMIN_PASSWORD", "KASPI_GATEWAY_API_KEYS", "KASPI_GATEWAY_DATABASE",
        "KASPI_GATEWAY_READ_KEYS", "KASPI_GATEWAY_PAYMENT_KEYS",
    ]

    /// Every setting once: its key and how it is read into the configuration.
    static let settings: [Setting] = [
        .init("host") { c, r in if let v = r.string(forKey: "host") { c.host = v } },
        .init("adminHost") { c, r in if let v = r.string(forKey: "adminHost") { c.adminHost = v } },
        .init("adminPort") { c, r in if let v = r.int(forKey: "adminPort") { c.adminPort = v } },
        .init("port") { c, r in if let v = r.int(forKey: "port") { c.port = v } },
        .init("publicUrl") { c, r in if let v = r.string(forKey: "publicUrl") { c.publicURL = v } },
        .init("database") { c, r in if let v = r.string(forKey: "database", isSecret: true) { c.setDatabase(v) } },
        .init("readOnlyKeyHashes") { c, r in if let v = r.stringArray(forKey: "readOnlyKeyHashes") { c.readOnlyKeyHashes = v } },
        .init("paymentKeyHashes") { c, r in if let v = r.stringArray(forKey: "paymentKeyHashes") { c.paymentKeyHashes = v } },
        .init("apiKeyHashes") { c, r in if let v = r.stringArray(forKey: "apiKeyHashes") { c.apiKeyHashes = v } },
        .init("merchantWebhookUrl") { c, r in if let v = r.string(forKey: "merchantWebhookUrl") { c.merchantWebhookURL = v } },
        .init("merchantWebhookSecret") { c, r in if let v = r.string(forKey: "merchantWebhookSecret", isSecret: true) { c.merchantWebhookSecret = v }
        },
        .seconds("firstPollAfter", \.firstPollAfter),
        .seconds("pollInterval", \.pollInterval),
        .seconds("maxPollInterval", \.maxPollInterval),
        .seconds("expireAfter", \.expireAfter),
        .seconds("qrExpireAfter", \.qrExpireAfter),
        .seconds("latePaymentWindow", \.latePaymentWindow),
        .seconds("latePollInterval", \.latePollInterval),
        .seconds("maintenanceInterval", \.maintenanceInterval),
        .seconds("refundSettleAfter", \.refundSettleAfter),
        .seconds("createGracePeriod", \.createGracePeriod),
        .seconds("workerInterval", \.workerInterval),
        .count("pollConcurrency", \.pollConcurrency),
        .count("deliveryConcurrency", \.deliveryConcurrency),
        .seconds("eventDeliveryTimeout", \.eventDeliveryTimeout),
        .init("eventRetrySeconds") { c, r in if let v = r.doubleArray(forKey: "eventRetrySeconds") { c.eventRetrySeconds = v } },
        .init("adminPassword") { c, r in if let v = r.string(forKey: "adminPassword", isSecret: true) { c.adminPassword = v } },
        .count("workBatchSize", \.workBatchSize),
        .init("confirmPaidWebhooks") { c, r in if let v = r.bool(forKey: "confirmPaidWebhooks") { c.confirmPaidWebhooks = v } },
        .seconds("idempotencyKeyLifetime", \.idempotencyKeyLifetime),
        .seconds("idempotencyInterruptedAfter", \.idempotencyInterruptedAfter),
        .init("defaultLanguage") { c, r in if let v = r.string(forKey: "defaultLanguage") { c.defaultLanguage = v } },
        .init("mobileReturnUrls") { c, r in if let v = r.stringArray(forKey: "mobileReturnUrls") { c.mobileReturnURLs = v } },
        .init("trustedProxies") { c, r in if let v = r.stringArray(forKey: "trustedProxies") { c.trustedProxies = v } },
        .init("instanceId") { c, r in if let v = r.string(forKey: "instanceId") { c.instanceID = v } },
    ]

    /// One setting: a key and how its value reaches the configuration.
    struct Setting: Sendable {
        let key: String
        let read: @Sendable (ConfigReader, inout GatewayConfiguration) -> Void

        init(_ key: String, _ apply: @escaping @Sendable (inout GatewayConfiguration, ConfigReader) -> Void) {
            self.key = key
            self.read = { reader, configuration in apply(&configuration, reader) }
        }

        static func seconds(_ key: String, _ path: any WritableKeyPath<GatewayConfiguration, TimeInterval> & Sendable) -> Setting {
            Setting(key) { c, r in if let v = r.double(forKey: ConfigKey(key)) { c[keyPath: path] = v } }
        }

        static func count(_ key: String, _ path: any WritableKeyPath<GatewayConfiguration, Int> & Sendable) -> Setting {
            Setting(key) { c, r in if let v = r.int(forKey: ConfigKey(key)) { c[keyPath: path] = v } }
        }
    }
}

/// Collects the reads that found a value they could not use (a provider's type mismatch or a
/// failed conversion), which the reader's optional getters otherwise turn into "not set".
private final class ReadProblems: AccessReporter {
    struct Problem {
        let key: String
        let message: String
    }

    private let problems = Mutex<[Problem]>([])

    var first: Problem? { problems.withLock { $0.first } }

    func report(_ event: AccessEvent) {
        let key = event.metadata.key.components.joined(separator: ".")
        let failed = event.providerResults.first { if case .failure = $0.result { true } else { false } }
        guard failed != nil || event.conversionError != nil else { return }
        let source = failed.map { Self.source($0.providerName, key: key) } ?? ""
        let problem = Problem(key: key, message: "\(source)must be \(Self.expected(event.metadata.valueType))")
        problems.withLock { $0.append(problem) }
    }

    /// Where the value came from, for the message (never the value: it may be a secret).
    private static func source(_ provider: String, key: String) -> String {
        if provider.contains("flags") { return "(from a flag) " }
        if provider.contains("Environment") || provider.contains("KeyMapping") {
            let snake = key.reduce(into: "") { name, character in
                if character.isUppercase { name += "_" }
                name += character.uppercased()
            }
            return "(from the environment, KASPI_GATEWAY_\(snake)) "
        }
        return "(from the configuration file) "
    }

    private static func expected(_ type: ConfigType) -> String {
        switch type {
        case .int: "a whole number"
        case .double: "a number"
        case .bool: "true or false"
        case .stringArray: "a list of strings"
        case .doubleArray: "a list of numbers"
        default: "a string"
        }
    }
}

extension GatewayConfiguration {
    /// Sets the database from one string: a `postgres://` URL, or an SQLite file path.
    public mutating func setDatabase(_ value: String) {
        if value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") {
            postgresURL = value
        } else {
            postgresURL = nil
            sqlitePath = value
        }
    }

    /// The database for people: the SQLite path, or the PostgreSQL host and database
    /// (never the password).
    public var databaseDescription: String {
        guard let postgresURL, let url = URL(string: postgresURL) else { return "SQLite \(sqlitePath)" }
        return "PostgreSQL \(url.host ?? "?"):\(url.port ?? 5432)\(url.path)"
    }
}
