import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiSandbox
import Testing

/// The dashboard on the Kaspi QR API: the profile, trade points and devices, each scheme's
/// refunds, remote invoices, deadlines in the order's page.
@Suite("Dashboard on the Kaspi QR API")
struct QRDashboardTests {
    static func signedIn(_ s: QRStack) async throws -> (Browser, String) {
        let (result, browser) = try await SignInTests.signIn(s.adminURL, "admin-pass-123")
        #expect(result.status == 303)
        let page = try await browser.get("/admin/kaspi")
        let csrf = try #require(Browser.hidden("csrf", in: page.body))
        return (browser, csrf)
    }

    static func paidOrder(_ s: QRStack, amount: Int = 9000) async throws -> String {
        let (id, _) = try await s.checkout(amount: amount)
        let purchase = try #require(try await s.purchase(id))
        try await s.sandbox.act(.scan, paymentID: purchase.id)
        try await s.sandbox.act(.confirm, paymentID: purchase.id)
        #expect(try await s.advance(6, until: id, is: .paid))
        return id
    }

    @Test("r1: the profile, trade points, devices redacted, deadlines, and refunds made in the Kaspi Pay app")
    func r1() async throws {
        try await withQRStack(.sqlite, scheme: .r1) { s in
            let (browser, csrf) = try await Self.signedIn(s)
            let kaspi = try await browser.get("/admin/kaspi")
            #expect(kaspi.body.contains("Kaspi QR API, scheme r1") && kaspi.body.contains("Sandbox Shop (Abay 1)"))
            #expect(kaspi.body.contains(s.device.id) && !kaspi.body.contains(s.device.token) && kaspi.body.contains(s.device.redactedToken))
            #expect(kaspi.body.contains("href=\"/admin/kaspi\">Kaspi</a>") && !kaspi.body.contains("/admin/invoices\">Invoices"))
            let (pending, _) = try await s.checkout()
            let pendingPage = try await browser.get("/admin/orders/\(pending)")
            #expect(pendingPage.body.contains("id=\"kaspi-payment-id\"") && pendingPage.body.contains("scan phase until"))
            let id = try await Self.paidOrder(s)
            let page = try await browser.get("/admin/orders/\(id)")
            #expect(page.body.contains("Record a refund made in the Kaspi Pay app") && !page.body.contains("id=\"refund\""))
            let recorded = try await browser.post("/admin/orders/\(id)/manual-refund", ["csrf": csrf, "amount": "2500", "note": "app 77"])
            #expect(recorded.headers["location"]?.contains("Recorded") == true)
            #expect(try await s.order(id)?.refundedAmount == 2500)
        }
    }

