import Foundation
import HTTPTypes
import KaspiGatewayClient
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import OpenAPIURLSession
import Synchronization
import Testing

/// A transport around the real one: counts requests by path, and can cut the connection of
/// the first create after the gateway has answered it (the answer is lost, the effect is not).
final class CountingTransport: ClientTransport {
    let inner: any ClientTransport
    let loseFirstCreateAnswer: Bool
    private let state = Mutex<(paths: [String], lost: Bool)>(([], false))

    init(_ inner: any ClientTransport, loseFirstCreateAnswer: Bool = false) {
        self.inner = inner
        self.loseFirstCreateAnswer = loseFirstCreateAnswer
    }

    var paths: [String] { state.withLock { $0.paths } }

    func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        state.withLock { $0.paths.append("\(request.method) \(request.path ?? "")") }
        let (response, responseBody) = try await inner.send(request, body: body, baseURL: baseURL, operationID: operationID)
        if loseFirstCreateAnswer, operationID == "createCheckout" {
            let lose = state.withLock { state -> Bool in
                defer { state.lost = true }
                return !state.lost
            }
            if lose {
                if let responseBody { _ = try await [UInt8](collecting: responseBody, upTo: 1 << 20) }
                throw URLError(.networkConnectionLost)
            }
        }
        return (response, responseBody)
    }
}

