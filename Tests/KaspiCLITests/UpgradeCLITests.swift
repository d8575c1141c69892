import Foundation
import KaspiPayTesting
import Testing

/// An upgrade from a database the previous schema made (kept in `Tests/Fixtures`): migrated
/// in place, served, and every order, event and link reads back as it was.
@Suite("kaspi gateway upgrades")
struct UpgradeCLITests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gateway-schema-8.sqlite")

    @Test func aDatabaseOfThePreviousSchemaUpgradesAndReadsBack() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("upgrade-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The schema this build makes, from an empty database.
        let empty = try await CLI.run(["gateway", "migrate", "--database", root + "/empty.sqlite"])
        let latest = try #require(empty.stdout.firstMatch(of: /schema version (\d+)/).map { String($0.1) }, "\(empty.stdout)")
        let database = root + "/gateway.sqlite"
        try FileManager.default.copyItem(atPath: Self.fixture.path, toPath: database)
        let migrated = try await CLI.run(["gateway", "migrate", "--database", database])
        #expect(migrated.status == 0 && migrated.stdout.contains("schema version \(latest)"), "\(migrated.stderr)")

        // Kaspi is unreachable here: nothing is polled into a new state while the test reads.
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
        env["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
        env["KASPI_BASE_URL"] = "http://127.0.0.1:9"
        env["KASPI_TRADE_POINT_ID"] = "TP-FIX"
        env["KASPI_API_KEY"] = "sandbox_fixture_key"
        let port = FreePort.find()
        let gateway = try BackgroundProcess(
            CLI.binary, ["gateway", "--database", database, "--port", "\(port)", "--admin-port", "0"], environment: env)
        guard await gateway.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
            Issue.record("the gateway did not start on the upgraded database: \(gateway.stdout) \(gateway.stderr)")
            _ = await gateway.stop()
            return
        }
        let paid = try await GatewayCLITests.api(port, "GET", "/v1/orders/ord_p3101mb05c3q2zayz1tq")
        #expect(paid["state"] as? String == "paid" && paid["amount"] as? Int == 5000 && paid["refundedAmount"] as? Int == 1500)
        #expect(paid["transactionId"] as? String == "515721257681" && paid["merchantReference"] as? String == "fixture-A")
        #expect((paid["metadata"] as? [String: Any])?["cart"] as? String == "A")
        #expect((try await GatewayCLITests.api(port, "GET", "/v1/orders/ord_36557qywmbp2st2hez2s"))["state"] as? String == "pending")
        #expect((try await GatewayCLITests.api(port, "GET", "/v1/orders/ord_y45r0rh9bh0dq3xhb8qs"))["state"] as? String == "declined")
        let timeline = try await BackupCLITests.get(port, "/v1/orders/ord_p3101mb05c3q2zayz1tq/events").body
        #expect(timeline.contains("paid") && timeline.contains("refund"), "\(timeline)")
        let events = try await BackupCLITests.get(port, "/v1/events?orderId=ord_p3101mb05c3q2zayz1tq").body
        #expect(events.contains("order.paid") && events.contains("refund.succeeded"), "\(events)")
        let link = try await GatewayCLITests.api(port, "GET", "/v1/payment-links/deq57y2p7h")
        #expect(link["amount"] as? Int == 3000 && link["status"] as? String == "open")
        let listed = try await GatewayCLITests.api(port, "GET", "/v1/orders?limit=10")
        #expect((listed["data"] as? [Any])?.count == 3)
        // And it takes new writes.
        let made = try await GatewayCLITests.api(port, "POST", "/v1/payment-links", #"{"amount":4100}"#)
        #expect(made["status"] as? String == "open", "\(made)")
        _ = await gateway.stop()
    }
}