    @Test("r2: the client certificate's end: a banner in its last 30 days and the seconds left as a metric")
    func certificateExpiry() async throws {
        try await withQRStack(.sqlite, scheme: .r2) { s in
            let now = s.sandbox.clock.now
            s.gateway.clientCertificate = ClientCertificate(path: "/etc/kaspi/client.pem", notValidAfter: now.addingTimeInterval(60 * 86_400))
            let (browser, _) = try await Self.signedIn(s)
            #expect(!(try await browser.get("/admin")).body.contains("certificate-warning"))
            let metrics = try await browser.get("/metrics")
            let line = try #require(metrics.body.split(separator: "\n").first { $0.hasPrefix("kaspi_gateway_client_certificate_expiry_seconds ") })
            let seconds = try #require(Double(line.split(separator: " ").last ?? ""))
            #expect(abs(seconds - 60 * 86_400) < 3600)
            // Inside the window, and once past the end.
            s.gateway.clientCertificate = ClientCertificate(path: "/etc/kaspi/client.pem", notValidAfter: now.addingTimeInterval(12 * 86_400 + 60))
            let soon = try await browser.get("/admin")
            #expect(
                soon.body.contains("id=\"certificate-warning\"") && soon.body.contains("/etc/kaspi/client.pem expires on")
                    && soon.body.contains("(12 days left)"))
            s.gateway.clientCertificate = ClientCertificate(path: "/etc/kaspi/client.pem", notValidAfter: now.addingTimeInterval(-86_400))
            #expect((try await browser.get("/admin/kaspi")).body.contains("expired on"))
            #expect((try await browser.get("/metrics")).body.contains("kaspi_gateway_client_certificate_expiry_seconds -"))
        }
    }

    @Test("r2: a return QR, the customer's purchases, the refund with the customer")
    func r2() async throws {
        try await withQRStack(.sqlite, scheme: .r2) { s in
            let (browser, csrf) = try await Self.signedIn(s)
            let id = try await Self.paidOrder(s)
            let order = try await browser.get("/admin/orders/\(id)")
            #expect(order.body.contains("create a return QR"))
            // From the page that holds the form, as an admin would.
            _ = try await browser.get("/admin/returns")
            let created = try await browser.post("/admin/returns", ["csrf": csrf])
            let location = try #require(created.headers["location"])
            #expect(location.hasPrefix("/admin/returns/"))
            let waiting = try await browser.get(location)
            #expect(
                waiting.body.contains("QrTokenCreated") && waiting.body.contains("data:image/png;base64,")
                    && waiting.body.contains("data-waiting"))
            try await s.sandbox.scanReturn(try #require(Int64(location.dropFirst("/admin/returns/".count))))
            let identified = try await browser.get(location)
            #expect(identified.body.contains("CustomerIdentityObtained") && identified.body.contains(id))
            let refunded = try await browser.post(location + "/refund", ["csrf": csrf, "order": id, "amount": "3000"])
            #expect(refunded.headers["location"]?.contains("Refunded%20with%20the%20customer") == true, "\(refunded.headers)")
            #expect(try await s.purchase(id)?.availableReturnAmount == 6000)
        }
    }

    @Test("r3: a remote invoice named first, checked on request, cancelled")
    func r3() async throws {
        try await withQRStack(.sqlite, scheme: .r3) { s in
            let (browser, csrf) = try await Self.signedIn(s)
            let form = try await browser.get("/admin/invoices")
            #expect(form.body.contains("Show the payer's name"))
            let named = try await browser.post("/admin/invoices", ["csrf": csrf, "phone": "87071234567", "amount": "4200", "comment": "Roses"])
            #expect(named.body.contains("Send the invoice?") && named.body.contains("4567"))
            let sent = try await browser.post(
                "/admin/invoices", ["csrf": csrf, "phone": "87071234567", "amount": "4200", "comment": "Roses", "confirmed": "yes"])
            let location = try #require(sent.headers["location"])
            let orderID = String(try #require(location.split(separator: "?").first).dropFirst("/admin/orders/".count))
            let page = try await browser.get("/admin/orders/\(orderID)")
            #expect(page.body.contains("Check the payment now") && page.body.contains("Cancel the invoice"))
            let checked = try await browser.post("/admin/orders/\(orderID)/refresh", ["csrf": csrf])
            #expect(checked.headers["location"]?.contains("pending") == true)
            // The same form again is refused as sent; from the reloaded page, Kaspi is not asked
            // again so soon.
            #expect(try await browser.post("/admin/orders/\(orderID)/refresh", ["csrf": csrf]).status == 409)
            _ = try await browser.get("/admin/orders/\(orderID)")
            let again = try await browser.post("/admin/orders/\(orderID)/refresh", ["csrf": csrf])
            #expect(again.headers["location"]?.contains("moments") == true)  // spaced: not a timer
            let cancelled = try await browser.post("/admin/orders/\(orderID)/cancel", ["csrf": csrf])
            #expect(cancelled.headers["location"]?.contains("cancelled") == true)
            #expect(try await s.order(orderID)?.state == .cancelled)
        }
    }
}
