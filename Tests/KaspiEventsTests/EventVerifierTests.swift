import Foundation
import KaspiEvents
import KaspiPayTesting
import Testing

/// KaspiEvents' verification, on its own and against Standard Webhooks' reference
/// implementation (`standardwebhooks` from PyPI), both ways.
@Suite struct EventVerifierTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let paid = Array(
        #"{"data":{"amount":5000,"id":"ord_1","merchantReference":"cart-9","providerOrderId":"kk_1","refundedAmount":0,"state":"paid","transactionId":"515721257681"},"type":"order.paid"}"#
            .utf8)

    static func headers(id: String = "msg_1", timestamp: Int64, payload: [UInt8], secret: String = secret) throws -> [String: String] {
        [
            "webhook-id": id, "webhook-timestamp": "\(timestamp)",
            "webhook-signature": try EventVerifier.signature(id: id, timestamp: timestamp, payload: payload, secret: secret),
        ]
    }

    @Test func aSignedEventVerifiesAndDecodes() throws {
        let now = Date()
        let verifier = try EventVerifier(secret: Self.secret)
        let verified = try verifier.verify(
            payload: Self.paid, headers: try Self.headers(timestamp: Int64(now.timeIntervalSince1970), payload: Self.paid))
        #expect(verified.id == "msg_1")
        guard case .orderPaid(let order) = verified.event else {
            Issue.record("not order.paid: \(verified.event)")
            return
        }
        #expect(order.id == "ord_1" && order.amount == 5000 && order.merchantReference == "cart-9" && order.transactionID == "515721257681")
        #expect(!order.needsReview && verified.event.type == "order.paid" && verified.event.orderID == "ord_1")
        // Header names in any case; an unknown type is acknowledged, not refused.
        var shouted: [String: String] = [:]
        for (name, value) in try Self.headers(timestamp: Int64(now.timeIntervalSince1970), payload: Self.paid) { shouted[name.uppercased()] = value }
        #expect(try verifier.verify(payload: Self.paid, headers: shouted).id == "msg_1")
        let future = Array(#"{"data":{},"type":"order.teleported"}"#.utf8)
        let unknown = try verifier.verify(payload: future, headers: try Self.headers(timestamp: Int64(now.timeIntervalSince1970), payload: future))
        #expect(unknown.event == .unknown(type: "order.teleported"))
        let refund = Array(#"{"data":{"amount":300,"orderId":"ord_1","refundId":"ref_1","refundedAmount":300},"type":"refund.succeeded"}"#.utf8)
        let refunded = try verifier.verify(payload: refund, headers: try Self.headers(timestamp: Int64(now.timeIntervalSince1970), payload: refund))
        #expect(refunded.event == .refundSucceeded(RefundEvent(orderID: "ord_1", refundID: "ref_1", amount: 300, refundedAmount: 300)))
    }

    @Test func whatIsRefusedAndWhy() throws {
        let now = Date()
        let stamp = Int64(now.timeIntervalSince1970)
        let verifier = try EventVerifier(secret: Self.secret)
        func refusal(_ payload: [UInt8], _ headers: [String: String]) -> EventVerificationError? {
            do {
                _ = try verifier.verify(payload: payload, headers: headers, now: now)
                return nil
            } catch { return error }
        }
        var headers = try Self.headers(timestamp: stamp, payload: Self.paid)
        #expect(refusal(Self.paid + Array(" ".utf8), headers) == .signatureMismatch)
        #expect(refusal(Self.paid, try Self.headers(timestamp: stamp - 301, payload: Self.paid)) == .timestampOutOfTolerance)
        #expect(refusal(Self.paid, try Self.headers(timestamp: stamp + 301, payload: Self.paid)) == .timestampOutOfTolerance)
        #expect(
            refusal(
                Self.paid,
                try Self.headers(timestamp: stamp, payload: Self.paid, secret: "whsec_" + Data(repeating: 7, count: 24).base64EncodedString()))
                == .signatureMismatch)
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            var missing = headers
            missing[name] = nil
            #expect(refusal(Self.paid, missing) == .missingHeader(name))
        }
        headers["webhook-timestamp"] = "yesterday"
        #expect(refusal(Self.paid, headers) == .invalidTimestamp)
        let garbage = Array("not json".utf8)
        #expect(refusal(garbage, try Self.headers(timestamp: stamp, payload: garbage)) == .undecodable)
        #expect(throws: EventVerificationError.invalidSecret) { try EventVerifier(secret: "not a secret") }
        #expect(throws: EventVerificationError.invalidSecret) { try EventVerifier(secrets: []) }
        #expect(EventVerificationError.signatureMismatch.code == "EVENT_SIGNATURE_MISMATCH")
    }

    @Test func duringARotationEitherSecretVerifies() throws {
        let old = Self.secret
        let new = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let stamp = Int64(Date().timeIntervalSince1970)
        let rotating = try EventVerifier(secrets: [new, old])
        #expect(try rotating.verify(payload: Self.paid, headers: try Self.headers(timestamp: stamp, payload: Self.paid, secret: old)).id == "msg_1")
        #expect(try rotating.verify(payload: Self.paid, headers: try Self.headers(timestamp: stamp, payload: Self.paid, secret: new)).id == "msg_1")
        // Several signatures in one header (a sender mid-rotation): any one that matches will do.
        var both = try Self.headers(timestamp: stamp, payload: Self.paid, secret: new)
        both["webhook-signature"] = "v1,AAAA " + (both["webhook-signature"] ?? "") + " v2,ignored"
        #expect(try EventVerifier(secret: new).verify(payload: Self.paid, headers: both).id == "msg_1")
    }

    /// One run of the reference implementation over a list of operations.
    static func reference(_ operations: [[String: Any]]) async throws -> [[String: Any]]? {
        guard let python = try ExternalTool.python3.locate() else { return nil }
        let script = #"""
            import json, sys
            from datetime import datetime, timezone
            try:
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError
            except ImportError:
                print(json.dumps({"missing": True})); sys.exit(0)
            out = []
            for op in json.load(sys.stdin):
                wh = Webhook(op["secret"])
                if op["op"] == "sign":
                    out.append({"signature": wh.sign(op["id"], datetime.fromtimestamp(op["timestamp"], tz=timezone.utc), op["payload"])})
                else:
                    try:
                        wh.verify(op["payload"], op["headers"]); out.append({"ok": True})
                    except WebhookVerificationError as error:
                        out.append({"ok": False, "error": str(error)})
            print(json.dumps(out))
            """#
        let input = try JSONSerialization.data(withJSONObject: operations)
        let run = try await ProcessRunner.run(python, ["-c", script], stdin: Array(input))
        let answer = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        if let missing = answer as? [String: Any], missing["missing"] as? Bool == true {
            if ExternalTool.inCI { Issue.record("standardwebhooks is not installed (pip install standardwebhooks)") }
            return nil
        }
        return answer as? [[String: Any]]
    }

    @Test(.requires(.python3)) func theReferenceImplementationAgreesBothWays() async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let body = String(decoding: Self.paid, as: UTF8.self)
        let other = "whsec_" + Data(repeating: 9, count: 32).base64EncodedString()
        // It signs, we verify.
        guard let signed = try await Self.reference([["op": "sign", "secret": Self.secret, "id": "msg_ref", "timestamp": now, "payload": body]]),
            let theirs = signed.first?["signature"] as? String
        else { return }
        let verifier = try EventVerifier(secret: Self.secret)
        let fromThem = ["webhook-id": "msg_ref", "webhook-timestamp": "\(now)", "webhook-signature": theirs]
        #expect(try verifier.verify(payload: Self.paid, headers: fromThem).id == "msg_ref")
        #expect(theirs == (try EventVerifier.signature(id: "msg_ref", timestamp: now, payload: Self.paid, secret: Self.secret)))
        // We sign; it verifies, and both refuse the same tampering.
        let cases: [(name: String, payload: String, headers: [String: String], accepted: Bool)] = [
            ("ours", body, try Self.headers(id: "msg_a", timestamp: now, payload: Self.paid), true),
            ("a tampered body", body + " ", try Self.headers(id: "msg_a", timestamp: now, payload: Self.paid), false),
            ("an old timestamp", body, try Self.headers(id: "msg_a", timestamp: now - 600, payload: Self.paid), false),
            ("a future timestamp", body, try Self.headers(id: "msg_a", timestamp: now + 600, payload: Self.paid), false),
            ("another secret", body, try Self.headers(id: "msg_a", timestamp: now, payload: Self.paid, secret: other), false),
            ("another id", body, (try Self.headers(id: "msg_a", timestamp: now, payload: Self.paid)).merging(["webhook-id": "msg_b"]) { $1 }, false),
        ]
        let verdicts = try #require(
            try await Self.reference(cases.map { ["op": "verify", "secret": Self.secret, "payload": $0.payload, "headers": $0.headers] }))
        for (verdict, item) in zip(verdicts, cases) {
            #expect(verdict["ok"] as? Bool == item.accepted, "the reference on \(item.name): \(verdict)")
            let ours = (try? verifier.verify(payload: Array(item.payload.utf8), headers: item.headers)) != nil
            #expect(ours == item.accepted, "KaspiEvents on \(item.name)")
        }
    }
}
