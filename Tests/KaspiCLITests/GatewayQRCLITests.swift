import Foundation
import HummingbirdTesting
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

/// `kaspi gateway --profile qr` and its device commands, as a merchant runs them.
@Suite("kaspi gateway on the Kaspi QR API")
struct GatewayQRCLITests {
    @Test func devicesThenServeThenAPaidCheckout() async throws {
        let database = FileManager.default.temporaryDirectory.appendingPathComponent("gw-qr-cli-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        var configuration = SandboxConfiguration()
        configuration.port = 0
        configuration.qrAPI.statusPollingInterval = 1
        let sandbox = try await Sandbox(configuration: configuration)
        try await sandbox.application().test(.live) { client in
            let sandboxURL = "http://127.0.0.1:\(client.port!)"
            let env = [
                "KASPI_QR_SCHEME": "r1", "KASPI_BASE_URL": sandboxURL, "KASPI_QR_API_KEY": "test_0f8fad5b-d9cb-469f-a165-70867728950e",
            ]
            let points = try await CLI.run(["gateway", "tradepoints", "--database", database], environment: env)
            #expect(points.status == 0 && points.stdout.contains("19\tSandbox Shop (Abay 1)"), "\(points.stderr)")
            let registered = try await CLI.run(
                ["gateway", "device", "register", "--trade-point", "19", "--database", database, "--json"], environment: env)
            #expect(registered.status == 0, "\(registered.stderr)")
            let id = try #require(registered.json["id"] as? String)
            #expect(registered.json["isDefault"] as? Bool == true)
            let token = try #require(await sandbox.qrDevices().first?.token)
            #expect(!registered.stdout.contains(token))
            let listed = try await CLI.run(["gateway", "device", "list", "--database", database])
            #expect(listed.stdout.contains(id) && listed.stdout.contains("default") && !listed.stdout.contains(token))
            let checked = try await CLI.run(["gateway", "check", "--database", database], environment: env)
            #expect(checked.status == 0 && checked.stdout.contains("accepts the API key") && checked.stdout.contains("1 device"))
            var wrong = env
            wrong["KASPI_QR_API_KEY"] = "test_wrong"
            let refused = try await CLI.run(["gateway", "check", "--database", database], environment: wrong)
            #expect(refused.status == 1 && refused.stderr.contains("KASPI_QR_NOT_AUTHENTICATED"))

            // The gateway on the QR profile: a checkout, paid on the sandbox, found by polling.
            let port = FreePort.find()
            var serveEnv = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
            serveEnv.merge(env) { $1 }
            serveEnv["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
            let gateway = try BackgroundProcess(
                CLI.binary,
                ["gateway", "--profile", "qr", "--database", database, "--port", "\(port)", "--admin-port", "0", "--worker-interval", "0.05"],
                environment: serveEnv)
            guard await gateway.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
                Issue.record("the gateway did not start: \(gateway.stdout) \(gateway.stderr)")
                return
            }
            #expect(gateway.stdout.contains("Profile: the Kaspi QR API, r1"))
            // The dashboard and metrics on the admin listener, whose address is printed.
            let admin = try #require(
                gateway.stdout.firstMatch(of: /Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/admin/).map { String($0.1) }, "\(gateway.stdout)")
            #expect(try await DemoTests.request(.GET, admin + "/metrics").status == 200)
            #expect(try await DemoTests.request(.GET, "http://127.0.0.1:\(port)/metrics").status == 404)
            let created = try await GatewayCLITests.api(port, "POST", "/v1/checkouts", #"{"amount":6100}"#)
            let orderID = try #require(created["id"] as? String, "\(created)")
            #expect((created["paymentUrl"] as? String)?.hasPrefix(sandboxURL + "/pay/") == true)
            let purchase = try #require(await sandbox.qrPurchases().first)
            try await sandbox.act(.scan, paymentID: purchase.id)
            try await sandbox.act(.confirm, paymentID: purchase.id)
            var state = ""
            for _ in 0..<200 where state != "paid" {
                state = (try await GatewayCLITests.api(port, "GET", "/v1/orders/\(orderID)"))["state"] as? String ?? ""
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(state == "paid")

            // kill -9 while an order is being polled: the restarted gateway picks the polling up.
            let second = try await GatewayCLITests.api(port, "POST", "/v1/qr-checkouts", #"{"amount":3300}"#)
            let secondID = try #require(second["id"] as? String)
            let secondPurchase = try #require(await sandbox.qrPurchases().last)
            try await sandbox.act(.scan, paymentID: secondPurchase.id)
            try await Task.sleep(for: .milliseconds(1500))  // a poll or two see Wait
            _ = await gateway.stop(signal: SIGKILL)
            try await sandbox.act(.confirm, paymentID: secondPurchase.id)
            let restarted = try BackgroundProcess(
                CLI.binary,
                ["gateway", "--profile", "qr", "--database", database, "--port", "\(port)", "--admin-port", "0", "--worker-interval", "0.05"],
                environment: serveEnv)
            guard await restarted.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
                Issue.record("the gateway did not restart: \(restarted.stdout) \(restarted.stderr)")
                return
            }
            state = ""
            for _ in 0..<300 where state != "paid" {
                state = (try await GatewayCLITests.api(port, "GET", "/v1/orders/\(secondID)"))["state"] as? String ?? ""
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(state == "paid")
            let events = try await GatewayCLITests.api(port, "GET", "/v1/orders/\(secondID)/events")
            let details = (events["data"] as? [[String: Any]] ?? []).compactMap { $0["detail"] as? String }
            #expect(details.filter { $0.contains("(Wait)") }.count <= 1)  // the first Wait, once
            _ = await restarted.stop()

            let rotated = try await CLI.run(["gateway", "device", "rotate", id, "--database", database, "--json"], environment: env)
            #expect(rotated.status == 0, "\(rotated.stderr)")
            let newID = try #require(rotated.json["id"] as? String)
            #expect(newID != id && rotated.json["isDefault"] as? Bool == true)
            #expect(await sandbox.qrDevices().first { $0.token == token }?.active == false)
            let deleted = try await CLI.run(["gateway", "device", "delete", newID, "--database", database], environment: env)
            #expect(deleted.status == 0)
            let empty = try await CLI.run(["gateway", "device", "list", "--database", database])
            #expect(empty.stdout.contains("No device is registered"))
            let missing = try await CLI.run(["gateway", "device", "delete", "dev_missing", "--database", database], environment: env)
            #expect(missing.status != 0 && missing.stderr.contains("No registered device"))
        }
    }
}
