import Foundation
import KaspiPay
import Testing

@Suite("Money, ids and configuration")
struct ModelTests {
    @Test func amountsRejectNegatives() throws {
        #expect(try Amount(tenge: 0).tenge == 0)
        #expect(try Amount(tenge: 5000).tenge == 5000)
        #expect(throws: KaspiError.negativeAmount(-1)) { try Amount(tenge: -1) }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Amount.self, from: Data("-5".utf8)) }
        #expect(Amount(integerLiteral: 1_234_567).formatted == "1\u{202F}234\u{202F}567\u{00A0}₸")
        #expect(Amount.minimumPayment.tenge == 100)
    }

    @Test(arguments: ["A", "ORDER-123", "a.b:c_d-e", String(repeating: "x", count: 64)])
    func validOrderIDs(_ text: String) throws {
        #expect(try OrderID(text).rawValue == text)
    }

    @Test(arguments: ["", String(repeating: "x", count: 65), "ORDER 1", "заказ", "a/b", "a?b", "a\nb", "a#b"])
    func invalidOrderIDs(_ text: String) {
        #expect {
            try OrderID(text)
        } throws: { error in
            guard case KaspiError.invalidOrderID(let value, _) = error else { return false }
            return value == text
        }
    }

    @Test func tradePointIDs() throws {
        let text = "TP-1"
        #expect(try TradePointID(text).rawValue == "TP-1")
        for bad in ["", "a b", "a/b", String(repeating: "1", count: 65)] {
            #expect(throws: ConfigurationError.self) { try TradePointID(bad) }
        }
    }

    @Test func apiKeysAreRedactedEverywhere() throws {
        let key = try APIKey("super-secret-key")
        #expect(key.description == "APIKey(redacted)")
        #expect(key.debugDescription == "APIKey(redacted)")
        #expect("\(key)" == "APIKey(redacted)")
        #expect(String(reflecting: key) == "APIKey(redacted)")
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("super-secret"))
        let configuration = KaspiConfiguration(environment: .test, tradePointID: "TP", apiKey: key)
        var dumpedConfiguration = ""
        dump(configuration, to: &dumpedConfiguration)
        #expect(!dumpedConfiguration.contains("super-secret"))
        #expect(!"\(configuration)".contains("super-secret"))
        #expect(key.revealed == "super-secret-key")
    }

    @Test(arguments: ["", "has space", "tab\there", String(repeating: "k", count: 513)])
    func malformedAPIKeys(_ text: String) {
        #expect {
            try APIKey(text)
        } throws: { error in
            guard let error = error as? ConfigurationError, case .invalidAPIKey = error else { return false }
            return error.code == "CONFIG_INVALID_API_KEY" && (text.count < 4 || !error.description.contains(text))
        }
    }

    @Test func statusesDecodeTolerantly() throws {
        let decoded = try JSONDecoder().decode([PaymentStatus].self, from: Data(#"["PENDING","APPROVED","DECLINED","CANCELLED","REVERSED"]"#.utf8))
        #expect(decoded == [.pending, .approved, .declined, .cancelled, .unknown("REVERSED")])
        #expect(PaymentStatus.unknown("REVERSED").rawValue == "REVERSED")
        #expect(!PaymentStatus.unknown("REVERSED").isFinal)
        #expect(PaymentStatus.approved.isFinal && !PaymentStatus.pending.isFinal)
    }

    @Test func environments() throws {
        #expect(KaspiEnvironment.production.baseURL.absoluteString == "https://pay.kaspi.kz")
        #expect(KaspiEnvironment.test.baseURL.absoluteString == "https://testpay.kaspi.kz")
        #expect(try KaspiEnvironment(parsing: "production") == .production)
        #expect(try KaspiEnvironment(parsing: "TEST") == .test)
        #expect(try KaspiEnvironment(parsing: "http://127.0.0.1:8181") == .custom(URL(string: "http://127.0.0.1:8181")!))
        #expect(throws: ConfigurationError.invalidEnvironment("staging")) { try KaspiEnvironment(parsing: "staging") }
        #expect(throws: ConfigurationError.self) { try KaspiEnvironment.custom(parsing: "ftp://x") }
    }

    @Test func configurationFromTheEnvironment() throws {
        let full = ["KASPI_TRADE_POINT_ID": "TP-9", "KASPI_API_KEY": "k_1", "KASPI_ENV": "https://merchant-api.example"]
        let configuration = try KaspiConfiguration(environment: full)
        #expect(configuration.tradePointID.rawValue == "TP-9")
        #expect(configuration.apiKey.revealed == "k_1")
        #expect(configuration.environment == .custom(URL(string: "https://merchant-api.example")!))
        #expect(configuration.rateLimit == .kaspi)

        // The guide's API has no confirmed host: no default, and no named environment alone.
        #expect(throws: ConfigurationError.missingVariable("KASPI_BASE_URL")) {
            try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k"])
        }
        for name in ["production", "test"] {
            #expect(throws: ConfigurationError.unconfirmedHost(name)) {
                try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_ENV": name])
            }
        }
        let custom = try KaspiConfiguration(environment: [
            "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_BASE_URL": "http://127.0.0.1:8181",
        ])
        #expect(custom.environment == .custom(URL(string: "http://127.0.0.1:8181")!))
        let both = try KaspiConfiguration(environment: [
            "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_ENV": "test", "KASPI_BASE_URL": "http://127.0.0.1:8181",
        ])
        #expect(both.environment == .custom(URL(string: "http://127.0.0.1:8181")!))

        let limited = try KaspiConfiguration(environment: [
            "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_BASE_URL": "http://127.0.0.1:8181", "KASPI_RATE_LIMIT": "30",
        ])
        #expect(limited.rateLimit == .init(requests: 30, per: .seconds(60)))
        #expect(
            try KaspiConfiguration(environment: [
                "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_BASE_URL": "http://127.0.0.1:8181", "KASPI_RATE_LIMIT": "0",
            ]).rateLimit == nil)
        for bad in ["-1", "fast", "100001", "1.5"] {
            #expect(throws: ConfigurationError.invalidRateLimit(bad)) {
                try KaspiConfiguration(environment: [
                    "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_BASE_URL": "http://127.0.0.1:8181", "KASPI_RATE_LIMIT": bad,
                ])
            }
        }
    }

    /// The key never travels in the clear, and a production key only to Kaspi or a host the
    /// merchant named.
    @Test func credentialsGoOnlyWhereTheyAreSafe() throws {
        let base = ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k"]
        func configure(_ extra: [String: String]) throws -> KaspiConfiguration {
            try KaspiConfiguration(environment: base.merging(extra) { $1 })
        }
        #expect(
            throws: ConfigurationError.insecureBaseURL(
                "http://merchant.example", reason: "use https://, or http:// to this machine (127.0.0.1, localhost) only")
        ) {
            try configure(["KASPI_BASE_URL": "http://merchant.example"])
        }
        for loopback in ["http://127.0.0.1:8181", "http://localhost:8181", "http://[::1]:8181"] { _ = try configure(["KASPI_BASE_URL": loopback]) }
        // A production key: to Kaspi's hosts, or to one named as trusted.
        #expect(throws: ConfigurationError.untrustedHost("proxy.example")) {
            try configure(["KASPI_API_KEY": "prod_abc", "KASPI_BASE_URL": "https://proxy.example"])
        }
        #expect(throws: ConfigurationError.untrustedHost("127.0.0.1")) {
            try configure(["KASPI_API_KEY": "prod_abc", "KASPI_BASE_URL": "http://127.0.0.1:8181"])
        }
        #expect(throws: ConfigurationError.untrustedHost("proxy.example")) {
            try configure(["KASPI_ENV": "production", "KASPI_BASE_URL": "https://proxy.example"])
        }
        _ = try configure(["KASPI_API_KEY": "prod_abc", "KASPI_BASE_URL": "https://pay.kaspi.kz"])
        _ = try configure([
            "KASPI_API_KEY": "prod_abc", "KASPI_BASE_URL": "https://proxy.example", "KASPI_TRUSTED_HOST": "other.example, PROXY.example",
        ])
        do throws(ConfigurationError) {
            _ = try KaspiConfiguration(
                environment: base.merging(["KASPI_API_KEY": "prod_secret_value", "KASPI_BASE_URL": "https://proxy.example"]) { $1 })
            Issue.record("expected a refusal")
        } catch {
            #expect(
                error.code == "CONFIG_UNTRUSTED_HOST" && !error.description.contains("prod_secret_value")
                    && error.description.contains("KASPI_TRUSTED_HOST"))
        }
    }

    @Test func configurationErrorsNameTheVariable() {
        #expect(throws: ConfigurationError.missingVariable("KASPI_TRADE_POINT_ID")) {
            try KaspiConfiguration(environment: ["KASPI_API_KEY": "k"])
        }
        #expect(throws: ConfigurationError.missingVariable("KASPI_API_KEY")) {
            try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "  "])
        }
        #expect(throws: ConfigurationError.invalidEnvironment("staging")) {
            try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_ENV": "staging"])
        }
        #expect(throws: ConfigurationError.self) {
            try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_BASE_URL": "not a url"])
        }
        #expect(throws: ConfigurationError.conflictingEnvironment(env: "http://a.example", baseURL: "http://b.example")) {
            try KaspiConfiguration(environment: [
                "KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "k", "KASPI_ENV": "http://a.example", "KASPI_BASE_URL": "http://b.example",
            ])
        }
        do {
            _ = try KaspiConfiguration(environment: ["KASPI_TRADE_POINT_ID": "T P", "KASPI_API_KEY": "k"])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == "CONFIG_INVALID_TRADE_POINT_ID")
            #expect(error.description.contains("malformed"))
        }
    }

    @Test func retryPolicyDelays() {
        let policy = RetryPolicy(maxAttempts: 5, initialDelay: .seconds(1), multiplier: 2, maxDelay: .seconds(5), jitter: 0.5)
        #expect(policy.delay(beforeRetry: 1, random: 0) == .seconds(1))
        #expect(policy.delay(beforeRetry: 2, random: 0) == .seconds(2))
        #expect(policy.delay(beforeRetry: 3, random: 0) == .seconds(4))
        #expect(policy.delay(beforeRetry: 4, random: 0) == .seconds(5))
        #expect(policy.delay(beforeRetry: 9, random: 0) == .seconds(5))
        #expect(policy.delay(beforeRetry: 2, random: 0.999_999_999)! > .milliseconds(999))
        #expect(policy.delay(beforeRetry: 2, random: 0.999_999_999)! < .milliseconds(1001))
        #expect(policy.delay(beforeRetry: 1, random: 0, retryAfter: .seconds(7)) == .seconds(7))
        #expect(policy.delay(beforeRetry: 1, random: 0, retryAfter: .seconds(120)) == nil)
        #expect(RetryPolicy.none.maxAttempts == 1)
    }
}
