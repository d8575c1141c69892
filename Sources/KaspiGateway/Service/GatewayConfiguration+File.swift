import Foundation

extension GatewayConfiguration {
    /// The keys a JSON configuration file may hold; every one is optional.
    struct File: Decodable {
        var host: String?
        var port: Int?
        var publicURL: String?
        var database: String?
        var apiKeyHashes: [String]?
        var merchantWebhookURL: String?
        var merchantWebhookSecret: String?
        var firstPollAfter: Double?
        var pollInterval: Double?
        var maxPollInterval: Double?
        var expireAfter: Double?
        var qrExpireAfter: Double?
        var workerInterval: Double?
        var eventRetrySeconds: [Double]?
        var instanceID: String?
        var workBatchSize: Int?
        var pollConcurrency: Int?
        var deliveryConcurrency: Int?
        var adminPassword: String?
        var confirmPaidWebhooks: Bool?
        var idempotencyKeyLifetime: Double?
        var latePaymentWindow: Double?
        var latePollInterval: Double?
        var createGracePeriod: Double?
        var eventDeliveryTimeout: Double?
        var refundSettleAfter: Double?
        var maintenanceInterval: Double?
        var idempotencyInterruptedAfter: Double?

        enum CodingKeys: String, CodingKey {
            case host
            case port
            case publicURL = "publicUrl"
            case database
            case apiKeyHashes
            case merchantWebhookURL = "merchantWebhookUrl"
            case merchantWebhookSecret
            case firstPollAfter
            case pollInterval
            case maxPollInterval
            case expireAfter
            case qrExpireAfter
            case workerInterval
            case eventRetrySeconds
            case instanceID = "instanceId"
            case workBatchSize
            case pollConcurrency
            case deliveryConcurrency
            case adminPassword
            case confirmPaidWebhooks
            case idempotencyKeyLifetime
            case latePaymentWindow
            case latePollInterval
            case createGracePeriod
            case eventDeliveryTimeout
            case refundSettleAfter
            case maintenanceInterval
            case idempotencyInterruptedAfter
        }
    }

    /// Reads a JSON configuration file over the defaults.
    ///
    /// - Throws: ``GatewayConfigurationError`` when it cannot be read or parsed.
    public static func load(file path: String) throws(GatewayConfigurationError) -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalid("--config \(path)", "cannot be read") }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw .invalid("--config \(path)", "is not a valid configuration file (\(String(describing: error).prefix(160)))")
        }
        var c = GatewayConfiguration()
        if let v = file.host { c.host = v }
        if let v = file.port { c.port = v }
        c.publicURL = file.publicURL
        if let v = file.database { c.setDatabase(v) }
        if let v = file.apiKeyHashes { c.apiKeyHashes = v }
        c.merchantWebhookURL = file.merchantWebhookURL
        c.merchantWebhookSecret = file.merchantWebhookSecret
        if let v = file.firstPollAfter { c.firstPollAfter = v }
        if let v = file.pollInterval { c.pollInterval = v }
        if let v = file.maxPollInterval { c.maxPollInterval = v }
        if let v = file.expireAfter { c.expireAfter = v }
        if let v = file.qrExpireAfter { c.qrExpireAfter = v }
        if let v = file.workerInterval { c.workerInterval = v }
        if let v = file.eventRetrySeconds { c.eventRetrySeconds = v }
        if let v = file.instanceID { c.instanceID = v }
        if let v = file.workBatchSize { c.workBatchSize = v }
        if let v = file.pollConcurrency { c.pollConcurrency = v }
        if let v = file.deliveryConcurrency { c.deliveryConcurrency = v }
        c.adminPassword = file.adminPassword
        if let v = file.confirmPaidWebhooks { c.confirmPaidWebhooks = v }
        if let v = file.idempotencyKeyLifetime { c.idempotencyKeyLifetime = v }
        if let v = file.latePaymentWindow { c.latePaymentWindow = v }
        if let v = file.latePollInterval { c.latePollInterval = v }
        if let v = file.createGracePeriod { c.createGracePeriod = v }
        if let v = file.eventDeliveryTimeout { c.eventDeliveryTimeout = v }
        if let v = file.refundSettleAfter { c.refundSettleAfter = v }
        if let v = file.maintenanceInterval { c.maintenanceInterval = v }
        if let v = file.idempotencyInterruptedAfter { c.idempotencyInterruptedAfter = v }
        return c
    }

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
