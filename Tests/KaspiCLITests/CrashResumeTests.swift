import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import KaspiGatewayTestSupport
import KaspiPayTesting
import KaspiSandbox
import NIOCore
import Testing

/// `kill -9` in the middle of a checkout and of a refund, then the shop's retry with the same
/// Idempotency-Key: the work is resumed, and happens exactly once. One case at a time: each
/// starts `kaspi gateway` three times, which on two cores would starve the rest of the suite.
@Suite("kaspi gateway: crashes mid-request, resumed by the retry", .serialized)
struct CrashResumeTests {
    /// When the gateway dies: while its call is on the way (Kaspi acts on it two seconds later,
    /// after the caller is gone), or after Kaspi acted on it but before its answer came back.
    enum Moment: String, CaseIterable, CustomTestStringConvertible {
        case whileKaspiIsAsked, afterKaspiActs
        var testDescription: String { rawValue }
    }

    struct Answer {
        var status: Int
        var retryAfter: Int?
        var replayed: Bool
        var json: [String: Any]
    }

    static func post(_ port: Int, _ path: String, _ body: String, key: String) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(GatewayCLITests.apiKey)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: key)
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await GatewayCLITests.http.execute(request, timeout: .seconds(90))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After").flatMap(Int.init),
            replayed: response.headers.first(name: "Idempotent-Replayed") == "true",
            json: (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:])
    }

    /// Retries as a shop does: again after `Retry-After` while the key is in progress.
    static func retry(_ port: Int, _ path: String, _ body: String, key: String) async throws -> Answer {
        var answer = try await post(port, path, body, key: key)
        for _ in 0..<60
        where answer.status == 409 && answer.json["error"].flatMap({ ($0 as? [String: Any])?["code"] as? String }) == "IDEMPOTENCY_IN_PROGRESS" {
            try await Task.sleep(for: .seconds(answer.retryAfter ?? 1))
            answer = try await post(port, path, body, key: key)
        }
        return answer
    }

    static func until(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<400 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    @Test(arguments: Backend.available, Moment.allCases)
    func killedCheckoutAndRefundResumeExactlyOnce(_ backend: Backend, _ moment: Moment) async throws {
        let (database, drop) = try await GatewayCLITests.database(backend)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A refund with an unknown outcome is settled from Kaspi's record once no call can still
        // reach Kaspi: here, past the sandbox's two seconds.
        let config = directory.appendingPathComponent("gateway.json").path
        try Data(#"{"refundSettleAfter": 5}"#.utf8).write(to: URL(fileURLWithPath: config))
        let port = FreePort.find()
        let sandbox = try await Sandbox(configuration: GatewayCLITests.sandboxConfiguration(gatewayPorts: [port]))
        try await sandbox.application().test(.live) { client in
            let sandboxURL = "http://127.0.0.1:\(client.port!)"
            func start() async throws -> BackgroundProcess {
                try await GatewayCLITests.startGateway(
                    database: database, port: port, sandboxURL: sandboxURL, instance: "gw-crash", extra: ["--config", config])
            }
            var slow = SandboxFaults()
            switch moment {
            case .whileKaspiIsAsked: slow.apiLatencyMs = 2000
            case .afterKaspiActs: slow.apiAnswerDelayMs = 2000
            }
            await sandbox.setFaults(slow, tradePointID: "TP-CLI-GW")

            // A checkout, killed while Kaspi is being asked.
            var gateway = try await start()
            let checkoutBody = #"{"amount":7300,"merchantReference":"crash-1"}"#
            let first = Task { _ = try? await Self.post(port, "/v1/checkouts", checkoutBody, key: "crash-checkout") }
            #expect(try await Self.until { (try await GatewayCLITests.api(port, "GET", "/v1/orders")["data"] as? [Any])?.count == 1 })
            if moment == .afterKaspiActs { #expect(try await Self.until { await sandbox.orders().count == 1 }) }
            await gateway.stop(signal: SIGKILL)
            _ = await first.value
            gateway = try await start()
            let created = try await Self.retry(port, "/v1/checkouts", checkoutBody, key: "crash-checkout")
            #expect(created.status == 201 && !created.replayed, "\(created.status) \(created.json)")
            let id = try #require(created.json["id"] as? String)
            let paymentURL = try #require(created.json["paymentUrl"] as? String)
            let orders = try await GatewayCLITests.api(port, "GET", "/v1/orders")["data"] as? [[String: Any]] ?? []
            #expect(orders.map { $0["id"] as? String } == [id])
            #expect(await sandbox.orders().count == 1)
            let replay = try await Self.post(port, "/v1/checkouts", checkoutBody, key: "crash-checkout")
            #expect(replay.status == 201 && replay.replayed && replay.json["id"] as? String == id)

            // Paid; then a refund, killed while Kaspi is being asked.
            await sandbox.setFaults(SandboxFaults(), tradePointID: "TP-CLI-GW")
            try await GatewayCLITests.pay(paymentURL)
            #expect(try await Self.until { try await GatewayCLITests.api(port, "GET", "/v1/orders/\(id)")["state"] as? String == "paid" })
            await sandbox.setFaults(slow, tradePointID: "TP-CLI-GW")
            let refundBody = #"{"amount":1000}"#
            let refundPath = "/v1/orders/\(id)/refunds"
            let firstRefund = Task { _ = try? await Self.post(port, refundPath, refundBody, key: "crash-refund") }
            #expect(try await Self.until { (try await GatewayCLITests.api(port, "GET", refundPath)["data"] as? [Any])?.count == 1 })
            if moment == .afterKaspiActs { #expect(try await Self.until { await sandbox.orders().first?.refundedAmount == 1000 }) }
            await gateway.stop(signal: SIGKILL)
            _ = await firstRefund.value
            gateway = try await start()
            let refunded = try await Self.retry(port, refundPath, refundBody, key: "crash-refund")
            #expect(refunded.status == 201, "\(refunded.status) \(refunded.json)")
            #expect(refunded.json["refundedAmount"] as? Int == 1000)
            // Exactly once at Kaspi, and once in the gateway's record.
            #expect(await sandbox.orders().first?.refundedAmount == 1000)
            let refunds = try await GatewayCLITests.api(port, "GET", refundPath)["data"] as? [[String: Any]] ?? []
            #expect(refunds.filter { $0["status"] as? String == "succeeded" }.map { $0["amount"] as? Int } == [1000], "\(refunds)")
            let again = try await Self.post(port, refundPath, refundBody, key: "crash-refund")
            #expect(again.status == 201 && again.replayed)
            #expect(await gateway.stop() == 0)
        }
        await drop()
    }
}
