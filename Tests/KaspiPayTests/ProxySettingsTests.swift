import KaspiPay
import Testing

/// The forward proxy Kaspi QR API calls leave through: which variable wins, what is refused.
@Suite struct ProxySettingsTests {
    static let base = [
        "KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "test_0f8fad5b-d9cb-469f-a165-70867728950e", "KASPI_BASE_URL": "http://127.0.0.1:8181",
    ]

    func settings(_ extra: [String: String]) throws -> KaspiQRAPI.Settings {
        try KaspiQRAPI.Settings(environment: Self.base.merging(extra) { $1 })
    }

    @Test func ownVariableThenTheStandardOneMinusNoProxy() throws {
        #expect(try settings([:]).proxy == nil)
        let own = try #require(try settings(["KASPI_QR_PROXY": "http://10.0.0.5:8888", "HTTPS_PROXY": "http://10.0.0.6:3128"]).proxy)
        #expect(own.host == "10.0.0.5" && own.port == 8888 && own.user == nil)
        #expect(try settings(["HTTPS_PROXY": "10.0.0.6"]).proxy == KaspiQRAPI.Proxy(host: "10.0.0.6", port: 3128))
        #expect(try settings(["https_proxy": "http://10.0.0.7:3128"]).proxy?.host == "10.0.0.7")
        // NO_PROXY exempts the standard variable only: KASPI_QR_PROXY is asked for by name.
        #expect(try settings(["HTTPS_PROXY": "http://10.0.0.6:3128", "NO_PROXY": "example.org, 127.0.0.1:8181"]).proxy == nil)
        #expect(try settings(["HTTPS_PROXY": "http://10.0.0.6:3128", "no_proxy": "*"]).proxy == nil)
        #expect(try settings(["HTTPS_PROXY": "http://10.0.0.6:3128", "NO_PROXY": "127.0.0.2"]).proxy != nil)
        #expect(try settings(["KASPI_QR_PROXY": "http://10.0.0.5:8888", "NO_PROXY": "*"]).proxy != nil)
        let production = try KaspiQRAPI.Settings(environment: [
            "KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "test_0f8fad5b-d9cb-469f-a165-70867728950e", "KASPI_ENV": "test",
            "HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".kaspi.kz",
        ])
        #expect(production.proxy == nil)
    }

    @Test func credentialsAreKeptAndNeverDescribed() throws {
        let proxy = try #require(try settings(["KASPI_QR_PROXY": "http://egress:s%40cret@proxy.internal:3128"]).proxy)
        #expect(proxy.user == "egress" && proxy.password == "s@cret")
        #expect(proxy.description == "proxy.internal:3128")
        #expect(!"\(proxy)".contains("cret"))
    }

    @Test(arguments: ["https://proxy:3128", "socks5://proxy:1080", "http://", "http://proxy:99999", "http://proxy:3128/path", "http://u:secret@:1"])
    func malformedProxiesAreRefusedWithoutTheirValue(_ value: String) throws {
        #expect {
            try settings(["KASPI_QR_PROXY": value])
        } throws: { error in
            guard let error = error as? ConfigurationError, error.code == "CONFIG_INVALID_PROXY" else { return false }
            return !error.description.contains("secret") && error.description.contains("KASPI_QR_PROXY")
        }
    }
}
