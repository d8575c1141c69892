import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import Testing

/// A minimal browser: keeps cookies, posts forms, reads hidden fields, and asks for pages in
/// `language` (English unless told: these tests read the dashboard's English words).
final class Browser: @unchecked Sendable {
    let base: String
    let language: String?
    private var cookies: [String: String] = [:]
    /// The last page's once-only form token, sent with the next form as a browser would.
    private(set) var once: String?
    init(base: String, language: String? = "en") {
        self.base = base
        self.language = language
    }

    private func cookieHeader() -> [String: String] {
        var headers = cookies.isEmpty ? [:] : ["Cookie": cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")]
        if let language { headers["Accept-Language"] = language }
        return headers
    }

    private func remember(_ result: HTTPResult) {
        guard let header = result.headers["set-cookie"], let pair = header.split(separator: ";").first else { return }
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return }
        if parts[1].isEmpty { cookies[parts[0]] = nil } else { cookies[parts[0]] = parts[1] }
    }

    /// The cookie jar, as a `Cookie` header (to replay it elsewhere).
    var cookieValue: String { cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }

    func get(_ path: String) async throws -> HTTPResult {
        let result = try await http(.GET, base + path, headers: cookieHeader())
        remember(result)
        if let token = Self.hidden("once", in: result.body) { once = token }
        return result
    }

    func post(_ path: String, _ fields: [String: String]) async throws -> HTTPResult {
        var fields = fields
        if fields["once"] == nil, let once { fields["once"] = once }
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        var headers = cookieHeader()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        let result = try await http(.POST, base + path, body: body, headers: headers)
        remember(result)
        if let token = Self.hidden("once", in: result.body) { once = token }
        return result
    }

    static func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}

