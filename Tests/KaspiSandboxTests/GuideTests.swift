import Foundation
import KaspiPayTesting
import KaspiSandbox
import Testing

/// The guide's own Node.js snippets, unchanged apart from their HTTP library, against the
/// sandbox (Tests/guide/guide.mjs).
@Suite("Sandbox: the guide's Node.js code")
struct GuideTests {
    @Test(.requires(.node)) func theGuidesCodeWorksUnchanged() async throws {
        let node = try ExternalTool.node.require()
        let script = ContractChecker.repositoryRoot().appendingPathComponent("Tests/guide/guide.mjs").path
        let webhookPort = FreePort.find()
        try await withSandbox(configure: {
            $0.tradePoints[0].returnURLPrefixes = ["https://yoursite.kz/"]
            $0.tradePoints[0].webhookURL = "http://127.0.0.1:\(webhookPort)/webhooks/kaspi"
        }) { h in
            var environment = ProcessInfo.processInfo.environment
            environment["KASPI_BASE_URL"] = h.baseURL.absoluteString
            environment["KASPI_TRADE_POINT_ID"] = h.tradePoint.id
            environment["KASPI_API_KEY"] = h.tradePoint.apiKey
            environment["WEBHOOK_PORT"] = "\(webhookPort)"
            let output = try await ProcessRunner.run(node, [script], environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            let result = json(output.stdout)
            let orderID = try #require(result["orderId"] as? String)
            #expect((result["paymentUrl"] as? String)?.hasPrefix(h.baseURL.absoluteString + "/pay/") == true)
            #expect(result["statusBefore"] as? String == "PENDING")
            #expect((result["redirect"] as? String)?.hasPrefix("https://yoursite.kz/payment/success?orderId=") == true)
            #expect(result["statusAfter"] as? String == "APPROVED")
            #expect(result["qrIsPNG"] as? Bool == true)
            #expect(result["qrOutcome"] as? String == "paid")
            #expect(result["duplicate"] as? String == "ORDER_ALREADY_EXISTS")
            // The guide's webhook handler verified our signatures and fulfilled both orders.
            let fulfilled = result["fulfilled"] as? [String] ?? []
            #expect(Set(fulfilled) == [orderID, "QR-" + orderID.dropFirst("ORDER-".count)])
            let updates = result["updates"] as? [[String: Any]] ?? []
            #expect(updates.allSatisfy { $0["status"] as? String == "paid" && ($0["transactionId"] as? String)?.isEmpty == false })
            #expect(await h.sandbox.webhooks().allSatisfy { $0.state == .delivered })
        }
    }
}
