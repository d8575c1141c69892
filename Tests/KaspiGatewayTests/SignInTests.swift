import Foundation
import HTTPTypes
import Hummingbird
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayAsyncHTTPClient
import NIOCore
import Testing

@testable import KaspiGateway

@Suite("Dashboard sign-in hardening")
struct SignInTests {
    /// Signs in with `password` as a fresh browser would.
    static func signIn(_ base: String, _ password: String) async throws -> (HTTPResult, Browser) {
        let browser = Browser(base: base)
        let form = try await browser.get("/admin/login")
        let csrf = try #require(Browser.hidden("csrf", in: form.body))
        return (try await browser.post("/admin/login", ["csrf": csrf, "password": password]), browser)
    }

    @Test("failed sign-ins are throttled per client address, before the password is checked")
    func failuresAreThrottled() async throws {
        try await withGatewayRouter { client, _ in
            for _ in 0..<5 {
                let wrong = try await routerSignIn(client, "not-the-password")
                #expect(wrong.status == .unauthorized)
            }
            // Even the right password is refused now, with when to come back.
            let refused = try await routerSignIn(client, "admin-pass-123")
            #expect(refused.status == .tooManyRequests)
            #expect(Int(refused.headers[.retryAfter] ?? "") ?? 0 > 0)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"kaspi_gateway_admin_sign_ins_total{outcome="refused"} 5"#))
            #expect(metrics.contains(#"kaspi_gateway_admin_sign_ins_total{outcome="throttled"} 1"#))
        }
    }

