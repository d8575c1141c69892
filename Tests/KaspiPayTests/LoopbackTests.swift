import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiTestServer
import Testing

/// The client over AsyncHTTPClient against a real HTTP server on loopback.
@Suite("Over loopback with AsyncHTTPClient")
struct LoopbackTests {
    func withClient<T: Sendable>(
        _ server: ContractServer, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(10), jitter: 0),
        timeout: Duration = .seconds(30),
        _ body: @Sendable @escaping (KaspiClient) async throws -> T
    ) async throws -> T {
        try await server.run { url in
            let configuration = KaspiConfiguration(
                environment: .custom(url), tradePointID: try TradePointID(server.tradePointID),
                apiKey: try APIKey(server.apiKey), requestTimeout: timeout, retryPolicy: retry)
            let transport = AsyncHTTPClientTransport()
            let client = KaspiClient(configuration: configuration, transport: transport)
            do {
                let result = try await body(client)
                try await transport.shutdown()
                return result
            } catch {
                try await transport.shutdown()
                throw error
            }
        }
    }

    @Test func theGuidesRedirectFlow() async throws {
        let server = ContractServer()
        try await withClient(server) { client in
            let created = try await client.orders.create(newOrder("ORDER-42"))
            #expect(created.paymentURL.absoluteString == "http://pay.test/pay/ORDER-42")
            #expect(try await client.orders.status(of: "ORDER-42").status == .pending)
            server.setStatus("ORDER-42", "APPROVED")
            let status = try await client.orders.status(of: "ORDER-42")
            #expect(status.status == .approved)
            #expect(status.transactionID == "TX-ORDER-42")
            #expect(status.amount == 5000)
            let partial = try await client.refunds.create(orderID: "ORDER-42", amount: 1500, transactionID: "TX-ORDER-42")
            #expect(partial.refundedAmount == 1500)
            let rest = try await client.refunds.create(orderID: "ORDER-42", amount: 3500)
            #expect(rest.refundedAmount == 5000)
            let over = await kaspiError { _ = try await client.refunds.create(orderID: "ORDER-42", amount: 1) }
            #expect(over?.code == "REFUND_NOT_ALLOWED")
            #expect(try await client.orders.status(of: "ORDER-42").status == .approved)
        }
        // Every request carried the bearer key, as the guide's snippets do.
        #expect(server.requests.allSatisfy { $0.authorization == "Bearer \(server.apiKey)" })
    }

    @Test func theGuidesQRFlow() async throws {
        let server = ContractServer()
        try await withClient(server) { client in
            let qr = try await client.qr.create(amount: 1000, orderID: "QR-7")
            #expect(qr.png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            #expect(try await client.qr.status(token: qr.token) == .pending)
            let waiter = Task {
                try await client.qr.waitForPayment(token: qr.token, options: PollingOptions(interval: .milliseconds(20), maxAttempts: 500))
            }
            try await Task.sleep(for: .milliseconds(60))
            server.setStatus("QR-7", "APPROVED")
            let outcome = try await waiter.value
            #expect(outcome.name == "paid")
        }
    }

    @Test func serverErrorsArriveTyped() async throws {
        let server = ContractServer()
        try await withClient(server) { client in
            _ = try await client.orders.create(newOrder("DUP-1"))
            #expect(await kaspiError { _ = try await client.orders.create(newOrder("DUP-1")) }?.code == "ORDER_ALREADY_EXISTS")
            var foreign = try newOrder("FOREIGN-1")
            foreign.returnURL = URL(string: "https://evil.example/ok")!
            #expect(await kaspiError { _ = try await client.orders.create(foreign) }?.code == "INVALID_RETURN_URL")
            #expect(await kaspiError { _ = try await client.orders.status(of: "NOPE") }?.code == "ORDER_NOT_FOUND")
            #expect(await kaspiError { _ = try await client.qr.status(token: "nope") }?.code == "ORDER_NOT_FOUND")
            #expect(await kaspiError { _ = try await client.refunds.create(orderID: "DUP-1", amount: 100) }?.code == "REFUND_NOT_ALLOWED")
        }
        let wrongKey = ContractServer()
        try await wrongKey.run { url in
            let configuration = KaspiConfiguration(
                environment: .custom(url), tradePointID: try TradePointID(wrongKey.tradePointID), apiKey: try APIKey("wrong"),
                retryPolicy: .none)
            let transport = AsyncHTTPClientTransport()
            let client = KaspiClient(configuration: configuration, transport: transport)
            #expect(await kaspiError { _ = try await client.orders.create(newOrder()) }?.code == "INVALID_SIGNATURE")
            #expect(await kaspiError { _ = try await client.orders.status(of: "ORDER-1") }?.code == "UNAUTHORIZED")
            try await transport.shutdown()
        }
        let otherTradePoint = ContractServer(tradePointID: "TP-OTHER")
        try await otherTradePoint.run { url in
            let configuration = KaspiConfiguration(
                environment: .custom(url), tradePointID: "TP-MINE", apiKey: try APIKey(otherTradePoint.apiKey), retryPolicy: .none)
            let transport = AsyncHTTPClientTransport()
            let client = KaspiClient(configuration: configuration, transport: transport)
            #expect(await kaspiError { _ = try await client.orders.create(newOrder()) }?.code == "TRADE_POINT_NOT_FOUND")
            try await transport.shutdown()
        }
    }

    @Test func aLostCreateResponseIsRecovered() async throws {
        let server = ContractServer()
        server.inject(.loseResponse, path: "/orders/create")
        let created = try await withClient(server) { client in try await client.orders.create(newOrder("LOST-1")) }
        #expect(created.recovered)
        #expect(created.paymentURL.absoluteString == "http://pay.test/pay/LOST-1")
        #expect(server.requests.filter { $0.path == "/api/v1/orders/create" }.count == 2)
    }

    @Test func aLostRefundResponseIsConfirmedNotResent() async throws {
        let server = ContractServer()
        try await withClient(server) { client in
            _ = try await client.orders.create(newOrder("RF-LOST"))
            server.setStatus("RF-LOST", "APPROVED")
            server.inject(.loseResponse, path: "/refund")
            let refund = try await client.refunds.create(orderID: "RF-LOST", amount: 1000)
            #expect(refund.recovered && refund.refundedAmount == 1000)
        }
        #expect(server.order("RF-LOST")?.refunded == 1000)
        #expect(server.requests.filter { $0.path.hasSuffix("/refund") }.count == 1)
    }

    @Test func aTimeoutIsReportedAsATimeout() async throws {
        let server = ContractServer()
        server.inject(.stall(.seconds(3)), path: "/status")
        let error = await kaspiError {
            try await withClient(server, retry: .none, timeout: .milliseconds(300)) { client in
                _ = try await client.orders.status(of: "ANY")
            }
        }
        #expect(error == .timeout)
    }

    @Test func aFailingServerIsRetriedThenReported() async throws {
        let server = ContractServer()
        server.inject(.fail(status: 503), path: "/status")
        server.inject(.rateLimit(retryAfter: 0), path: "/status")
        try await withClient(server) { client in
            _ = try await client.orders.create(newOrder("RETRY-1"))
            #expect(try await client.orders.status(of: "RETRY-1").status == .pending)
        }
        // Two injected failures, then success: at least three reads (a slow machine may time one out and add a fourth).
        #expect(server.requests.filter { $0.path.hasSuffix("/status") }.count >= 3)
        let broken = ContractServer()
        for _ in 0..<3 { broken.inject(.fail(status: 500), path: "/status") }
        let error = await kaspiError { try await withClient(broken) { client in _ = try await client.orders.status(of: "X") } }
        #expect(error == .unexpectedStatus(500, bodySnippet: "<html>upstream error</html>"))
    }

    @Test func nothingListeningIsATransportFailure() async throws {
        // Bind a server, note its port, stop it: nothing listens there any more.
        let server = ContractServer()
        let url = try await server.run { url in url }
        let configuration = KaspiConfiguration(
            environment: .custom(url), tradePointID: "TP", apiKey: try APIKey("k"), retryPolicy: .none)
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(2))
        let client = KaspiClient(configuration: configuration, transport: transport)
        let error = await kaspiError { _ = try await client.orders.status(of: "A") }
        try await transport.shutdown()
        #expect(error?.code == "TRANSPORT_FAILURE")
    }
}
