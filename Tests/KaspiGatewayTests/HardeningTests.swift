import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("Hardening: replays, idempotency races, lost answers")
struct HardeningTests {
    /// Creates a checkout, declines it on Kaspi's page, and returns the order id and the exact
    /// DECLINED webhook Kaspi sent.
    static func declinedOrder(_ s: Stack) async throws -> (id: String, webhook: String) {
        let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
        let id = try #require(created.json["id"] as? String)
        let paymentURL = try #require(created.json["paymentUrl"] as? String)
        _ = try await s.payOnPage(paymentURL, action: "decline")
        #expect(try await s.waitFor(id, .declined))
        let providerOrderId = try #require(try await s.order(id)?.providerOrderId)
        let webhook = try #require(await s.sandbox.webhooks(orderId: providerOrderId).first { $0.status == "DECLINED" })
        return (id, webhook.body)
    }

    @Test("a captured DECLINED webhook re-sent as APPROVED changes nothing", arguments: Backend.available)
    func replayedWebhookIsNotTrusted(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let (id, declined) = try await Self.declinedOrder(s)
            let forged = declined.replacingOccurrences(of: "\"DECLINED\"", with: "\"APPROVED\"")
            #expect(forged != declined)
            let answer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged, headers: ["Content-Type": "application/json"])
            #expect(answer.status == 409 && answer.errorCode == "WEBHOOK_NOT_CONFIRMED", "\(answer.body)")
            let order = try #require(try await s.order(id))
            #expect(order.state == .declined && !order.needsReview && order.transactionId == nil)
            // Recorded in the timeline and in metrics; no order.paid reaches the merchant.
            let events = try await s.gateway.store.events(orderId: id)
            #expect(events.contains { $0.kind == .conflict && $0.detail.contains("not applied") })
            let metrics = try await http(.GET, s.gatewayURL + "/metrics")
            #expect(metrics.body.contains(#"kaspi_gateway_webhooks_total{outcome="unconfirmed"} 1"#))
            try await Task.sleep(for: .milliseconds(300))
            #expect(!s.merchant.events.contains { $0.type == "order.paid" })
        }
    }

    @Test("with confirmation turned off, the webhook is trusted as the guide does")
    func confirmationCanBeTurnedOff() async throws {
        try await withStack(.sqlite, configure: { $0.confirmPaidWebhooks = false }) { s in
            let (id, declined) = try await Self.declinedOrder(s)
            let forged = declined.replacingOccurrences(of: "\"DECLINED\"", with: "\"APPROVED\"")
            let answer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged, headers: ["Content-Type": "application/json"])
            #expect(answer.status == 200)
            #expect(try await s.order(id)?.state == .paid)
        }
    }

    @Test("a genuine APPROVED webhook is confirmed and applied, with Kaspi's transaction id")
    func genuineWebhookIsApplied() async throws {
        try await withStack(.sqlite) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let id = try #require(created.json["id"] as? String)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            let providerOrderId = try #require(try await s.order(id)?.providerOrderId)
            let kaspi = await s.sandbox.orders().first { $0.orderId == providerOrderId }
            #expect(try await s.order(id)?.transactionId == kaspi?.transactionId)
            let metrics = try await http(.GET, s.gatewayURL + "/metrics")
            #expect(!metrics.body.contains(#"outcome="unconfirmed""#))
        }
    }
}
