import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiWeb
import Testing

@testable import KaspiGateway

/// Runs `body` against the gateway's router in Hummingbird's router test mode, over a fresh
/// SQLite store, with a provider that is never called and the dashboard password
/// `admin-pass-123` (unless `configure` changes it).
func withGatewayRouter(
    configure: (inout GatewayConfiguration) -> Void = { _ in }, _ body: @Sendable (any TestClientProtocol, Gateway) async throws -> Void
) async throws {
    let handle = try await Backend.sqlite.open()
    let (gateway, transport) = try SignInTests.gateway(handle.store) { configuration in
        configuration.adminPassword = "admin-pass-123"
        configure(&configuration)
    }
    do {
        try await gateway.prepareAdmin()
        let app = Application(router: try gateway.router())
        try await app.test(.router) { client in try await body(client, gateway) }
    } catch {
        await gateway.shutdown()
        try await transport.shutdown()
        try await handle.close()
        throw error
    }
    await gateway.shutdown()
    try await transport.shutdown()
    try await handle.close()
}

/// Signs in to the dashboard as a fresh browser would, in router test mode: the sign-in
/// form, its CSRF token and cookie, then the form posted.
func routerSignIn(_ client: any TestClientProtocol, _ password: String) async throws -> TestResponse {
    let form = try await client.execute(uri: "/admin/login", method: .get)
    let token = try #require(Browser.hidden("csrf", in: String(buffer: form.body)))
    let cookie = try #require(form.headers[.setCookie]?.split(separator: ";").first.map(String.init))
    let body = "csrf=\(token)&password=\(password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
    return try await client.execute(
        uri: "/admin/login", method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
        body: ByteBuffer(string: body))
}

/// Routes whose answers need no Kaspi and no running server, in Hummingbird's router test mode.
@Suite("The gateway's routes, in router test mode")
struct RouterTests {
    @Test("every series whose labels are known is there at zero before the first event")
    func metricsStartAtZero() async throws {
        try await withGatewayRouter { client, _ in
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            for line in [
                #"kaspi_gateway_webhooks_total{outcome="rejected"} 0"#, #"kaspi_gateway_webhooks_total{outcome="unconfirmed"} 0"#,
                #"kaspi_gateway_refunds_total{outcome="unknown"} 0"#, #"kaspi_gateway_admin_sign_ins_total{outcome="throttled"} 0"#,
                #"kaspi_gateway_event_deliveries_total{outcome="failed"} 0"#, #"kaspi_gateway_transitions_total{to="paid"} 0"#,
                #"kaspi_gateway_status_polls_total{outcome="unchanged"} 0"#, "kaspi_gateway_late_polls_total 0",
                #"kaspi_gateway_kaspi_call_duration_seconds_count{call="status"} 0"#,
            ] {
                #expect(metrics.contains(line), "\(line)")
            }
        }
    }

    @Test("errors are JSON with a stable code, whatever refused the request")
    func errorsAreJSON() async throws {
        try await withGatewayRouter { client, _ in
            let unauthorized = try await client.execute(uri: "/v1/orders/ord_x", method: .get)
            #expect(unauthorized.status == .unauthorized)
            #expect(
                String(buffer: unauthorized.body)
                    == #"{"error":{"code":"UNAUTHORIZED","message":"Send Authorization: Bearer <your gateway API key>."}}"#)
            let auth: HTTPFields = [.authorization: "Bearer k", .contentType: "application/json"]
            let missing = try await client.execute(uri: "/v1/orders/ord_x", method: .get, headers: auth)
            #expect(missing.status == .notFound && String(buffer: missing.body).contains(#""code":"ORDER_NOT_FOUND""#))
            let typed = try await client.execute(uri: "/v1/checkouts", method: .post, headers: auth, body: ByteBuffer(string: #"{"amount":"100"}"#))
            #expect(typed.status == .badRequest && String(buffer: typed.body).contains("amount must be a whole number of tenge."))
            let absent = try await client.execute(
                uri: "/v1/checkouts", method: .post, headers: auth, body: ByteBuffer(string: #"{"description":"x"}"#))
            #expect(String(buffer: absent.body).contains("amount is required."))
            let large = try await client.execute(
                uri: "/v1/checkouts", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"description":""# + String(repeating: "x", count: 70_000) + "\"}"))
            #expect(
                large.status == .contentTooLarge && String(buffer: large.body).contains("BODY_TOO_LARGE"),
                "\(large.status) \(String(buffer: large.body))")
            let huge = try await client.execute(
                uri: "/webhooks/kaspi", method: .post, body: ByteBuffer(string: String(repeating: " ", count: 20_000)))
            #expect(huge.status == .contentTooLarge && String(buffer: huge.body).contains("WEBHOOK_BODY_TOO_LARGE"))
            let webhook = try await client.execute(uri: "/webhooks/kaspi", method: .post, body: ByteBuffer(string: "not json"))
            #expect(webhook.status == .badRequest && webhook.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test("the payer's pages and the stylesheet come from the templates")
    func pagesAndAssets() async throws {
        try await withGatewayRouter { client, _ in
            let unknown = try await client.execute(uri: "/pay/return/ord_nope", method: .get)
            #expect(unknown.status == .notFound)
            let page = String(buffer: unknown.body)
            #expect(page.contains("<title>Платёж не найден</title>") && page.contains(#"href="/assets/gateway.css""#))
            #expect(unknown.headers[try #require(HTTPField.Name("X-Frame-Options"))] == "DENY")
            let css = try await client.execute(uri: "/assets/gateway.css", method: .get)
            #expect(css.status == .ok && css.headers[.contentType] == "text/css; charset=utf-8" && String(buffer: css.body).contains(".state-paid"))
            #expect(try await client.execute(uri: "/assets/nope.css", method: .get).status == .notFound)
            let link = try await client.execute(uri: "/l/<script>", method: .get)
            #expect(link.status == .notFound && !String(buffer: link.body).contains("<script>"))
        }
    }
}

@Suite("Page templates")
struct PageLibraryTests {
    @Test("a product whose page template is missing does not start, and says which one")
    func aMissingTemplateStopsTheStart() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "<p>{{name}}</p>".write(to: folder.appendingPathComponent("hello.mustache"), atomically: true, encoding: .utf8)
        #expect {
            try PageLibrary(bundle: "Nothing.resources", folder: "Templates", sourceFolder: folder.path, required: ["hello", "absent"])
        } throws: { error in
            "\(error)".contains("PAGES_UNAVAILABLE") && "\(error)".contains("absent.mustache")
        }
        let pages = try PageLibrary(bundle: "Nothing.resources", folder: "Templates", sourceFolder: folder.path, required: ["hello"])
        // Values are escaped by default.
        #expect(pages.render("hello", ["name": "<b>&'"]) == "<p>&lt;b&gt;&amp;&#39;</p>")
    }
}
