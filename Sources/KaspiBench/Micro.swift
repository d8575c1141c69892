import Foundation
import KaspiGatewayStore
import KaspiPay

/// Plain timing loops over the hot pieces, in this (release) process.
enum Micro {
    static func all() -> [String] {
        let key = try! APIKey("bench-kaspi-key")
        let verifier = WebhookVerifier(apiKey: key)
        let signature = Signature.compute(.webhook, amount: 5000, orderID: "bench-1", apiKey: key)
        let body = Array(#"{"orderId":"bench-1","amount":5000,"status":"APPROVED","transactionId":"tx-1","signature":"\#(signature)"}"#.utf8)
        let order = GatewayOrder(
            id: "ord_1", provider: "kaspi-pay", providerOrderID: "bench-1", kind: .redirect, amount: 5000, state: .pending, createdAt: Date())
        return [
            measure("Webhook signature (SHA-256 of the fields)") {
                Signature.compute(.webhook, amount: 5000, orderID: "bench-1", apiKey: key).utf8.count
            },
            measure("Webhook decode and verify (JSON, signature, fields)") {
                (try? verifier.verify(body: body))?.amount.tenge ?? 0
            },
            measure("State transition with its audit event and outbox event JSON") {
                OrderStateMachine.apply(.approved, transactionID: "tx-1", source: .webhook, to: order, at: Date())?.outbox.first?.payload.utf8.count
                    ?? 0
            },
            measure("Outbox event JSON alone, Codable (JSONEncoder, sorted keys)") {
                OrderStateMachine.refundConfirmed(order, amount: 100, refundID: "rf_1", at: Date()).outbox.first?.payload.utf8.count ?? 0
            },
            measure("Outbox event JSON alone, hand-written (the code before 2026-11-30, for comparison)") {
                handWritten(order).utf8.count + 40
            },
        ]
    }

    /// The outbox payload as the state machine wrote it by hand until the Codable one replaced
    /// it: kept here only to measure the difference.
    static func handWritten(_ order: GatewayOrder) -> String {
        func json(_ text: String) -> String { "\"" + text + "\"" }
        return
            #"{"type":"refund.succeeded","data":{"orderId":\#(json(order.id)),"refundId":\#(json("rf_1")),"amount":\#(100),"refundedAmount":\#(order.refundedAmount)}}"#
    }

    /// Runs `body` for about half a second after a warm-up; prints the mean time per call.
    static func measure(_ name: String, _ body: () -> Int) -> String {
        var sink = 0
        for _ in 0..<1000 { sink &+= body() }
        let clock = ContinuousClock()
        var iterations = 0
        let start = clock.now
        while clock.now - start < .milliseconds(500) {
            for _ in 0..<100 { sink &+= body() }
            iterations += 100
        }
        let elapsed = clock.now - start
        let (s, atto) = elapsed.components
        let ns = (Double(s) * 1e9 + Double(atto) / 1e9) / Double(iterations)
        precondition(sink != 42, "keeps the work from being optimised away")
        return "| \(name) | \(ns >= 1000 ? String(format: "%.2f µs", ns / 1000) : String(format: "%.0f ns", ns)) |"
    }
}
