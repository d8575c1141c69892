import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("Sandbox: webhooks, faults, persistence")
struct WebhookAndFaultTests {
    @Test func unacknowledgedWebhooksAreRetriedThenResentByHand() async throws {
        let receiver = WebhookReceiver(answers: [500, 503])
        try await receiver.run { hook in
            try await withSandbox(configure: { $0.tradePoints[0].webhookURL = hook }) { h in
                _ = try await h.client.orders.create(newOrder("W-1"))
                try await h.sandbox.trigger(.declined, orderID: "W-1", tradePointID: "TP-1")
                #expect(await receiver.waitFor(3))
                #expect(await eventually { await h.sandbox.webhooks(orderID: "W-1").first?.state == .delivered })
                let delivery = try #require(await h.sandbox.webhooks(orderID: "W-1").first)
                // Three attempts, the last acknowledged; each answer the sandbox heard is the one
                // the receiver gave (on a loaded machine one may be lost to the timeout, as nil).
                let codes = delivery.attempts.map(\.responseCode)
                #expect(codes.count == 3 && codes.last == 200, "\(codes)")
                for (code, given) in zip(codes, [500, 503, 200]) { #expect(code == nil || code == given, "\(codes)") }
                #expect(delivery.attempts.allSatisfy { $0.latencyMs >= 0 && !$0.manual })
                // Every copy is byte-identical and verifies.
                #expect(Set(receiver.received.map(\.body)).count == 1)
                _ = try WebhookVerifier(apiKey: h.apiKey).verify(body: receiver.received[0].body)

                // The log as JSON and as HTML, and a re-send by hand.
                let log = try await h.raw(.GET, "/sandbox/webhooks?orderId=W-1")
                #expect(log.status == 200 && log.body.contains(#""responseCode" : 200"#))
                let page = try await h.raw(.GET, "/sandbox/webhooks.html")
                #expect(page.body.contains("W-1") && page.body.contains("Re-send"))
                let resend = try await h.raw(.POST, "/sandbox/webhooks/\(delivery.id)/resend")
                #expect(resend.status == 200 && json(resend.body)["responseCode"] as? Int == 200)
                #expect(receiver.received.count == 4)
                #expect(await h.sandbox.webhooks(orderID: "W-1").first?.attempts.last?.manual == true)
                #expect(try await h.raw(.POST, "/sandbox/webhooks/nope/resend").status == 404)
            }
        }
    }

    @Test func theWebhookLogInMemoryKeepsTheRecentDeliveriesAndTheFileKeepsAll() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hooks-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) } }
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
            try await withSandbox(configure: {
                $0.tradePoints[0].webhookURL = hook
                $0.memoryOrderLimit = 8
                $0.rateLimitPerMinute = nil
                $0.dataPath = file
            }) { h in
                for i in 0..<100 {
                    _ = try await h.client.orders.create(newOrder("L-\(i)"))
                    try await h.sandbox.trigger(.approved, orderID: "L-\(i)", tradePointID: "TP-1")
                }
                #expect(await receiver.waitFor(100))
                #expect(await eventually { await h.sandbox.webhooks().allSatisfy { $0.state == .delivered } })
                // One more: the log is trimmed as deliveries are added, in groups.
                _ = try await h.client.orders.create(newOrder("L-last"))
                try await h.sandbox.trigger(.approved, orderID: "L-last", tradePointID: "TP-1")
                #expect(await eventually { await h.sandbox.webhooks(orderID: "L-last").first?.state == .delivered })
                let inMemory = await h.sandbox.webhooks()
                #expect(inMemory.count <= 8 + 64, "\(inMemory.count) deliveries in memory")
                #expect(inMemory.last?.orderID == "L-last")
                #expect(try await h.raw(.GET, "/sandbox/stats").status == 200)  // answers once every write is done
                #expect(try await storedDocuments(file, table: "sandbox_webhooks").count == 101)
            }
        }
    }

    @Test func webhooksGiveUpAfterTheSchedule() async throws {
        let receiver = WebhookReceiver(answers: Array(repeating: 500, count: 10))
        try await receiver.run { hook in
            try await withSandbox(configure: {
                $0.tradePoints[0].webhookURL = hook
                $0.webhookRetrySeconds = [0.02, 0.02]
            }) { h in
                _ = try await h.client.orders.create(newOrder("W-2"))
                try await h.sandbox.trigger(.approved, orderID: "W-2", tradePointID: "TP-1")
                #expect(await eventually { await h.sandbox.webhooks(orderID: "W-2").first?.state == .failed })
                #expect(await h.sandbox.webhooks(orderID: "W-2").first?.attempts.count == 3)
            }
        }
    }

    @Test func retriesWaitForTheScheduleOnTheSandboxClock() async throws {
        let receiver = WebhookReceiver(answers: [500])
        try await receiver.run { hook in
            try await withSandbox(configure: {
                $0.tradePoints[0].webhookURL = hook
                $0.webhookRetrySeconds = [3600]
            }) { h in
                _ = try await h.client.orders.create(newOrder("W-3"))
                try await h.sandbox.trigger(.approved, orderID: "W-3", tradePointID: "TP-1")
                #expect(await receiver.waitFor(1))
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.received.count == 1)
                await h.sandbox.advanceClock(by: 3600)
                #expect(await receiver.waitFor(2))
            }
        }
    }

    @Test func droppedDuplicatedDelayedAndReorderedWebhooks() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
            try await withSandbox(configure: { $0.tradePoints[0].webhookURL = hook }) { h in
                var faults = SandboxFaults()
                faults.webhookDropRate = 1
                let put = try await h.raw(.PUT, "/sandbox/faults/TP-1", body: #"{"webhookDropRate":1}"#)
                #expect(put.status == 200)
                _ = try await h.client.orders.create(newOrder("F-1"))
                try await h.sandbox.trigger(.approved, orderID: "F-1", tradePointID: "TP-1")
                try await Task.sleep(for: .milliseconds(200))
                #expect(receiver.received.isEmpty)
                #expect(await h.sandbox.webhooks(orderID: "F-1").first?.state == .dropped)

                faults = SandboxFaults()
                faults.webhookDuplicateRate = 1
                await h.sandbox.setFaults(faults, tradePointID: "TP-1")
                _ = try await h.client.orders.create(newOrder("F-2"))
                try await h.sandbox.trigger(.approved, orderID: "F-2", tradePointID: "TP-1")
                #expect(await receiver.waitFor(2))
                #expect(receiver.received.allSatisfy { String(decoding: $0.body, as: UTF8.self).contains("F-2") })

                faults = SandboxFaults()
                faults.webhookDelaySeconds = 120
                await h.sandbox.setFaults(faults, tradePointID: "TP-1")
                _ = try await h.client.orders.create(newOrder("F-3"))
                try await h.sandbox.trigger(.approved, orderID: "F-3", tradePointID: "TP-1")
                try await Task.sleep(for: .milliseconds(200))
                #expect(receiver.received.count == 2)
                await h.sandbox.advanceClock(by: 120)
                #expect(await receiver.waitFor(3))

                faults = SandboxFaults()
                faults.webhookReorder = true
                await h.sandbox.setFaults(faults, tradePointID: "TP-1")
                _ = try await h.client.orders.create(newOrder("F-4"))
                _ = try await h.client.orders.create(newOrder("F-5"))
                try await h.sandbox.trigger(.approved, orderID: "F-4", tradePointID: "TP-1")
                try await Task.sleep(for: .milliseconds(200))
                #expect(receiver.received.count == 3)
                await h.sandbox.setFaults(SandboxFaults(), tradePointID: "TP-1")
                try await h.sandbox.trigger(.declined, orderID: "F-5", tradePointID: "TP-1")
                #expect(await receiver.waitFor(5))
                let order = receiver.received.suffix(2).map { String(decoding: $0.body, as: UTF8.self).contains("F-5") ? "F-5" : "F-4" }
                #expect(order == ["F-5", "F-4"])

                let bad = try await h.raw(.PUT, "/sandbox/faults/TP-1", body: #"{"webhookDropRate":2}"#)
                #expect(bad.status == 400)
                #expect(try await h.raw(.PUT, "/sandbox/faults/NOPE", body: "{}").status == 404)
            }
        }
    }

    @Test func apiFaultsAreSeenByTheSDK() async throws {
        try await withSandbox { h in
            var faults = SandboxFaults()
            faults.apiFailNext = 2
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            // The SDK retries through two injected 503s.
            let created = try await h.client.orders.create(newOrder("A-1"))
            #expect(!created.recovered)
            faults = SandboxFaults()
            faults.apiFailureRate = 1
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let error = await kaspiError { _ = try await h.client.orders.status(of: "A-1") }
            #expect(error?.serverReply?.httpStatus == 503 || error?.code == "SANDBOX_INJECTED_FAILURE")
            faults = SandboxFaults()
            faults.apiTimeoutRate = 1
            faults.apiTimeoutSeconds = 0.2
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let timeout = try await h.raw(.GET, "/api/v1/orders/A-1/status", headers: ["Authorization": "Bearer \(h.tradePoint.apiKey)"])
            #expect(timeout.status == 504)
            faults = SandboxFaults()
            faults.apiLatencyMs = 150
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let started = ContinuousClock.now
            #expect(try await h.client.orders.status(of: "A-1").status == .pending)
            #expect(ContinuousClock.now - started >= .milliseconds(150))
        }
    }

    @Test func faultsCanBeConfiguredAtStart() async throws {
        var faults = SandboxFaults()
        faults.apiFailNext = 1
        try await withSandbox(configure: { $0.tradePoints[0].faults = faults }, retry: .none) { h in
            #expect(await kaspiError { _ = try await h.client.orders.create(newOrder("CF-1")) }?.serverReply?.httpStatus == 503)
            _ = try await h.client.orders.create(newOrder("CF-1"))
        }
        var bad = SandboxFaults()
        bad.apiFailureRate = 3
        var configuration = SandboxConfiguration()
        configuration.tradePoints = [SandboxTradePoint(id: "TP", apiKey: "k", faults: bad)]
        #expect(throws: SandboxConfigurationError.self) { try configuration.validate() }
    }

    @Test func lostResponsesAreRecoveredByTheSDK() async throws {
        try await withSandbox { h in
            var faults = SandboxFaults()
            faults.apiLoseResponseNext = 1
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let created = try await h.client.orders.create(newOrder("REC-1"))
            #expect(created.recovered)
            #expect(created.paymentURL.path.hasPrefix("/pay/"))
            #expect(try await h.raw(.GET, created.paymentURL.path).status == 200)

            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let qr = try await h.client.qr.create(amount: 700, orderID: "REC-2")
            #expect(qr.recovered && qr.png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            #expect(try await h.client.qr.status(token: qr.token) == .pending)

            try await h.sandbox.trigger(.approved, orderID: "REC-1", tradePointID: "TP-1")
            await h.sandbox.setFaults(faults, tradePointID: "TP-1")
            let refund = try await h.client.refunds.create(orderID: "REC-1", amount: 1200)
            #expect(refund.recovered && refund.refundedAmount == 1200)
            #expect(await h.sandbox.orders().first { $0.orderID == "REC-1" }?.refunds.count == 1)
        }
    }

    @Test func helpersListSettleAndReset() async throws {
        try await withSandbox { h in
            _ = try await h.client.orders.create(newOrder("H-1"))
            let approve = try await h.raw(.POST, "/sandbox/orders/H-1/approve")
            #expect(approve.status == 200 && json(approve.body)["status"] as? String == "APPROVED")
            #expect(try await h.raw(.POST, "/sandbox/orders/NOPE/approve").status == 404)
            #expect(try await h.raw(.POST, "/sandbox/orders/H-1/explode").status == 404)
            let list = try await h.raw(.GET, "/sandbox/orders")
            #expect(list.body.contains("H-1"))
            let index = try await h.raw(.GET, "/sandbox/")
            #expect(index.body.contains("7001") && index.body.contains("H-1") && !index.body.contains(h.tradePoint.apiKey))
            #expect(try await h.raw(.POST, "/sandbox/reset").status == 200)
            #expect(await h.sandbox.orders().isEmpty)
            #expect(await kaspiError { _ = try await h.client.orders.status(of: "H-1") }?.code == "ORDER_NOT_FOUND")
        }
    }

    @Test func stateSurvivesARestartWithData() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-\(UUID().uuidString).sqlite").path
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
            try await withSandbox(configure: {
                $0.dataPath = path
                $0.tradePoints[0].webhookURL = hook
            }) { h in
                _ = try await h.client.orders.create(newOrder("P-1"))
                _ = try await h.client.qr.create(amount: 300, orderID: "P-2")
                try await h.sandbox.trigger(.approved, orderID: "P-1", tradePointID: "TP-1")
                _ = try await h.client.refunds.create(orderID: "P-1", amount: 1000)
                #expect(await receiver.waitFor(1))
                await h.sandbox.advanceClock(by: 30)
            }
        }
        // The field names on disk are the wire names, whatever the Swift names: a file written
        // before a rename still loads.
        let orders = try await storedDocuments(path, table: "sandbox_orders")
        #expect(orders.count == 2)
        #expect(orders.allSatisfy { $0.contains(#""orderId":"#) && $0.contains(#""tradePointId":"#) })
        #expect(orders.contains { ["returnUrl", "failUrl", "transactionId"].allSatisfy($0.contains) })
        let webhooks = try await storedDocuments(path, table: "sandbox_webhooks")
        #expect(!webhooks.isEmpty && webhooks.allSatisfy { $0.contains(#""orderId":"#) && $0.contains(#""tradePointId":"#) })
        try await withSandbox(configure: { $0.dataPath = path }) { h in
            let status = try await h.client.orders.status(of: "P-1")
            #expect(status.status == .approved && status.refundedAmount == 1000 && status.transactionID != nil)
            #expect(try await h.client.orders.status(of: "P-2").status == .pending)
            #expect(await h.sandbox.webhooks(orderID: "P-1").first?.state == .delivered)
            #expect(h.sandbox.clock.currentOffset >= 30)
            #expect(await kaspiError { _ = try await h.client.orders.create(newOrder("P-1")) }?.code == "ORDER_ALREADY_EXISTS")
            _ = try await h.client.refunds.create(orderID: "P-1", amount: 4000)
            #expect(await kaspiError { _ = try await h.client.refunds.create(orderID: "P-1", amount: 1) }?.code == "REFUND_NOT_ALLOWED")
        }
    }
}
