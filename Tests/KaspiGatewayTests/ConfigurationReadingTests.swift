import Configuration
import Foundation
import KaspiGateway
import Testing

/// The gateway's settings through swift-configuration: flags over the environment over the
/// file, every key readable from both, and a value that cannot be read refused by name.
@Suite struct ConfigurationReadingTests {
    private func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func refusal(_ body: () async throws -> GatewayConfiguration) async -> String {
        do {
            _ = try await body()
            return "accepted"
        } catch {
            return String(describing: error)
        }
    }

    @Test func flagsWinOverTheEnvironmentWhichWinsOverTheFile() async throws {
        let path = try file(#"{"pollInterval": 5, "host": "127.0.0.2"}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = ["KASPI_GATEWAY_POLL_INTERVAL": "7"]
        let flag = ["pollInterval": ConfigValue(.double(9), isSecret: false)]
        #expect(try await GatewayConfiguration.load(file: path, environment: environment, overrides: flag).pollInterval == 9)
        #expect(try await GatewayConfiguration.load(file: path, environment: environment).pollInterval == 7)
        let fromFile = try await GatewayConfiguration.load(file: path, environment: [:])
        #expect(fromFile.pollInterval == 5 && fromFile.host == "127.0.0.2")
        let defaults = try await GatewayConfiguration.load(file: nil, environment: [:])
        #expect(defaults.pollInterval == GatewayConfiguration().pollInterval && defaults.host == "127.0.0.1")
    }

    @Test func everyKeyIsReadFromTheFileAndFromTheEnvironment() async throws {
        let values: [(key: String, json: String, variable: String)] = [
            ("host", #""0.0.0.0""#, "0.0.0.0"), ("port", "9000", "9000"), ("publicUrl", #""https://pay.example.kz""#, "https://pay.example.kz"),
            ("database", #""postgres://u:p@db/kaspi""#, "postgres://u:p@db/kaspi"),
            ("apiKeyHashes", "[\"\(String(repeating: "a", count: 64))\"]", String(repeating: "a", count: 64)),
            ("merchantWebhookUrl", #""https://shop.example.kz/events""#, "https://shop.example.kz/events"),
            ("merchantWebhookSecret", #""whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0""#, "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
            ("firstPollAfter", "2", "2"), ("pollInterval", "3", "3"), ("maxPollInterval", "4", "4"), ("expireAfter", "5", "5"),
            ("qrExpireAfter", "6", "6"), ("latePaymentWindow", "7", "7"), ("latePollInterval", "8", "8"), ("maintenanceInterval", "9", "9"),
            ("refundSettleAfter", "10", "10"), ("createGracePeriod", "11", "11"), ("workerInterval", "0.5", "0.5"),
            ("pollConcurrency", "12", "12"), ("deliveryConcurrency", "13", "13"), ("eventDeliveryTimeout", "14", "14"),
            ("eventRetrySeconds", "[1, 2.5]", "1,2.5"), ("adminPassword", #""correct horse""#, "correct horse"), ("workBatchSize", "15", "15"),
            ("confirmPaidWebhooks", "false", "false"), ("idempotencyKeyLifetime", "16", "16"), ("idempotencyInterruptedAfter", "17", "17"),
            ("instanceId", #""gw-a""#, "gw-a"), ("mobileReturnUrls", #"["yourapp://"]"#, "yourapp://"),
            ("trustedProxies", #"["10.0.0.0/8", "fd00::/8"]"#, "10.0.0.0/8,fd00::/8"),
        ]
        func check(_ c: GatewayConfiguration) {
            #expect(c.host == "0.0.0.0" && c.port == 9000 && c.publicURL == "https://pay.example.kz")
            #expect(c.postgresURL == "postgres://u:p@db/kaspi" && c.apiKeyHashes == [String(repeating: "a", count: 64)])
            #expect(c.merchantWebhookURL == "https://shop.example.kz/events" && c.merchantWebhookSecret == "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
            #expect([c.firstPollAfter, c.pollInterval, c.maxPollInterval, c.expireAfter, c.qrExpireAfter] == [2, 3, 4, 5, 6])
            #expect([c.latePaymentWindow, c.latePollInterval, c.maintenanceInterval, c.refundSettleAfter, c.createGracePeriod] == [7, 8, 9, 10, 11])
            #expect(c.workerInterval == 0.5 && c.pollConcurrency == 12 && c.deliveryConcurrency == 13 && c.eventDeliveryTimeout == 14)
            #expect(c.eventRetrySeconds == [1, 2.5] && c.adminPassword == "correct horse" && c.workBatchSize == 15 && !c.confirmPaidWebhooks)
            #expect(c.idempotencyKeyLifetime == 16 && c.idempotencyInterruptedAfter == 17 && c.instanceID == "gw-a" && c.hasChosenInstanceID)
            #expect(c.trustedProxies == ["10.0.0.0/8", "fd00::/8"] && c.mobileReturnURLs == ["yourapp://"])
        }
        let path = try file("{" + values.map { "\"\($0.key)\": \($0.json)" }.joined(separator: ", ") + "}")
        defer { try? FileManager.default.removeItem(atPath: path) }
        check(try await GatewayConfiguration.load(file: path, environment: [:]))
        var environment: [String: String] = [:]
        for value in values {
            let snake = value.key.reduce(into: "") { name, character in name += (character.isUppercase ? "_" : "") + character.uppercased() }
            let name = ["merchantWebhookUrl": "EVENTS_URL", "merchantWebhookSecret": "EVENTS_SECRET"][value.key] ?? snake
            environment["KASPI_GATEWAY_\(name)"] = value.variable
        }
        check(try await GatewayConfiguration.load(file: nil, environment: environment))
    }

    @Test func apiKeysFromTheEnvironmentAreKeptOnlyAsTheirHashesAndMustBeLong() async throws {
        let (k1, k2, k3) = (GatewayConfiguration.makeAPIKey(), GatewayConfiguration.makeAPIKey(), GatewayConfiguration.makeAPIKey())
        #expect(k1.count >= GatewayConfiguration.minimumAPIKeyLength && k1 != k2 && k1.hasPrefix("kk_"))
        let c = try await GatewayConfiguration.load(
            file: nil, environment: ["KASPI_GATEWAY_API_KEYS": "\(k1), \(k2)", "KASPI_GATEWAY_READ_KEYS": k3, "KASPI_GATEWAY_PAYMENT_KEYS": k2])
        #expect(c.apiKeyHashes == [GatewayConfiguration.hash(apiKey: k1), GatewayConfiguration.hash(apiKey: k2)])
        #expect(c.readOnlyKeyHashes == [GatewayConfiguration.hash(apiKey: k3)] && c.paymentKeyHashes == [GatewayConfiguration.hash(apiKey: k2)])
        let short = await refusal { try await GatewayConfiguration.load(file: nil, environment: ["KASPI_GATEWAY_READ_KEYS": "short-key"]) }
        #expect(short.contains("KASPI_GATEWAY_READ_KEYS each key must be at least 32 characters") && !short.contains("short-key"))
    }

    @Test func aValueThatCannotBeReadIsRefusedByNameWithoutEchoingIt() async throws {
        let environmentPort = await refusal { try await GatewayConfiguration.load(file: nil, environment: ["KASPI_GATEWAY_PORT": "eighty"]) }
        #expect(
            environmentPort.contains("GATEWAY_CONFIG_INVALID") && environmentPort.contains("KASPI_GATEWAY_PORT")
                && !environmentPort.contains("eighty"))
        let flag = await refusal {
            try await GatewayConfiguration.load(
                file: nil, environment: [:], overrides: ["workBatchSize": ConfigValue(.string("many"), isSecret: false)])
        }
        #expect(flag.contains("workBatchSize (from a flag) must be a whole number"))
        let typed = try file(#"{"database": 5432, "pollInterval": 1}"#)
        defer { try? FileManager.default.removeItem(atPath: typed) }
        let fileDatabase = await refusal { try await GatewayConfiguration.load(file: typed, environment: [:]) }
        #expect(fileDatabase.contains("database (from the configuration file) must be a string"))
        let list = await refusal { try await GatewayConfiguration.load(file: nil, environment: ["KASPI_GATEWAY_EVENT_RETRY_SECONDS": "5,soon"]) }
        #expect(list.contains("eventRetrySeconds") && list.contains("a list of numbers"))
        let misspelt = try file(#"{"pollIntervall": 5}"#)
        defer { try? FileManager.default.removeItem(atPath: misspelt) }
        let unknown = await refusal { try await GatewayConfiguration.load(file: misspelt, environment: [:]) }
        #expect(unknown.contains("unknown key \"pollIntervall\""))
        let notJSON = try file("pollInterval = 5")
        defer { try? FileManager.default.removeItem(atPath: notJSON) }
        #expect(await refusal { try await GatewayConfiguration.load(file: notJSON, environment: [:]) }.contains("is not a valid configuration file"))
        #expect(await refusal { try await GatewayConfiguration.load(file: "/nonexistent/gateway.json", environment: [:]) }.contains("cannot be read"))
    }

    @Test func aTrustedProxyThatIsNoNetworkIsRefusedAtStart() async throws {
        var c = try await GatewayConfiguration.load(file: nil, environment: ["KASPI_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example.kz"])
        c.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "k")]
        #expect(throws: GatewayConfigurationError.self) { try c.validate() }
        c.trustedProxies = ["10.0.0.0/8", "127.0.0.1"]
        try c.validate()
    }

    @Test func mobileReturnPrefixesMustBeSafeAndEndTheirHost() async throws {
        var c = GatewayConfiguration()
        c.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "k")]
        for bad in ["https://shop.example.kz", "javascript:", "JavaScript://x", "data:text/html", "not a url", "relative/path"] {
            c.mobileReturnURLs = [bad]
            #expect(throws: GatewayConfigurationError.self, "\(bad)") { try c.validate() }
        }
        c.mobileReturnURLs = ["yourapp://", "https://shop.example.kz/app/"]
        try c.validate()
        let fromEnvironment = try await GatewayConfiguration.load(
            file: nil, environment: ["KASPI_GATEWAY_MOBILE_RETURN_URLS": "yourapp://,https://shop.example.kz/app/"])
        #expect(fromEnvironment.mobileReturnURLs == ["yourapp://", "https://shop.example.kz/app/"])
    }

    @Test func theDocumentedKeysAreTheReadOnes() throws {
        // docs/gateway.md's table names every file key; each must be read, and each read key documented.
        let docs = try String(
            contentsOfFile: #filePath.replacingOccurrences(of: "Tests/KaspiGatewayTests/ConfigurationReadingTests.swift", with: "docs/gateway.md"),
            encoding: .utf8)
        let table = docs.components(separatedBy: "## Configuration").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        var documented: Set<String> = []
        for line in table.split(separator: "\n") where line.hasPrefix("|") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
            guard cells.count > 2 else { continue }
            for part in cells[2].split(separator: "`").enumerated() where part.offset % 2 == 1 { documented.insert(String(part.element)) }
        }
        #expect(documented == Set(GatewayConfiguration.fileKeys))
    }
}