/// `KaspiGatewayClient` against a live gateway (both profiles): typed calls, idempotency keys
/// and their retries, auto-pagination, typed errors.
@Suite struct GatewayClientTests {
    static func client(
        _ url: String, key: String, transport: any ClientTransport, retries: KaspiGatewayClient.RetryPolicy = .init(initialDelay: .milliseconds(20))
    )
        throws -> KaspiGatewayClient
    {
        KaspiGatewayClient(baseURL: try #require(URL(string: url)), apiKey: key, transport: transport, retries: retries)
    }

    @Test(arguments: Backend.available)
    func aCheckoutPaidRefundedAndItsEvents(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let gateway = try Self.client(s.gatewayURL, key: s.apiKey, transport: OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport())
            let order = try await gateway.checkouts.create(.init(amount: 5000, description: "Roses", merchantReference: "cart-501"))
            #expect(order.state == .pending && order.amount == 5000 && order.merchantReference == "cart-501")
            #expect(try await gateway.orders.get(order.id).id == order.id)
            let paymentURL = try #require(order.paymentUrl)
            _ = try await s.payOnPage(paymentURL)
            #expect(try await s.waitFor(order.id, .paid))
            let refunded = try await gateway.refunds.create(orderID: order.id, amount: 1500)
            #expect(refunded.refundedAmount == 1500)
            #expect(try await gateway.refunds.list(orderID: order.id).data.count == 1)
            #expect(try await gateway.orders.events(order.id).data.count >= 2)
            var types: [String] = []
            for _ in 0..<100 {
                types = try await gateway.events.list(orderID: order.id).data.map(\._type)
                if types.contains("refund.succeeded") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(types.contains("order.paid") && types.contains("refund.succeeded"), "\(types)")
            // Following with the cursor: oldest first, each once, the cursor kept when nothing is new.
            var cursor = "0_0"
            var followed: [String] = []
            while true {
                let page = try await gateway.events.after(cursor, limit: 1)
                let next = try #require(page.nextCursor)
                if page.data.isEmpty {
                    #expect(next == cursor)
                    break
                }
                followed += page.data.map(\._type)
                #expect(page.data.allSatisfy { $0.payload?.value["type"] as? String == $0._type })
                cursor = next
            }
            #expect(followed == ["order.paid", "refund.succeeded"])
            // One order's, after a cursor.
            let ofOrder = try await s.api(.GET, "/v1/events?after=0_0&orderId=\(order.id)")
            #expect(ofOrder.status == 200 && (ofOrder.json["data"] as? [[String: Any]])?.count == 2, "\(ofOrder.body)")
            let ofNone = try await s.api(.GET, "/v1/events?after=0_0&orderId=ord_none")
            #expect(ofNone.json["nextCursor"] as? String == "0_0" && (ofNone.json["data"] as? [[String: Any]])?.isEmpty == true, "\(ofNone.body)")
            let newest = try await gateway.events.list(limit: 1)
            #expect(newest.data.map(\._type) == ["refund.succeeded"] && newest.nextCursor == cursor)
            for (query, message) in [
                ("after=x", "after is not a cursor this API returned."),
                ("limit=0", "limit must be from 1 to 500."), ("limit=501", "limit must be from 1 to 500."),
            ] {
                let answer = try await s.api(.GET, "/v1/events?" + query)
                #expect(answer.status == 400 && answer.body.contains(message), "\(query): \(answer.body)")
            }
            await #expect(throws: GatewayClientError.refused(status: 404, code: "EVENT_NOT_FOUND", message: "No event msg_nope.")) {
                try await gateway.events.resend("msg_nope")
            }
            let link = try await gateway.paymentLinks.create(amount: 3000, description: "A bouquet")
            #expect(try await gateway.paymentLinks.get(link.id).amount == 3000)
            // Typed refusals, with the gateway's code.
            await #expect(throws: GatewayClientError.refused(status: 404, code: "ORDER_NOT_FOUND", message: "No order ord_nope.")) {
                try await gateway.orders.get("ord_nope")
            }
            do {
                _ = try await gateway.checkouts.create(.init(amount: 10), idempotencyKey: "small")
                Issue.record("a 10 tenge checkout was accepted")
            } catch let error as GatewayClientError {
                #expect(
                    error
                        == .refused(status: 400, code: "INVALID_REQUEST", message: "amount must be an integer number of tenge from 100 to 100000000.")
                )
            }
            // The caller's own key: the same call replays, another body with it is a conflict.
            let first = try await gateway.checkouts.create(.init(amount: 2000), idempotencyKey: "cart-502")
            #expect(try await gateway.checkouts.create(.init(amount: 2000), idempotencyKey: "cart-502").id == first.id)
            await #expect {
                try await gateway.checkouts.create(.init(amount: 2100), idempotencyKey: "cart-502")
            } throws: { ($0 as? GatewayClientError)?.code == "IDEMPOTENCY_CONFLICT" }
            // A wrong key.
            let stranger = try Self.client(s.gatewayURL, key: "wrong-key", transport: OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport())
            await #expect { try await stranger.orders.get(order.id) } throws: { ($0 as? GatewayClientError)?.code == "UNAUTHORIZED" }
        }
    }

    @Test func listingFollowsTheCursorAcrossPages() async throws {
        try await withStack(.sqlite) { s in
            let counting = CountingTransport(OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport())
            let gateway = try Self.client(s.gatewayURL, key: s.apiKey, transport: counting)
            var made: Set<String> = []
            for n in 0..<7 { made.insert(try await gateway.checkouts.create(.init(amount: 1000 + n)).id) }
            var seen: [String] = []
            for try await order in gateway.orders.list(pageSize: 3) { seen.append(order.id) }
            #expect(Set(seen) == made && seen.count == 7, "every order once")
            #expect(counting.paths.filter { $0.hasPrefix("GET /v1/orders") }.count == 3, "\(counting.paths)")
            // Newest first, as the API lists them.
            let created = try await seen.asyncMap { try await gateway.orders.get($0).createdAt }
            #expect(created == created.sorted(by: >))
        }
    }

    @Test func aCreateWhoseAnswerWasLostIsRetriedAndMakesOneOrder() async throws {
        try await withStack(.sqlite) { s in
            let cutting = CountingTransport(OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport(), loseFirstCreateAnswer: true)
            let gateway = try Self.client(s.gatewayURL, key: s.apiKey, transport: cutting)
            let order = try await gateway.checkouts.create(.init(amount: 4400, merchantReference: "cart-lost"))
            #expect(cutting.paths.filter { $0 == "POST /v1/checkouts" }.count == 2, "sent, lost, sent again")
            let matching = try await gateway.orders.page(search: "cart-lost").orders
            #expect(matching.map(\.id) == [order.id], "one order, the one answered")
            // Without retries the loss is the caller's to see, and the order exists all the same.
            let once = try Self.client(
                s.gatewayURL, key: s.apiKey,
                transport: CountingTransport(OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport(), loseFirstCreateAnswer: true),
                retries: .none)
            await #expect { try await once.checkouts.create(.init(amount: 4500, merchantReference: "cart-lost-2")) } throws: { error in
                if case .transport = error as? GatewayClientError { return true }
                return false
            }
            #expect(try await gateway.orders.page(search: "cart-lost-2").orders.count == 1)
        }
    }

    @Test func overURLSessionTheTransportThatNeedsNothingMore() async throws {
        try await withStack(.sqlite) { s in
            // URLSession: FoundationNetworking's on Linux, Apple's elsewhere.
            let gateway = KaspiGatewayClient(
                baseURL: try #require(URL(string: s.gatewayURL + "/v1/")), apiKey: s.apiKey, transport: URLSessionTransport())
            let order = try await gateway.checkouts.create(.init(amount: 2500, merchantReference: "cart-urlsession"))
            _ = try await s.payOnPage(try #require(order.paymentUrl))
            #expect(try await s.waitFor(order.id, .paid))
            #expect(try await gateway.orders.get(order.id).state == .paid)
            var listed: [String] = []
            for try await paid in gateway.orders.list(status: "paid", pageSize: 1) { listed.append(paid.id) }
            #expect(listed == [order.id])
            await #expect { try await gateway.orders.get("ord_nope") } throws: { ($0 as? GatewayClientError)?.code == "ORDER_NOT_FOUND" }
            // Nothing listening: a transport error, after the policy's retries.
            let nowhere = KaspiGatewayClient(
                baseURL: try #require(URL(string: "http://127.0.0.1:1")), apiKey: s.apiKey, transport: URLSessionTransport(),
                retries: .init(maxAttempts: 2, initialDelay: .milliseconds(10)))
            await #expect { try await nowhere.orders.get(order.id) } throws: { error in
                if case .transport = error as? GatewayClientError { return true }
                return false
            }
        }
    }

    @Test(arguments: [KaspiQRAPI.SchemeName.r1, .r2, .r3])
    func theQRProfile(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let gateway = try Self.client(s.gatewayURL, key: s.apiKey, transport: OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport())
            let qr = try await gateway.qrCheckouts.create(.init(amount: 3300, merchantReference: "till-7"))
            #expect(!qr.qrCode.isEmpty && qr.order.amount == 3300)
            let purchase = try #require(try await s.purchase(qr.order.id))
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            try await s.sandbox.act(.confirm, paymentID: purchase.id)
            #expect(try await s.advance(6, until: qr.order.id, is: .paid))
            #expect(try await gateway.orders.get(qr.order.id).state == .paid)
            switch scheme {
            case .r1:
                let recorded = try await gateway.manualRefunds.create(orderID: qr.order.id, amount: 300, note: "app 12")
                #expect(recorded.refundedAmount == 300)
            case .r2:
                // The customer scans a return QR; the refund names it.
                let returnQR = try await gateway.returns.create()
                #expect(returnQR.qrToken.count == 41)
                try await s.sandbox.scanReturn(try #require(Int64(returnQR.id)))
                let scanned = try await gateway.returns.get(returnQR.id)
                #expect(scanned.identified && scanned.purchases.first?.orderId == qr.order.id)
                #expect(try await gateway.refunds.create(orderID: qr.order.id, amount: 300, returnID: returnQR.id).refundedAmount == 300)
            case .r3:
                #expect(try await gateway.refunds.create(orderID: qr.order.id, amount: 300).refundedAmount == 300)
                let customer = try await gateway.remoteInvoices.clientInfo(phoneNumber: "87071234567")
                #expect(customer.clientName.hasSuffix("4567"))
                let invoice = try await gateway.remoteInvoices.create(phoneNumber: "87071234567", amount: 4200, comment: "Roses")
                #expect(invoice.kind == .remote && invoice.state == .pending)
                #expect(try await gateway.orders.cancel(invoice.id).state == .cancelled)
                await #expect { try await gateway.remoteInvoices.clientInfo(phoneNumber: "87070000000") } throws: {
                    ($0 as? GatewayClientError)?.code == "KASPI_QR_CLIENT_NOT_FOUND"
                }
            }
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

/// Answers from a script: what the retry middleware does with each.
final class ScriptedClientTransport: ClientTransport {
    private let state: Mutex<(answers: [Int], sent: [String])>

    init(_ answers: [Int]) { state = Mutex((answers, [])) }

    var sent: [String] { state.withLock { $0.sent } }

    func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        let key = request.headerFields[HTTPField.Name("Idempotency-Key")!] ?? "-"
        let status = state.withLock { state -> Int in
            state.sent.append("\(request.method) \(request.path ?? "") \(key)")
            return state.answers.isEmpty ? 500 : state.answers.removeFirst()
        }
        var response = HTTPResponse(status: .init(code: status))
        if status == 429 { response.headerFields[.retryAfter] = "0" }
        response.headerFields[.contentType] = "application/json"
        if status >= 400 {
            return (response, HTTPBody(#"{"error":{"code":"BUSY","message":"try again"}}"#))
        }
        let order =
            #"{"id":"ord_1","state":"pending","kind":"redirect","amount":1500,"refundedAmount":0,"currency":"KZT","provider":"kaspi-pay","providerOrderId":"kk_1","needsReview":false,"createdAt":"2026-12-02T10:00:00.000Z","updatedAt":"2026-12-02T10:00:00.000Z"}"#
        return (response, HTTPBody(order))
    }
}

@Suite struct GatewayClientRetryTests {
    static func client(_ transport: ScriptedClientTransport) throws -> KaspiGatewayClient {
        KaspiGatewayClient(
            baseURL: try #require(URL(string: "http://127.0.0.1:1")), apiKey: "k", transport: transport,
            retries: .init(maxAttempts: 3, initialDelay: .milliseconds(1)))
    }

    @Test func aCreateIsRetriedWithTheSameKeyAfterA503AndA429() async throws {
        let transport = ScriptedClientTransport([503, 429, 201])
        let order = try await Self.client(transport).checkouts.create(.init(amount: 1500))
        #expect(order.id == "ord_1")
        let keys = Set(transport.sent.map { $0.split(separator: " ").last.map(String.init) ?? "" })
        #expect(transport.sent.count == 3 && keys.count == 1 && keys.first?.hasPrefix("kgc_") == true, "\(transport.sent)")
    }

    @Test func aPostWithoutAKeyIsNotRetriedAndTheRefusalIsTyped() async throws {
        let transport = ScriptedClientTransport([503, 200])
        await #expect(throws: GatewayClientError.refused(status: 503, code: "BUSY", message: "try again")) {
            try await Self.client(transport).orders.refresh("ord_1")
        }
        #expect(transport.sent.count == 1)
        // Reads are retried; attempts are bounded.
        let reads = ScriptedClientTransport([500, 500, 500, 200])
        await #expect(throws: GatewayClientError.refused(status: 500, code: "BUSY", message: "try again")) {
            try await Self.client(reads).orders.get("ord_1")
        }
        #expect(reads.sent.count == 3)
    }
}
