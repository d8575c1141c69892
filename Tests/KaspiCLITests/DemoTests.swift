import AsyncHTTPClient
import Foundation
import KaspiPayTesting
import NIOCore
import NIOHTTP1
import Testing

/// `kaspi demo`, the README's run command, driven as a newcomer would with a browser.
@Suite("kaspi demo")
struct DemoTests {
    static func request(_ method: HTTPMethod, _ url: String, form: String? = nil) async throws -> (status: Int, location: String?, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        let response = try await GatewayCLITests.http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), response.headers.first(name: "location"), String(buffer: body))
    }

    /// Follows redirects within loopback, as a browser would (stopping at other schemes).
    static func follow(_ start: (status: Int, location: String?, body: String), from origin: String = "") async throws -> (url: String, body: String)
    {
        var current = start
        var url = origin
        for _ in 0..<10 {
            guard (300..<400).contains(current.status), let next = current.location else { break }
            url = URL(string: next, relativeTo: URL(string: url))?.absoluteString ?? next
            current = try await request(.GET, url)
        }
        return (url, current.body)
    }

    @Test func aHostThatMakesNoURLIsRefusedClearly() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let refused = try await CLI.run(["demo", "--host", "not a host", "--data-dir", data])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("GATEWAY_CONFIG_INVALID") && refused.stderr.contains("--host must be a host name or an IP address"))
        #expect(!FileManager.default.fileExists(atPath: data))
    }

    @Test func beyondLoopbackTheCredentialsAreMadeForTheRunAndTheWarningIsLoud() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (shopPort, gatewayPort, sandboxPort) = (FreePort.find(), FreePort.find(), FreePort.find())
        let demo = try BackgroundProcess(
            CLI.binary,
            [
                "demo", "--host", "0.0.0.0", "--shop-port", "\(shopPort)", "--gateway-port", "\(gatewayPort)", "--admin-port", "\(FreePort.find())",
                "--sandbox-port", "\(sandboxPort)",
                "--data-dir", data,
            ])
        _ = try #require(await demo.waitForOutput(matching: #"Shop: +(http://\S+)"#), "\(demo.stdout)\(demo.stderr)")
        let key = try #require(demo.stdout.firstMatch(of: /API key (demo_[A-Za-z0-9]+)/).map { String($0.1) })
        #expect(key != "demo_shop_key" && key.count > 30 && !demo.stdout.contains("kaspikit-demo"), "\(demo.stdout)")
        for _ in 0..<50 where !demo.stderr.contains("WARNING") { try await Task.sleep(for: .milliseconds(100)) }
        #expect(demo.stderr.contains("WARNING: the demo listens beyond this machine"))
        // The documented key opens nothing; the one printed for this run does.
        #expect(try await GatewayCLITests.api(gatewayPort, "GET", "/v1/orders", key: "demo_shop_key")["error"] != nil)
        #expect(try await GatewayCLITests.api(gatewayPort, "GET", "/v1/orders", key: key)["data"] != nil)
        _ = await demo.stop()
    }

    @Test func aNewcomerPaysByRedirectQRAndLink() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (shopPort, gatewayPort, sandboxPort) = (FreePort.find(), FreePort.find(), FreePort.find())
        let demo = try BackgroundProcess(
            CLI.binary,
            [
                "demo", "--shop-port", "\(shopPort)", "--gateway-port", "\(gatewayPort)", "--admin-port", "\(FreePort.find())", "--sandbox-port",
                "\(sandboxPort)", "--data-dir", data,
            ])
        let shop = try #require(await demo.waitForOutput(matching: #"Shop: +(http://127\.0\.0\.1:\d+)"#), "\(demo.stdout)\(demo.stderr)")
        #expect(demo.stdout.contains("API key demo_shop_key"))
        let catalogue = try await Self.request(.GET, shop + "/")
        // Russian unless the browser asks otherwise, as Kaspi's own pages.
        #expect(
            catalogue.body.contains("<html lang=\"ru\">") && catalogue.body.contains("Купить через Kaspi") && catalogue.body.contains("Степной чай"))

        // Redirect: buy, pay on the sandbox's page, come back to a verified result.
        let buy = try await Self.request(.POST, shop + "/buy", form: "item=tea")
        let paymentPage = try #require(buy.location)
        #expect(paymentPage.hasPrefix("http://127.0.0.1:\(sandboxPort)/pay/"))
        let paid = try await Self.follow(try await Self.request(.POST, paymentPage, form: "action=pay"))
        #expect(paid.url.hasPrefix(shop + "/result?status=success"))
        #expect(paid.body.contains("Спасибо!") && paid.body.contains("1\u{00A0}200\u{00A0}₸"))

        // Declined: the result page says so.
        let buy2 = try await Self.request(.POST, shop + "/buy", form: "item=lamp")
        let declined = try await Self.follow(try await Self.request(.POST, try #require(buy2.location), form: "action=decline"))
        #expect(declined.body.contains("Оплата не завершена"))

        // QR: the page waits; once paid it moves on by itself.
        let qr = try await Self.request(.POST, shop + "/buy-qr", form: "item=chair")
        let qrPage = shop + (try #require(qr.location))
        let waiting = try await Self.request(.GET, qrPage)
        #expect(waiting.body.contains("data:image/png;base64,") && waiting.body.contains("data-waiting"))
        let orderID = String(try #require(qr.location).dropFirst("/qr/".count))
        let order = try await GatewayCLITests.api(gatewayPort, "GET", "/v1/orders/\(orderID)", key: "demo_shop_key")
        let providerOrderID = try #require(order["providerOrderId"] as? String)
        _ = try await Self.request(.POST, "http://127.0.0.1:\(sandboxPort)/sandbox/orders/\(providerOrderID)/approve")
        var after = ""
        for _ in 0..<400 {
            after = try await Self.follow(try await Self.request(.GET, qrPage), from: qrPage).body
            if after.contains("Спасибо!") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(after.contains("Спасибо!"))

        // Payment link: shareable, paid through its own page.
        let link = try await Self.request(.POST, shop + "/link", form: "item=tea")
        #expect(link.body.contains("Отправить в WhatsApp") && link.body.contains("/l/"))
        let linkURL = try #require(
            link.body.range(of: #"http://127\.0\.0\.1:\d+/l/[0-9a-z]+"#, options: .regularExpression).map { String(link.body[$0]) })
        let toKaspi = try await Self.request(.POST, linkURL + "/pay")
        _ = try await Self.follow(try await Self.request(.POST, try #require(toKaspi.location), form: "action=pay"))
        var linkPage = ""
        for _ in 0..<400 {
            linkPage = try await Self.request(.GET, linkURL).body
            if linkPage.contains("Оплачено.") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(linkPage.contains("Оплачено."))

        // The gateway told the shop's systems, signed; the admin sees the deliveries.
        var delivered = 0
        for _ in 0..<400 {
            let events = try await GatewayCLITests.api(gatewayPort, "GET", "/v1/events", key: "demo_shop_key")["data"] as? [[String: Any]] ?? []
            delivered = events.filter { $0["state"] as? String == "delivered" && $0["type"] as? String == "order.paid" }.count
            if delivered >= 3 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(delivered >= 3)

        #expect(await demo.stop() == 0)
        #expect(demo.stdout.contains("KaspiKit demo stopped."))
    }

    @Test func theQRProfilePaysByLinkQRAndRemoteInvoice() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("demo-qr-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (shopPort, gatewayPort, sandboxPort, qrPort) = (FreePort.find(), FreePort.find(), FreePort.find(), FreePort.find())
        let demo = try BackgroundProcess(
            CLI.binary,
            [
                "demo", "--profile", "qr", "--shop-port", "\(shopPort)", "--gateway-port", "\(gatewayPort)", "--admin-port", "\(FreePort.find())",
                "--sandbox-port", "\(sandboxPort)",
                "--qr-port", "\(qrPort)", "--data-dir", data,
            ])
        let shop = try #require(await demo.waitForOutput(matching: #"Shop: +(http://127\.0\.0\.1:\d+)"#), "\(demo.stdout)\(demo.stderr)")
        #expect(demo.stdout.contains("Kaspi's partner API (the Kaspi QR API), r3"))
        #expect(FileManager.default.fileExists(atPath: data + "/certs/client.p12"))  // made on the fly

        // A link: the shop waits (Kaspi gives no return URL) while the payer scans and confirms.
        let buy = try await Self.request(.POST, shop + "/buy", form: "item=tea")
        let waitPage = shop + (try #require(buy.location))
        #expect(waitPage.contains("/wait/"))
        let waiting = try await Self.request(.GET, waitPage)
        let link = try #require(
            waiting.body.range(of: #"http://127\.0\.0\.1:\d+/pay/\d{41}"#, options: .regularExpression).map { String(waiting.body[$0]) })
        #expect(waiting.body.contains("data-waiting"))
        _ = try await Self.request(.POST, link, form: "action=scan")
        _ = try await Self.request(.POST, link, form: "action=confirm")
        var after = ""
        for _ in 0..<400 {
            after = try await Self.follow(try await Self.request(.GET, waitPage), from: waitPage).body
            if after.contains("Спасибо!") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(after.contains("Спасибо!"))

        // A remote invoice: the payer's name first, then the invoice, checked on request only.
        let ask = try await Self.request(.POST, shop + "/invoice", form: "item=lamp&phone=87071234567")
        #expect(ask.body.contains("Выставить счёт?") && ask.body.contains("4567"))
        let sent = try await Self.request(.POST, shop + "/invoice", form: "item=lamp&phone=87071234567&confirmed=yes")
        let invoicePage = shop + (try #require(sent.location))
        let invoice = try await Self.request(.GET, invoicePage)
        #expect(invoice.body.contains("Проверить оплату") && !invoice.body.contains("data-waiting"))
        let payer = try #require(
            invoice.body.range(of: #"http://127\.0\.0\.1:\d+/pay/invoice/\d+"#, options: .regularExpression).map { String(invoice.body[$0]) })
        let payerPage = try await Self.request(.GET, payer)
        #expect(payerPage.body.contains("Оплатить счёт") && payerPage.body.contains("87071234567"))
        _ = try await Self.request(.POST, payer, form: "action=confirm")
        let checked = try await Self.follow(try await Self.request(.POST, invoicePage + "/check"), from: invoicePage)
        #expect(checked.body.contains("Спасибо!"), "\(checked.body)")

        #expect(await demo.stop() == 0)
    }
}
