import Foundation
import HTTPTypes
import KaspiPay
import KaspiPayTesting
import Testing

@Suite("Requests, exactly as the contract says")
struct RequestTests {
    @Test func createOrder() async throws {
        let (client, transport, _) = scriptedClient([.json(#"{"paymentUrl":"https://pay.example/p/1","orderId":"ORDER-1"}"#)])
        let created = try await client.orders.create(newOrder())
        #expect(created.paymentURL.absoluteString == "https://pay.example/p/1")
        #expect(created.status == .pending)
        #expect(!created.recovered)
        let sent = try #require(transport.requests.first)
        #expect(sent.request.method == .post)
        #expect(sent.request.scheme == "http")
        #expect(sent.request.authority == "127.0.0.1:9")
        #expect(sent.request.path == "/api/v1/orders/create")
        #expect(sent.request.headerFields[.contentType] == "application/json")
        #expect(sent.request.headerFields[.authorization] == "Bearer test_key_abc")
        let signature = Signature.compute(.createOrder, amount: 5000, orderID: "ORDER-1", apiKey: try APIKey("test_key_abc"))
        #expect(
            sent.bodyText
                == #"{"amount":5000,"description":"Order #ORDER-1","failUrl":"https://shop.example/payment/fail?orderId=ORDER-1","orderId":"ORDER-1","returnUrl":"https://shop.example/payment/success?orderId=ORDER-1","signature":"\#(signature)","tradePointId":"TP-1"}"#
        )
    }

    @Test func createOrderWithoutDescriptionOmitsIt() async throws {
        let (client, transport, _) = scriptedClient([.json(#"{"paymentUrl":"https://pay.example/p/1","orderId":"ORDER-1"}"#)])
        var order = try newOrder()
        order.description = nil
        _ = try await client.orders.create(order)
        #expect(
            jsonObject(transport.requests[0].bodyText).keys.sorted() == ["amount", "failUrl", "orderId", "returnUrl", "signature", "tradePointId"])
    }

    @Test func createQR() async throws {
        let png = Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).base64EncodedString()
        let (client, transport, _) = scriptedClient([.json(#"{"qrCode":"\#(png)","qrToken":"tok_1"}"#)])
        let qr = try await client.qr.create(amount: 250, orderID: "QR-1")
        #expect(qr.token == "tok_1")
        #expect(qr.png == [0x89, 0x50, 0x4E, 0x47, 1, 2, 3])
        let sent = transport.requests[0]
        #expect(sent.request.path == "/api/v1/qr/create")
        let signature = Signature.compute(.createQR, amount: 250, orderID: "QR-1", apiKey: try APIKey("test_key_abc"))
        #expect(sent.bodyText == #"{"amount":250,"orderId":"QR-1","signature":"\#(signature)","tradePointId":"TP-1"}"#)
    }

    @Test func statusReads() async throws {
        let (client, transport, _) = scriptedClient([
            .json(#"{"status":"APPROVED","orderId":"ORDER-1","amount":5000,"transactionId":"TX-9","refundedAmount":300,"newField":{"x":1}}"#),
            .json(#"{"status":"PENDING"}"#),
        ])
        let status = try await client.orders.status(of: "ORDER-1")
        #expect(status == OrderStatus(status: .approved, amount: 5000, transactionID: "TX-9", refundedAmount: 300))
        #expect(try await client.qr.status(token: "tok:1") == .pending)
        #expect(transport.requests.map(\.request.method) == [.get, .get])
        #expect(transport.requests.map(\.request.path) == ["/api/v1/orders/ORDER-1/status", "/api/v1/qr/tok:1/status"])
        #expect(transport.requests.allSatisfy { $0.body == nil && $0.request.headerFields[.authorization] == "Bearer test_key_abc" })
    }

    @Test func refundReadsTheRefundedAmountThenSends() async throws {
        let (client, transport, _) = scriptedClient([
            .json(#"{"status":"APPROVED","amount":5000,"refundedAmount":0,"transactionId":"TX-1"}"#),
            .json(#"{"orderId":"ORDER-1","refundId":"RF-1","amount":2000,"refundedAmount":2000}"#),
        ])
        let refund = try await client.refunds.create(orderID: "ORDER-1", amount: 2000, transactionID: "TX-1")
        #expect(refund == Refund(orderID: "ORDER-1", refundID: "RF-1", amount: 2000, refundedAmount: 2000, recovered: false))
        let sent = transport.requests[1]
        #expect(sent.request.path == "/api/v1/orders/ORDER-1/refund")
        let signature = Signature.compute(.refund, amount: 2000, orderID: "ORDER-1", apiKey: try APIKey("test_key_abc"))
        #expect(sent.bodyText == #"{"amount":2000,"signature":"\#(signature)","transactionId":"TX-1"}"#)
    }

    @Test func baseURLPathIsKept() async throws {
        let (client, transport, _) = scriptedClient(
            [.json(#"{"status":"PENDING"}"#)], configuration: testConfiguration(baseURL: "https://gw.example:8443/kaspi/"))
        _ = try await client.orders.status(of: "A")
        #expect(transport.requests[0].request.path == "/kaspi/api/v1/orders/A/status")
        #expect(transport.requests[0].request.authority == "gw.example:8443")
        #expect(transport.requests[0].request.scheme == "https")
    }

    @Test func inputIsValidatedBeforeAnythingIsSent() async throws {
        let (client, transport, _) = scriptedClient([])
        var small = try newOrder()
        small.amount = 99
        #expect(await kaspiError { _ = try await client.orders.create(small) } == .amountBelowMinimum(99))
        var badReturn = try newOrder()
        badReturn.returnURL = URL(string: "/relative")!
        #expect(await kaspiError { _ = try await client.orders.create(badReturn) }?.code == "INVALID_URL")
        var badFail = try newOrder()
        badFail.failURL = URL(string: "ftp://shop.example/fail")!
        let failError = await kaspiError { _ = try await client.orders.create(badFail) }
        guard case .invalidURL(let field, _, _)? = failError else {
            Issue.record("expected invalidURL")
            return
        }
        #expect(field == "failUrl")
        var long = try newOrder()
        long.description = String(repeating: "д", count: 257)
        #expect(await kaspiError { _ = try await client.orders.create(long) } == .descriptionTooLong(257))
        #expect(await kaspiError { _ = try await client.qr.create(amount: 10, orderID: "Q") } == .amountBelowMinimum(10))
        #expect(await kaspiError { _ = try await client.refunds.create(orderID: "A", amount: 0) } == .zeroRefund)
        #expect(
            await kaspiError { _ = try await client.refunds.create(orderID: "A", amount: 5, transactionID: "") }?.code == "INVALID_TRANSACTION_ID")
        #expect(await kaspiError { _ = try await client.qr.status(token: "a/b") }?.code == "INVALID_QR_TOKEN")
        #expect(await kaspiError { _ = try await client.qr.status(token: "") }?.code == "INVALID_QR_TOKEN")
        #expect(transport.requests.isEmpty)
    }
}

@Suite("Responses and errors")
struct ResponseTests {
    static let contractErrors: [(String, Int, String)] = [
        ("INVALID_SIGNATURE", 400, "INVALID_SIGNATURE"), ("ORDER_ALREADY_EXISTS", 409, "ORDER_ALREADY_EXISTS"),
        ("TRADE_POINT_NOT_FOUND", 404, "TRADE_POINT_NOT_FOUND"), ("AMOUNT_TOO_SMALL", 400, "AMOUNT_TOO_SMALL"),
        ("INVALID_RETURN_URL", 400, "INVALID_RETURN_URL"), ("UNAUTHORIZED", 401, "UNAUTHORIZED"),
        ("ORDER_NOT_FOUND", 404, "ORDER_NOT_FOUND"), ("INVALID_REQUEST", 400, "INVALID_REQUEST"),
        ("REFUND_NOT_ALLOWED", 409, "REFUND_NOT_ALLOWED"), ("SOMETHING_NEW", 418, "SOMETHING_NEW"),
    ]

    @Test(arguments: contractErrors.map { "\($0.0)|\($0.1)|\($0.2)" })
    func everyContractErrorMapsByCode(_ row: String) async throws {
        let parts = row.split(separator: "|").map(String.init)
        let (client, _, _) = scriptedClient([.error(parts[0], status: Int(parts[1])!, message: "said the server")])
        let error = try #require(await kaspiError { _ = try await client.orders.create(newOrder()) })
        #expect(error.code == parts[2])
        #expect(error.serverReply == ServerReply(httpStatus: Int(parts[1])!, message: "said the server"))
        #expect(error.description.hasPrefix(parts[2] + ": "))
        #expect(error.description.contains("said the server"))
    }

    @Test func rateLimitedCarriesRetryAfter() async throws {
        let (client, _, _) = scriptedClient(
            [.error("RATE_LIMITED", status: 429, headers: ["Retry-After": "120"])],
            configuration: testConfiguration(retry: .none))
        let error = await kaspiError { _ = try await client.orders.status(of: "A") }
        guard case .rateLimited(_, let retryAfter)? = error else {
            Issue.record("expected rateLimited")
            return
        }
        #expect(retryAfter == .seconds(120))
    }

    @Test func nonJSONBodiesAndUnexpectedStatuses() async throws {
        let (client, _, _) = scriptedClient(
            [.respond(status: 502, body: "<html>Bad Gateway</html>"), .respond(status: 404, body: "")],
            configuration: testConfiguration(retry: .none))
        #expect(await kaspiError { _ = try await client.orders.status(of: "A") } == .unexpectedStatus(502, bodySnippet: "<html>Bad Gateway</html>"))
        #expect(await kaspiError { _ = try await client.orders.status(of: "A") } == .unexpectedStatus(404, bodySnippet: ""))
    }

    @Test func longBodiesAreCut() async throws {
        let (client, _, _) = scriptedClient(
            [.respond(status: 500, body: String(repeating: "x", count: 5000))], configuration: testConfiguration(retry: .none))
        let error = await kaspiError { _ = try await client.orders.status(of: "A") }
        guard case .unexpectedStatus(500, let snippet)? = error else {
            Issue.record("expected unexpectedStatus")
            return
        }
        #expect(snippet.count == 257)
        #expect(snippet.hasSuffix("…"))
    }

    @Test(arguments: [
        #"not json"#, #"{"orderId":"ORDER-1"}"#, #"{"paymentUrl":42}"#, #"{"paymentUrl":"not a url"}"#, #"[]"#,
    ])
    func undecodableCreateResponses(_ body: String) async throws {
        let (client, _, _) = scriptedClient([.json(body)], configuration: testConfiguration(retry: .none))
        let error = await kaspiError { _ = try await client.orders.create(newOrder()) }
        #expect(error?.code == "UNDECODABLE_BODY")
    }

    @Test func undecodableStatusResponses() async throws {
        let (client, _, _) = scriptedClient(
            [.json(#"{"status":7}"#), .json(#"{"qrCode":"%%%","qrToken":"t"}"#)], configuration: testConfiguration(retry: .none))
        let first = await kaspiError { _ = try await client.orders.status(of: "A") }
        guard case .undecodableBody(200, let reason, _)? = first else {
            Issue.record("expected undecodable")
            return
        }
        #expect(reason.contains("status"))
        #expect(await kaspiError { _ = try await client.qr.create(amount: 100, orderID: "Q") }?.code == "UNDECODABLE_BODY")
    }

    @Test func unknownStatusIsKept() async throws {
        let (client, _, _) = scriptedClient([.json(#"{"status":"ON_HOLD"}"#)])
        #expect(try await client.orders.status(of: "A").status == .unknown("ON_HOLD"))
    }

    @Test func transportFailuresAndTimeouts() async throws {
        let (client, _, _) = scriptedClient(
            [.fail(.timedOut), .fail(.failed("connection refused"))], configuration: testConfiguration(retry: .none))
        #expect(await kaspiError { _ = try await client.orders.status(of: "A") } == .timeout)
        #expect(await kaspiError { _ = try await client.orders.status(of: "A") } == .transport("connection refused"))
    }
}
