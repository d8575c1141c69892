import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Logging
import SQLiteNIO
import Testing

/// The sandbox keeps a bounded number of orders in memory and reads the others back from
/// SQLite: answers stay the same whichever side an order is on.
@Suite("Sandbox memory")
struct SandboxMemoryTests {
    /// Orders from `/sandbox/stats`.
    func stats(_ h: Harness) async throws -> (orders: Int, inMemory: Int) {
        let response = try await h.raw(.GET, "/sandbox/stats")
        let object = json(response.body)
        return (object["orders"] as? Int ?? -1, object["ordersInMemory"] as? Int ?? -1)
    }

    @Test(arguments: [false, true])
    func ordersWrittenAsideAnswerAsBefore(durable: Bool) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-mem-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        try await withSandbox(configure: {
            $0.memoryOrderLimit = 20
            $0.rateLimitPerMinute = nil
            if durable { $0.dataPath = path }
        }) { h in
            var created: [CreatedOrder] = []
            for i in 0..<120 { created.append(try await h.client.orders.create(try newOrder("M-\(i)", amount: 1000 + i))) }
            // A QR order with its timer stays in memory whatever else comes.
            _ = try await h.client.qr.create(amount: 300, orderID: "M-QR")
            for i in 120..<200 { created.append(try await h.client.orders.create(try newOrder("M-\(i)", amount: 1000 + i))) }
            let counted = try await stats(h)
            #expect(counted.orders == 201)
            #expect(counted.inMemory <= 20 + 1)
            // The first order is on disk only: its status, its page, paying on it, its refund.
            let status = try await h.client.orders.status(of: "M-0")
            #expect(status.status == .pending && status.amount == 1000)
            let page = try await h.raw(.GET, created[1].paymentURL.path)
            #expect(page.status == 200 && page.body.contains("Order #M-1"))
            let paid = try await h.raw(
                .POST, created[1].paymentURL.path, body: "action=pay", headers: ["Content-Type": "application/x-www-form-urlencoded"])
            #expect(paid.status == 303)
            #expect(try await h.client.orders.status(of: "M-1").status == .approved)
            _ = try await h.client.refunds.create(orderID: "M-1", amount: 500)
            // Push M-1 out again, then read it back: the refund and the payment were kept.
            for i in 200..<260 { _ = try await h.client.orders.create(try newOrder("M-\(i)", amount: 1000 + i)) }
            let again = try await h.client.orders.status(of: "M-1")
            #expect(again.status == .approved && again.refundedAmount == 500 && again.transactionID != nil)
            // An id on disk only is still taken.
            #expect(await kaspiError { _ = try await h.client.orders.create(try newOrder("M-2")) }?.code == "ORDER_ALREADY_EXISTS")
            // The helpers find orders on disk only.
            #expect(try await h.raw(.POST, "/sandbox/orders/M-3/decline").status == 200)
            #expect(try await h.client.orders.status(of: "M-3").status == .declined)
            // Every order listed once, oldest first, with its latest state.
            let listed = await h.sandbox.orders()
            #expect(listed.count == 261)
            #expect(listed.map(\.orderID).prefix(3) == ["M-0", "M-1", "M-2"])
            #expect(listed.first { $0.orderID == "M-1" }?.refundedAmount == 500)
            #expect(Set(listed.map(\.orderID)).count == 261)
            // Orders read back and changed since are counted once.
            #expect(try await stats(h).orders == 261)
            // The QR order still expires on time.
            await h.sandbox.advanceClock(by: 3600)
            #expect(try await h.client.orders.status(of: "M-QR").status == .cancelled)
            #expect(try await stats(h).inMemory <= 21)
            // A reset forgets the orders on disk too.
            #expect(try await h.raw(.POST, "/sandbox/reset").status == 200)
            #expect(try await stats(h).orders == 0)
            #expect(await kaspiError { _ = try await h.client.orders.status(of: "M-0") }?.code == "ORDER_NOT_FOUND")
            _ = try await h.client.orders.create(try newOrder("M-0"))
        }
        if durable {
            // A restart reads orders from the file as they are asked for.
            try await withSandbox(configure: {
                $0.memoryOrderLimit = 20
                $0.dataPath = path
            }) { (h: Harness) async throws -> Void in
                #expect(try await stats(h).orders == 1)
                #expect(try await h.client.orders.status(of: "M-0").status == .pending)
            }
        }
    }

    /// A data file written by a sandbox before the order archive (schema 1: id and document
    /// only) is moved to the new schema and reads as before.
    @Test func aVersion1DataFileStillLoads() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-v1-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: Logger(label: "test"))
        for statement in [
            "CREATE TABLE sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO sandbox_meta (key, value) VALUES ('schema_version', '1')",
            "CREATE TABLE sandbox_orders (id TEXT PRIMARY KEY, document TEXT NOT NULL)",
            "CREATE TABLE sandbox_webhooks (id TEXT PRIMARY KEY, document TEXT NOT NULL)",
        ] {
            _ = try await connection.query(statement, [])
        }
        // As the version before wrote them: two orders, the later one first in the table.
        let documents = [
            #"{"amount":7000,"createdAt":1800000100,"kind":"redirect","orderId":"OLD-2","paymentToken":"tok2","refundedAmount":0,"refunds":[],"returnUrl":"https://shop.example/ok","status":"APPROVED","tradePointId":"TP-1","transactionId":"123456789012","updatedAt":1800000200}"#,
            #"{"amount":5000,"createdAt":1800000000,"kind":"redirect","orderId":"OLD-1","paymentToken":"tok1","refundedAmount":0,"refunds":[],"status":"PENDING","tradePointId":"TP-1","updatedAt":1800000000}"#,
        ]
        for (index, document) in documents.enumerated() {
            _ = try await connection.query(
                "INSERT INTO sandbox_orders (id, document) VALUES (?, ?)", [.text("TP-1\u{1F}OLD-\(2 - index)"), .text(document)])
        }
        try await connection.close()
        try await withSandbox(configure: { $0.dataPath = path }) { h in
            #expect(try await h.client.orders.status(of: "OLD-1").status == .pending)
            let paid = try await h.client.orders.status(of: "OLD-2")
            #expect(paid.status == .approved && paid.transactionID == "123456789012")
            #expect(await h.sandbox.orders().map(\.orderID) == ["OLD-1", "OLD-2"])
            // Its payment page is found by token.
            #expect(try await h.raw(.GET, "/pay/tok1").status == 200)
            #expect(await kaspiError { _ = try await h.client.orders.create(try newOrder("OLD-1")) }?.code == "ORDER_ALREADY_EXISTS")
        }
    }
}