@Suite("The admin dashboard")
struct DashboardTests {
    @Test("the dashboard speaks Russian by default, Kazakh when asked, with tenge and Kazakhstan's time; its forms answer in the page's language")
    func theDashboardSpeaksThePagesLanguage() async throws {
        try await withStack(.sqlite) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":15000,"merchantReference":"lang-1"}"#)
            let id = try #require(created.json["id"] as? String)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))

            // No Accept-Language: the gateway's default, Russian.
            let browser = Browser(base: s.adminURL, language: nil)
            let form = try await browser.get("/admin/login")
            #expect(form.body.contains(#"<html lang="ru">"#) && form.body.contains("Пароль") && form.headers["content-language"] == "ru")
            let token = try #require(Browser.hidden("csrf", in: form.body))
            let wrong = try await browser.post("/admin/login", ["csrf": token, "password": "nope"])
            #expect(wrong.status == 401 && wrong.body.contains("Неверный пароль"))
            _ = try await browser.post("/admin/login", ["csrf": token, "password": "admin-pass-123"])
            let orders = try await browser.get("/admin")
            #expect(orders.body.contains(#"<html lang="ru">"#) && orders.body.contains(">Заказы</a>") && orders.body.contains(">Выйти<"))
            #expect(orders.body.contains("15\u{00A0}000\u{00A0}₸") && orders.body.contains(#"data-state="paid">оплачен"#))
            #expect(orders.body.contains("Создан (UTC+5)"), "times are Kazakhstan's, and the column says so")

            // ?lang=kk switches and is remembered by the switcher's cookie.
            let kazakh = try await browser.get("/admin/orders/\(id)?lang=kk")
            #expect(kazakh.headers["set-cookie"]?.contains("kaspikit_lang=kk") == true)
            #expect(
                kazakh.body.contains(#"<html lang="kk">"#) && kazakh.body.contains("<h2>Тарих</h2>") && kazakh.body.contains("Уақыты (UTC+5)")
                    && kazakh.body.contains(">төленді<"))
            #expect(kazakh.body.contains(#"aria-current="page">Қазақша"#))
            let settings = try await browser.get("/admin/settings")
            #expect(settings.body.contains(#"<html lang="kk">"#) && settings.body.contains("Әдепкі тіл"))
            // A form's answer, in the language of the page it came from.
            let refunded = try await browser.post(
                "/admin/orders/\(id)/refund", ["csrf": try #require(Browser.hidden("csrf", in: kazakh.body)), "amount": "5000"])
            let after = try await browser.get(try #require(refunded.headers["location"]))
            #expect(after.body.contains("Қайтарылды; барлығы 15\u{00A0}000\u{00A0}₸ ішінен 5\u{00A0}000\u{00A0}₸ қайтарылды."), "\(after.body)")
            // An English browser without the cookie reads English.
            let english = Browser(base: s.adminURL, language: "en-US,en;q=0.9")
            let englishForm = try await english.get("/admin/login")
            #expect(englishForm.body.contains(#"<html lang="en">"#) && englishForm.body.contains("Password"))
        }
    }

    @Test(arguments: Backend.available)
    func signInReviewRefundLinksEventsSettingsSignOut(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":8000,"merchantReference":"dash-1"}"#)
            let id = try #require(created.json["id"] as? String)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))

            let browser = Browser(base: s.adminURL)
            // Signed out: every page sends to the sign-in form.
            #expect(try await browser.get("/admin").headers["location"] == "/admin/login")
            #expect(try await browser.get("/admin/settings").headers["location"] == "/admin/login")
            let form = try await browser.get("/admin/login")
            #expect(form.headers["set-cookie"]?.contains("HttpOnly") == true && form.headers["set-cookie"]?.contains("SameSite=Strict") == true)
            let loginToken = try #require(Browser.hidden("csrf", in: form.body))
            let wrong = try await browser.post("/admin/login", ["csrf": loginToken, "password": "nope"])
            #expect(wrong.status == 401 && wrong.body.contains("Wrong password"))
            let forged = try await Browser(base: s.adminURL).post("/admin/login", ["csrf": "x", "password": "admin-pass-123"])
            #expect(forged.status == 403)
            let signedIn = try await browser.post("/admin/login", ["csrf": loginToken, "password": "admin-pass-123"])
            #expect(signedIn.status == 303 && signedIn.headers["location"] == "/admin")
            let sessionCookie = try #require(signedIn.headers["set-cookie"])
            #expect(sessionCookie.contains("HttpOnly") && sessionCookie.contains("SameSite=Strict"))

            // Orders, filtered and searched.
            let orders = try await browser.get("/admin?status=paid")
            #expect(orders.status == 200 && orders.body.contains(id) && orders.body.contains("dash-1"))
            #expect(try await browser.get("/admin?status=declined").body.contains(id) == false)
            #expect(try await browser.get("/admin?search=dash-1").body.contains(id))

            // The order's page: timeline, events, and a refund form protected by CSRF.
            let page = try await browser.get("/admin/orders/\(id)")
            #expect(page.body.contains("Timeline") && page.body.contains("transition") && page.body.contains("order.paid"))
            let csrf = try #require(Browser.hidden("csrf", in: page.body))
            let noToken = try await browser.post("/admin/orders/\(id)/refund", ["amount": "100"])
            #expect(noToken.status == 403)
            #expect(try await s.order(id)?.refundedAmount == 0)
            let refunded = try await browser.post("/admin/orders/\(id)/refund", ["csrf": csrf, "amount": "3000"])
            #expect(refunded.status == 303)
            let after = try await browser.get(try #require(refunded.headers["location"]))
            #expect(after.body.contains("Refunded; 3\u{00A0}000\u{00A0}₸ of 8\u{00A0}000\u{00A0}₸"))
            #expect(try await s.order(id)?.refundedAmount == 3000)
            // The same form sent again (a double-click, a resubmitted page) does nothing more.
            let again = try await browser.post(
                "/admin/orders/\(id)/refund", ["csrf": csrf, "amount": "3000", "once": try #require(Browser.hidden("once", in: page.body))])
            #expect(again.status == 409 && again.body.contains("already sent"))
            #expect(try await s.order(id)?.refundedAmount == 3000)
            let rest = try await browser.post("/admin/orders/\(id)/refund", ["csrf": csrf, "amount": ""])
            #expect(try await browser.get(try #require(rest.headers["location"])).body.contains("8000 of 8000"))

            // Payment links: create, show the QR and the share links.
            let link = try await browser.post("/admin/links", ["csrf": csrf, "amount": "2500", "description": "Dashboard invoice"])
            let linkPage = try await browser.get(try #require(link.headers["location"]))
            #expect(
                linkPage.body.contains("data:image/png;base64,") && linkPage.body.contains("https://wa.me/?text=")
                    && linkPage.body.contains("sms:?&amp;body="))
            #expect(try await browser.get("/admin/links").body.contains("Dashboard invoice"))

            // Events: the delivery log and a re-send.
            let events = try await browser.get("/admin/events")
            #expect(events.body.contains("order.paid") && events.body.contains("refund.succeeded"))
            let messageID = try #require(try await s.gateway.store.outboxMessages(orderID: id, limit: 10).first?.id)
            let resend = try await browser.post("/admin/events/\(messageID)/resend", ["csrf": csrf])
            #expect(try await browser.get(try #require(resend.headers["location"])).body.contains("queued for delivery again"))

            // Settings show the configuration with its secrets redacted.
            let settings = try await browser.get("/admin/settings")
            #expect(settings.body.contains("1 configured (stored as SHA-256)") && settings.body.contains("whsec_… (redacted)"))
            #expect(!settings.body.contains(s.webhookSecret) && !settings.body.contains("admin-pass-123"))
            for hash in s.gateway.configuration.apiKeyHashes { #expect(!settings.body.contains(hash)) }

            // Signing out ends the session, even for a copy of its cookie.
            let stolen = browser.cookieValue
            let out = try await browser.post("/admin/logout", ["csrf": csrf])
            #expect(try await http(.GET, s.adminURL + "/admin", headers: ["Cookie": stolen]).headers["location"] == "/admin/login")
            #expect(out.headers["location"] == "/admin/login")
            #expect(try await browser.get("/admin").headers["location"] == "/admin/login")
        }
    }

    @Test func aGeneratedPasswordIsShownOnceAndKept() async throws {
        let handle = try await Backend.sqlite.open()
        var configuration = GatewayConfiguration()
        configuration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "k")]
        let provider = NoProvider()
        let first = Gateway(configuration: configuration, store: handle.store, provider: provider)
        let password = try #require(try await first.prepareAdmin())
        #expect(password.count >= 16)
        let second = Gateway(configuration: configuration, store: handle.store, provider: provider)
        #expect(try await second.prepareAdmin() == nil)
        await first.shutdown()
        await second.shutdown()
        try await handle.close()
    }
}

/// A provider for tests that never reach it.
struct NoProvider: PaymentProvider {
    let name = "none"
    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        throw ProviderError(code: "NONE", message: "none")
    }
    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR { throw ProviderError(code: "NONE", message: "none") }
    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus { throw ProviderError(code: "NONE", message: "none") }
}
