import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("Sandbox: the guide's flows end to end")
struct FlowTests {
    @Test func redirectPaymentThroughThePageWithWebhookAndStatus() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
            try await withSandbox(configure: { $0.tradePoints[0].webhookURL = hook }) { h in
                let created = try await h.client.orders.create(newOrder("ORDER-1"))
                #expect(created.paymentURL.absoluteString.hasPrefix(h.baseURL.absoluteString + "/pay/"))
                #expect(try await h.client.orders.status(of: "ORDER-1").status == .pending)

                // The payer opens the page and presses Pay: the form posts, the browser is sent to returnUrl.
                let page = try await h.raw(.GET, created.paymentURL.path)
                #expect(page.status == 200)
                #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
                // Kaspi's page speaks Russian unless the payer's browser asks otherwise.
                #expect(
                    page.body.contains("Test Shop") && page.body.contains("Оплатить 5\u{00A0}000\u{00A0}₸") && page.body.contains("Заказ ORDER-1"))
                #expect(page.body.contains("<html lang=\"ru\">"))
                #expect(page.body.contains(#"value="pay""#) && page.body.contains(#"value="decline""#) && page.body.contains(#"value="cancel""#))
                #expect(!page.body.contains("<script"))
                let paid = try await h.raw(
                    .POST, created.paymentURL.path, body: "action=pay", headers: ["Content-Type": "application/x-www-form-urlencoded"])
                #expect(paid.status == 303)
                #expect(paid.headers["location"] == "https://shop.example/payment/success?orderId=ORDER-1")

                #expect(await receiver.waitFor(1))
                let event = try await WebhookVerifier(apiKey: h.apiKey).verify(body: receiver.received[0].body) { id in
                    id == "ORDER-1" ? ExpectedOrder(amount: 5000) : nil
                }
                #expect(event.status == .approved)
                #expect(receiver.received[0].contentType == "application/json")
                let webhookSchema = try h.contract.webhookSchema(name: "paymentStatus")
                #expect(h.contract.violations(of: receiver.received[0].body, against: webhookSchema) == [])

