import Foundation
import KaspiPay
import Testing

@Suite("Webhook verification")
struct WebhookTests {
    let key = try! APIKey("test_key_abc")
    var verifier: WebhookVerifier { WebhookVerifier(apiKey: key) }

    func body(
        orderID: String = "ORDER-123", amount: Int = 5000, status: String = "APPROVED", transactionID: String? = "TX-1", signature: String? = nil
    ) -> [UInt8] {
        let sig = signature ?? Signature.webhook(orderID: orderID, amount: amount, apiKey: key)
        let tx = transactionID.map { #","transactionId":"\#($0)""# } ?? ""
        return Array(#"{"orderId":"\#(orderID)","amount":\#(amount),"status":"\#(status)"\#(tx),"signature":"\#(sig)"}"#.utf8)
    }

    @Test func aValidWebhookVerifies() throws {
        let event = try verifier.verify(body: body())
        #expect(event == WebhookEvent(orderID: "ORDER-123", amount: 5000, status: .approved, transactionID: "TX-1"))
        #expect(try verifier.verify(body: body(status: "DECLINED", transactionID: nil)).status == .declined)
        #expect(try verifier.verify(body: body(status: "CANCELLED")).status == .cancelled)
        // The guide's example vector, signed outside Swift.
        let known = Array(
            #"{"orderId":"ORDER-123","amount":5000,"status":"APPROVED","transactionId":null,"signature":"60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2","extra":[1,2]}"#
                .utf8)
        #expect(try verifier.verify(body: known).transactionID == nil)
    }

    @Test func rejections() throws {
        let cases: [([UInt8], WebhookVerificationError)] = [
            (Array(repeating: 0x20, count: 16 * 1024 + 1), .bodyTooLarge(limit: 16 * 1024)),
            (Array("not json".utf8), .notJSON),
            (Array("[1,2]".utf8), .notJSON),
            (Array("".utf8), .notJSON),
            (Array(#"{"amount":1,"status":"APPROVED","signature":"x"}"#.utf8), .missingField("orderId")),
            (Array(#"{"orderId":null,"amount":1,"status":"APPROVED","signature":"x"}"#.utf8), .missingField("orderId")),
            (Array(#"{"orderId":"A","status":"APPROVED","signature":"x"}"#.utf8), .missingField("amount")),
            (Array(#"{"orderId":"A","amount":1,"signature":"x"}"#.utf8), .missingField("status")),
            (Array(#"{"orderId":"A","amount":1,"status":"APPROVED"}"#.utf8), .missingField("signature")),
            (Array(#"{"orderId":7,"amount":1,"status":"APPROVED","signature":"x"}"#.utf8), .mistypedField("orderId", expected: "a string")),
            (
                Array(#"{"orderId":"A","amount":"5000","status":"APPROVED","signature":"x"}"#.utf8),
                .mistypedField("amount", expected: "an integer number of tenge")
            ),
            (
                Array(#"{"orderId":"A","amount":50.5,"status":"APPROVED","signature":"x"}"#.utf8),
                .mistypedField("amount", expected: "an integer number of tenge")
            ),
            (
                Array(#"{"orderId":"A","amount":true,"status":"APPROVED","signature":"x"}"#.utf8),
                .mistypedField("amount", expected: "an integer number of tenge")
            ),
            (Array(#"{"orderId":"A","amount":1,"status":true,"signature":"x"}"#.utf8), .mistypedField("status", expected: "a string")),
            (Array(#"{"orderId":"A","amount":1,"status":"APPROVED","signature":1}"#.utf8), .mistypedField("signature", expected: "a string")),
            (
                Array(#"{"orderId":"A","amount":1,"status":"APPROVED","signature":"x","transactionId":{}}"#.utf8),
                .mistypedField("transactionId", expected: "a string")
            ),
            (body(signature: String(repeating: "0", count: 64)), .badSignature),
            (body(signature: Signature.webhook(orderID: "ORDER-123", amount: 5000, apiKey: key).uppercased()), .badSignature),
            (body(signature: Signature.compute(.createOrder, amount: 5000, orderID: "ORDER-123", apiKey: key)), .badSignature),
            (body(status: "PENDING"), .unknownStatus("PENDING")),
            (body(status: "REFUNDED"), .unknownStatus("REFUNDED")),
            (body(orderID: "bad id"), .mistypedField("orderId", expected: "1 to 64 characters of A-Z a-z 0-9 _ . : -")),
            (body(amount: -5), .mistypedField("amount", expected: "a non-negative integer")),
        ]
        for (input, expected) in cases {
            #expect(throws: expected, "\(String(decoding: input.prefix(80), as: UTF8.self))") { try verifier.verify(body: input) }
        }
    }

    @Test func anotherTradePointsKeyIsABadSignature() throws {
        let other = WebhookVerifier(apiKey: try APIKey("other_key"))
        #expect(throws: WebhookVerificationError.badSignature) { try other.verify(body: body()) }
    }

    @Test func theStoredOrderIsChecked() async throws {
        // ORDER-1 + 2300 and ORDER-12 + 300 have the same signature: only the stored amount tells them apart.
        let forged = body(orderID: "ORDER-12", amount: 300)
        let genuine = body(orderID: "ORDER-1", amount: 2300)
        #expect(Array(forged.suffix(66)) == Array(genuine.suffix(66)))
        let stored: [OrderID: ExpectedOrder] = ["ORDER-12": ExpectedOrder(amount: 30000), "ORDER-1": ExpectedOrder(amount: 2300)]
        await #expect(throws: WebhookVerificationError.amountMismatch(orderID: "ORDER-12", expected: 30000, received: 300)) {
            try await verifier.verify(body: forged) { stored[$0] }
        }
        #expect(try await verifier.verify(body: genuine) { stored[$0] }.amount == 2300)
        await #expect(throws: WebhookVerificationError.orderNotFound("ORDER-123")) {
            try await verifier.verify(body: body()) { stored[$0] }
        }
    }

    @Test func errorsHaveStableCodesAndAdvice() {
        let errors: [WebhookVerificationError] = [
            .bodyTooLarge(limit: 1), .notJSON, .missingField("a"), .mistypedField("a", expected: "b"), .unknownStatus("X"),
            .badSignature, .orderNotFound("A"), .amountMismatch(orderID: "A", expected: 1, received: 2),
        ]
        #expect(Set(errors.map(\.code)).count == errors.count)
        for error in errors {
            #expect(error.description.hasPrefix(error.code + ": "))
            #expect(!error.description.contains("test_key_abc"))
        }
    }
}
