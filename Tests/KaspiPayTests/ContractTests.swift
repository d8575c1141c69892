import Foundation
import KaspiPay
import KaspiPayTesting
import Testing

/// Holds the SDK against openapi/kaspi-pay.yaml: what it sends must match the request schemas,
/// and what it accepts must be what the response schemas describe.
@Suite("The SDK against the OpenAPI contract")
struct ContractTests {
    let contract = try! ContractChecker.kaspiPay()

    @Test func theDocumentCoversEveryEndpoint() {
        let operations = contract.operations.map { "\($0.method.uppercased()) \($0.path)" }
        #expect(
            operations == [
                "POST /api/v1/orders/create", "POST /api/v1/orders/{orderId}/refund", "GET /api/v1/orders/{orderId}/status",
                "POST /api/v1/qr/create", "GET /api/v1/qr/{qrToken}/status",
            ])
    }

    @Test func theErrorCodesAreExactlyTheSDKs() async throws {
        guard case .array(let codes)? = try contract.schema(named: "ErrorCode")["enum"] else {
            Issue.record("ErrorCode has no enum")
            return
        }
        let documented = codes.compactMap { if case .string(let s) = $0 { s } else { nil } }
        for code in documented {
            let (client, _, _) = scriptedClient([.error(code, status: 400)], configuration: testConfiguration(retry: .none))
            let error = await kaspiError { _ = try await client.orders.status(of: "A") }
            guard case .otherAPIError? = error else {
                #expect(error?.code == code)
                continue
            }
            Issue.record("the SDK has no case for the documented code \(code)")
        }
        #expect(documented.count == 10)
    }

    @Test func extensionsAreMarked() throws {
        let status = try contract.schema(named: "OrderStatusResponse")
        for field in ["orderId", "amount", "transactionId", "refundedAmount", "paymentUrl", "qrToken", "qrCode"] {
            #expect(status["properties"]?[field]?["x-extension"] == .bool(true), "\(field)")
        }
        #expect(status["properties"]?["status"]?["x-extension"] == nil)
        #expect(try contract.schema(named: "CreateOrderResponse")["properties"]?["status"]?["x-extension"] == .bool(true))
    }

    /// Every request the SDK can send, captured from a scripted transport.
    @Test func everyRequestMatchesItsSchema() async throws {
        let png = Data([0x89, 0x50]).base64EncodedString()
        let (client, transport, _) = scriptedClient([
            .json(#"{"paymentUrl":"https://pay.example/p","orderId":"ORDER-1"}"#),
            .json(#"{"paymentUrl":"https://pay.example/p","orderId":"ORDER-2"}"#),
            .json(#"{"qrCode":"\#(png)","qrToken":"t"}"#),
            .json(#"{"status":"APPROVED","refundedAmount":0}"#),
            .json(#"{"orderId":"ORDER-1","refundId":"R","amount":100,"refundedAmount":100}"#),
            .json(#"{"status":"APPROVED","refundedAmount":100}"#),
            .json(#"{"orderId":"ORDER-1","refundId":"R2","amount":100,"refundedAmount":200}"#),
        ])
        _ = try await client.orders.create(newOrder("ORDER-1"))
        var bare = try newOrder("ORDER-2")
        bare.description = nil
        _ = try await client.orders.create(bare)
        _ = try await client.qr.create(amount: 100, orderID: "a.b:c_d-e")
        _ = try await client.refunds.create(orderID: "ORDER-1", amount: 100)
        _ = try await client.refunds.create(orderID: "ORDER-1", amount: 100, transactionID: "TX-1")
        var checked = 0
        for sent in transport.requests where sent.request.method == .post {
            let path = sent.request.path!
            let template = path.hasSuffix("/refund") ? "/api/v1/orders/{orderId}/refund" : path
            let schema = try contract.requestSchema(path: template, method: "post")
            #expect(contract.violations(of: sent.body ?? [], against: schema) == [], "\(path): \(sent.bodyText)")
            checked += 1
        }
        #expect(checked == 5)
    }

    /// Responses the SDK accepts are valid against the schemas, and bodies the schemas reject
    /// are rejected by the SDK too (for the required fields).
    @Test(arguments: [
        ("/api/v1/orders/create", "post", #"{"paymentUrl":"https://pay.example/p","orderId":"ORDER-1"}"#),
        ("/api/v1/orders/create", "post", #"{"paymentUrl":"https://pay.example/p","orderId":"ORDER-1","status":"PENDING","x":1}"#),
        ("/api/v1/orders/{orderId}/status", "get", #"{"status":"PENDING"}"#),
        (
            "/api/v1/orders/{orderId}/status", "get",
            #"{"status":"APPROVED","orderId":"A","amount":5000,"transactionId":"T","refundedAmount":0,"paymentUrl":"https://p.example/x","qrToken":"t","qrCode":"iVA="}"#
        ),
        ("/api/v1/qr/create", "post", #"{"qrCode":"iVBORw==","qrToken":"tok"}"#),
        ("/api/v1/qr/{qrToken}/status", "get", #"{"status":"CANCELLED"}"#),
        ("/api/v1/orders/{orderId}/refund", "post", #"{"orderId":"A","refundId":"R","amount":1,"refundedAmount":1}"#),
    ])
    func acceptedResponsesMatchTheirSchemas(_ path: String, _ method: String, _ body: String) throws {
        let schema = try contract.responseSchema(path: path, method: method, status: 200)
        #expect(contract.violations(of: Array(body.utf8), against: schema) == [])
    }

    @Test func errorBodiesMatchTheErrorSchema() throws {
        for (status, path, method) in [
            (400, "/api/v1/orders/create", "post"), (401, "/api/v1/orders/{orderId}/status", "get"), (429, "/api/v1/qr/create", "post"),
            (500, "/api/v1/qr/create", "post"),
        ] {
            let schema = try contract.responseSchema(path: path, method: method, status: status)
            #expect(contract.violations(of: Array(#"{"code":"RATE_LIMITED","message":"x"}"#.utf8), against: schema) == [])
            #expect(!contract.violations(of: Array(#"{"code":"NOPE","message":"x"}"#.utf8), against: schema).isEmpty)
        }
    }

    @Test func theCheckerRejectsWhatTheContractForbids() throws {
        let create = try contract.requestSchema(path: "/api/v1/orders/create", method: "post")
        let valid =
            #"{"amount":100,"orderId":"A","returnUrl":"https://a.example/","failUrl":"https://a.example/","tradePointId":"T","signature":"\#(String(repeating: "a", count: 64))"}"#
        #expect(contract.violations(of: Array(valid.utf8), against: create) == [])
        let bad = [
            valid.replacingOccurrences(of: #""amount":100"#, with: #""amount":99"#),
            valid.replacingOccurrences(of: #""amount":100"#, with: #""amount":"100""#),
            valid.replacingOccurrences(of: #""amount":100"#, with: #""amount":100.5"#),
            valid.replacingOccurrences(of: #""orderId":"A""#, with: #""orderId":"a b""#),
            valid.replacingOccurrences(of: #","tradePointId":"T""#, with: ""),
            valid.replacingOccurrences(of: String(repeating: "a", count: 64), with: String(repeating: "A", count: 64)),
            valid.replacingOccurrences(of: #""returnUrl":"https://a.example/""#, with: #""returnUrl":"/relative""#),
            valid.replacingOccurrences(of: "}", with: #","extra":1}"#),
        ]
        for body in bad { #expect(!contract.violations(of: Array(body.utf8), against: create).isEmpty, "\(body)") }
        let webhook = try contract.webhookSchema(name: "paymentStatus")
        let hook = #"{"orderId":"A","amount":100,"status":"APPROVED","transactionId":null,"signature":"\#(String(repeating: "0", count: 64))"}"#
        #expect(contract.violations(of: Array(hook.utf8), against: webhook) == [])
        #expect(!contract.violations(of: Array(hook.replacingOccurrences(of: "APPROVED", with: "PENDING").utf8), against: webhook).isEmpty)
    }

    @Test func webhooksTheVerifierAcceptsMatchTheWebhookSchema() throws {
        let key = try APIKey("k")
        let verifier = WebhookVerifier(apiKey: key)
        let webhook = try contract.webhookSchema(name: "paymentStatus")
        for status in ["APPROVED", "DECLINED", "CANCELLED"] {
            let body = Array(
                #"{"orderId":"ORDER-7","amount":700,"status":"\#(status)","transactionId":"TX","signature":"\#(Signature.webhook(orderID: "ORDER-7", amount: 700, apiKey: key))"}"#
                    .utf8)
            _ = try verifier.verify(body: body)
            #expect(contract.violations(of: body, against: webhook) == [])
        }
    }
}