    @Test("guesses sent at once are counted before any password is hashed: 20 at once get 5 tries")
    func concurrentGuessesGetNoMoreTries() async throws {
        try await withGatewayRouter { client, _ in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<20 { group.addTask { try await routerSignIn(client, "not-the-password").status } }
                var statuses: [HTTPResponse.Status] = []
                for try await status in group { statuses.append(status) }
                return statuses
            }
            #expect(statuses.filter { $0 == .unauthorized }.count == 5, "\(statuses)")
            #expect(statuses.filter { $0 == .tooManyRequests }.count == 15)
        }
    }

    @Test("a new password ends every session signed in with the old one, on every instance")
    func changingThePasswordEndsSessions() async throws {
        let handle = try await Backend.sqlite.open()
        let (first, transport) = try Self.gateway(handle.store) { $0.adminPassword = "first-password" }
        try await first.prepareAdmin()
        let token = try #require(first.adminSignIn.newAdminSessionToken())
        #expect(await first.adminSignIn.adminSession(token: token) != nil)
        // Restarted with the same password: the session lives on (another instance honours it too).
        let (same, second) = try Self.gateway(handle.store) { $0.adminPassword = "first-password" }
        try await same.prepareAdmin()
        #expect(await same.adminSignIn.adminSession(token: token) != nil)
        // Restarted with a new password: it is over.
        let (changed, third) = try Self.gateway(handle.store) { $0.adminPassword = "second-password" }
        try await changed.prepareAdmin()
        #expect(await changed.adminSignIn.adminSession(token: token) == nil)
        let fresh = try #require(changed.adminSignIn.newAdminSessionToken())
        #expect(await changed.adminSignIn.adminSession(token: fresh) != nil)
        for gateway in [first, same, changed] { await gateway.shutdown() }
        for transport in [transport, second, third] { try await transport.shutdown() }
        try await handle.close()
    }

    @Test func theThrottleCountsPerClientAndInAllOverAWindow() {
        let throttle = SignInThrottle(perClient: 3, global: 5, window: 60)
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        for i in 0..<3 { throttle.failed(client: "a", now: t0.addingTimeInterval(Double(i))) }
        #expect(throttle.retryAfter(client: "a", now: t0.addingTimeInterval(3)) == 57)
        #expect(throttle.retryAfter(client: "b", now: t0.addingTimeInterval(3)) == nil)
        // Two more from elsewhere reach the global limit: everyone waits.
        throttle.failed(client: "b", now: t0.addingTimeInterval(4))
        throttle.failed(client: "c", now: t0.addingTimeInterval(5))
        #expect(throttle.retryAfter(client: "d", now: t0.addingTimeInterval(6)) == 54)
        // The window slides: a minute later all may try again.
        #expect(throttle.retryAfter(client: "a", now: t0.addingTimeInterval(66)) == nil)
        #expect(throttle.retryAfter(client: "d", now: t0.addingTimeInterval(66)) == nil)
        // A success forgets the address's failures.
        for i in 0..<3 { throttle.failed(client: "e", now: t0.addingTimeInterval(100 + Double(i))) }
        throttle.succeeded(client: "e")
        #expect(throttle.retryAfter(client: "e", now: t0.addingTimeInterval(104)) == nil)
    }

    @Test func passwordsArePBKDF2WithARandomSaltAnd600000Rounds() async throws {
        // RFC 7914's PBKDF2-HMAC-SHA256 test vector (P = "passwd", S = "salt", c = 1).
        let vector = AdminSignIn.pbkdf2("passwd", salt: Array("salt".utf8), rounds: 1)
        #expect(vector.map { String(format: "%02x", $0) }.joined().hasPrefix("55ac046e56e3089fec1691c22544b605"))
        let a = AdminSignIn.hashPassword("same password")
        let b = AdminSignIn.hashPassword("same password")
        #expect(a.rounds >= 600_000 && a.salt.count == 16 && a.salt != b.salt && a.hash != b.hash)
        #expect(AdminSignIn.decodePassword(AdminSignIn.encodePassword(a))?.hash == a.hash)
        // A generated password is stored with today's rounds.
        try await withGatewayRouter(configure: { $0.adminPassword = nil }) { _, gateway in
            let stored = try #require(try await gateway.store.setting(AdminSignIn.passwordSetting))
            #expect(AdminSignIn.decodePassword(stored)?.rounds == 600_000)
        }
    }

    @Test("the session cookie is Secure when the public URL is https")
    func secureCookieOverHTTPS() async throws {
        try await withGatewayRouter(configure: { $0.publicURL = "https://pay.shop.example" }) { client, _ in
            let signedIn = try await routerSignIn(client, "admin-pass-123")
            #expect(signedIn.status == .seeOther)
            #expect(signedIn.headers[.setCookie]?.contains("; Secure") == true)
        }
        try await withGatewayRouter { client, _ in
            let signedIn = try await routerSignIn(client, "admin-pass-123")
            #expect(signedIn.status == .seeOther)
            #expect(signedIn.headers[.setCookie]?.contains("Secure") == false)
        }
    }

    @Test("query values are escaped on the dashboard's links")
    func queryValuesAreEscaped() async throws {
        try await withStack(.sqlite) { s in
            for i in 0..<51 { _ = try await s.api(.POST, "/v1/checkouts", #"{"amount":\#(1000 + i)}"#) }
            let (_, browser) = try await Self.signIn(s.adminURL, "admin-pass-123")
            let hostile = #""><script>alert(1)</script>"#
            let page = try await browser.get("/admin?status=\(hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
            #expect(page.status == 200)
            #expect(page.body.contains("Older orders"))
            #expect(!page.body.contains("<script>alert(1)</script>"))
            #expect(page.body.contains("status=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"))
        }
    }

    /// A gateway over `store` whose provider is never called.
    static func gateway(
        _ store: any GatewayStore, _ configure: (inout GatewayConfiguration) -> Void = { _ in }
    ) throws -> (Gateway, AsyncHTTPClientTransport) {
        var configuration = GatewayConfiguration()
        configuration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "k")]
        configure(&configuration)
        let kaspi = KaspiConfiguration(
            environment: .custom(try #require(URL(string: "http://127.0.0.1:9"))), tradePointID: "TP", apiKey: try APIKey("kaspi_key"))
        let transport = AsyncHTTPClientTransport()
        return (
            Gateway(
                configuration: configuration, store: store,
                provider: KaspiPayProvider(client: KaspiClient(configuration: kaspi, transport: transport))), transport
        )
    }

    @Test("a password hash from an earlier version (20,000 rounds) still signs in, and is stored again with 600,000")
    func legacyHashesAreUpgraded() async throws {
        let handle = try await Backend.sqlite.open()
        // What version 0.1 stored for a generated password: base64 salt "." base64 hash.
        let salt = Array("legacy-salt-1234".utf8)
        let legacy =
            Data(salt).base64EncodedString() + "." + Data(AdminSignIn.pbkdf2("legacy-password", salt: salt, rounds: 20_000)).base64EncodedString()
        _ = try await handle.store.setting("admin.password", orInsert: legacy)
        let (gateway, transport) = try Self.gateway(handle.store)
        #expect(try await gateway.prepareAdmin() == nil, "no new password is generated over the old one")
        #expect(try await handle.store.setting(AdminSignIn.passwordSetting) == nil)
        #expect(await !gateway.adminSignIn.verifyAdminPassword("wrong-password"))
        #expect(try await handle.store.setting(AdminSignIn.passwordSetting) == nil)
        #expect(await gateway.adminSignIn.verifyAdminPassword("legacy-password"))
        let upgraded = try #require(try await handle.store.setting(AdminSignIn.passwordSetting).flatMap(AdminSignIn.decodePassword))
        #expect(upgraded.rounds == 600_000 && upgraded.hash == AdminSignIn.pbkdf2("legacy-password", salt: upgraded.salt, rounds: 600_000))
        #expect(await gateway.adminSignIn.verifyAdminPassword("legacy-password"))
        // A restarted gateway reads the upgraded hash.
        let (restarted, second) = try Self.gateway(handle.store)
        try await restarted.prepareAdmin()
        #expect(await restarted.adminSignIn.verifyAdminPassword("legacy-password"))
        await gateway.shutdown()
        await restarted.shutdown()
        try await transport.shutdown()
        try await second.shutdown()
        try await handle.close()
    }

    @Test("when the database cannot say whether a session was signed out, the session is refused")
    func theSignOutCheckFailsClosed() async throws {
        let handle = try await Backend.sqlite.open()
        let (gateway, transport) = try Self.gateway(handle.store) { $0.adminPassword = "admin-pass-123" }
        try await gateway.prepareAdmin()
        let token = try #require(gateway.adminSignIn.newAdminSessionToken())
        #expect(await gateway.adminSignIn.adminSession(token: token) != nil)
        try await handle.store.close()
        #expect(await gateway.adminSignIn.adminSession(token: token) == nil)
        await gateway.shutdown()
        try await transport.shutdown()
        try? await handle.close()
    }
}