                let status = try await h.client.orders.status(of: "ORDER-1")
                #expect(status.status == .approved)
                #expect(status.transactionID == event.transactionID && status.transactionID != nil)
                // Pressing the button again changes nothing.
                let again = try await h.raw(
                    .POST, created.paymentURL.path, body: "action=cancel", headers: ["Content-Type": "application/x-www-form-urlencoded"])
                #expect(again.headers["location"] == "https://shop.example/payment/success?orderId=ORDER-1")
                #expect(try await h.client.orders.status(of: "ORDER-1").status == .approved)
                let deliveries = await h.sandbox.webhooks(orderID: "ORDER-1")
                #expect(deliveries.count == 1 && deliveries[0].state == .delivered && deliveries[0].attempts.first?.responseCode == 200)
            }
        }
    }

    @Test func declineAndCancelGoToTheFailURL() async throws {
        try await withSandbox { h in
            for (id, action, status) in [("D-1", "decline", PaymentStatus.declined), ("C-1", "cancel", .cancelled)] {
                let created = try await h.client.orders.create(newOrder(id))
                let response = try await h.raw(
                    .POST, created.paymentURL.path, body: "action=\(action)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
                #expect(response.status == 303)
                #expect(response.headers["location"] == "https://shop.example/payment/fail?orderId=\(id)")
                #expect(try await h.client.orders.status(of: OrderID(id)).status == status)
                let page = try await h.raw(.GET, created.paymentURL.path)
                #expect(!page.body.contains(#"value="pay""#))
            }
            let unknown = try await h.raw(.GET, "/pay/nope")
            #expect(unknown.status == 404)
        }
    }

    @Test(.requires(.zbarimg)) func qrPaymentDecodesToThePaymentURLAndPollsToApproved() async throws {
        try await withSandbox { h in
            let qr = try await h.client.qr.create(amount: 1500, orderID: "QR-1")
            let zbar = try ExternalTool.zbarimg.require()
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-qr-\(UUID().uuidString).png")
            try Data(qr.png).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let decoded = try await ProcessRunner.run(zbar, ["--quiet", "--raw", file.path])
            let url = decoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(url.hasPrefix(h.baseURL.absoluteString + "/pay/"))
            let page = try await h.raw(.GET, URL(string: url)!.path)
            #expect(page.body.contains("1\u{00A0}500\u{00A0}₸"))
            let svg = try await h.raw(.GET, URL(string: url)!.path + "/qr.svg")
            #expect(svg.status == 200 && svg.body.hasPrefix("<svg"))

            let waiter = Task {
                try await h.client.qr.waitForPayment(token: qr.token, options: PollingOptions(interval: .milliseconds(20), maxAttempts: 500))
            }
            try await Task.sleep(for: .milliseconds(100))
            try await h.sandbox.trigger(.approved, orderID: "QR-1", tradePointID: "TP-1")
            #expect(try await waiter.value.name == "paid")
            // The QR created an order in the same id space.
            #expect(try await h.client.orders.status(of: "QR-1").status == .approved)
            #expect(await kaspiError { _ = try await h.client.orders.create(newOrder("QR-1")) }?.code == "ORDER_ALREADY_EXISTS")
        }
    }

    @Test func refundsPartialFullAndOverRefund() async throws {
        try await withSandbox { h in
            _ = try await h.client.orders.create(newOrder("RF-1", amount: 10000))
            #expect(await kaspiError { _ = try await h.client.refunds.create(orderID: "RF-1", amount: 100) }?.code == "REFUND_NOT_ALLOWED")
            try await h.sandbox.trigger(.approved, orderID: "RF-1", tradePointID: "TP-1")
            let transaction = try await h.client.orders.status(of: "RF-1").transactionID
            let first = try await h.client.refunds.create(orderID: "RF-1", amount: 2500, transactionID: transaction)
            #expect(first.refundedAmount == 2500 && first.refundID?.hasPrefix("RF-") == true)
            #expect(await kaspiError { _ = try await h.client.refunds.create(orderID: "RF-1", amount: 7501) }?.code == "REFUND_NOT_ALLOWED")
            #expect(
                await kaspiError { _ = try await h.client.refunds.create(orderID: "RF-1", amount: 1, transactionID: "WRONG") }?.code
                    == "REFUND_NOT_ALLOWED")
            let rest = try await h.client.refunds.create(orderID: "RF-1", amount: 7500)
            #expect(rest.refundedAmount == 10000)
            #expect(await kaspiError { _ = try await h.client.refunds.create(orderID: "RF-1", amount: 1) }?.code == "REFUND_NOT_ALLOWED")
            let status = try await h.client.orders.status(of: "RF-1")
            #expect(status.status == .approved && status.refundedAmount == 10000)
            #expect(await kaspiError { _ = try await h.client.refunds.create(orderID: "NOPE", amount: 1) }?.code == "ORDER_NOT_FOUND")
        }
    }

    @Test func scenarioAmountsSettleByThemselves() async throws {
        try await withSandbox { h in
            let started = ContinuousClock.now
            _ = try await h.client.orders.create(newOrder("S-1", amount: 7001))
            _ = try await h.client.orders.create(newOrder("S-2", amount: 7002))
            _ = try await h.client.orders.create(newOrder("S-3", amount: 7003))
            _ = try await h.client.orders.create(newOrder("S-4", amount: 7004))
            #expect(try await h.client.orders.status(of: "S-1").status == .approved)
            #expect(try await h.client.orders.status(of: "S-2").status == .declined)
            #expect(try await h.client.orders.status(of: "S-3").status == .cancelled)
            let s4 = try await h.client.orders.status(of: "S-4").status
            // 7004 settles after 10 s of sandbox time, which real time also moves: on a machine
            // slow enough for that to have passed already, it may be approved now.
            if ContinuousClock.now - started < .seconds(9) { #expect(s4 == .pending) } else { #expect(s4 == .pending || s4 == .approved) }
            await h.sandbox.advanceClock(by: 10)
            #expect(try await h.client.orders.status(of: "S-4").status == .approved)
        }
    }
}
