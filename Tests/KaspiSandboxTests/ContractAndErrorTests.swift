import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("Sandbox: the contract, every error code")
struct ContractAndErrorTests {
    @Test func everyResponseMatchesTheOpenAPIDocument() async throws {
        try await withSandbox { h in
            let sig = h.sign(5000, "C-1")
            let create = try await h.post(
                "/api/v1/orders/create",
                #"{"amount":5000,"orderId":"C-1","returnUrl":"https://shop.example/ok","failUrl":"https://shop.example/fail","tradePointId":"TP-1","description":"d","signature":"\#(sig)"}"#,
                bearer: h.tradePoint.apiKey)
            #expect(create.status == 200)
            #expect(try h.violations(create.body, path: "/api/v1/orders/create", method: "post", status: 200) == [])
            #expect(json(create.body)["status"] as? String == "PENDING")
            let status = try await h.raw(.GET, "/api/v1/orders/C-1/status", headers: ["Authorization": "Bearer \(h.tradePoint.apiKey)"])
            #expect(try h.violations(status.body, path: "/api/v1/orders/{orderId}/status", method: "get", status: 200) == [])
            let qr = try await h.post(
                "/api/v1/qr/create", #"{"amount":700,"orderId":"C-2","tradePointId":"TP-1","signature":"\#(h.sign(700, "C-2", kind: .createQR))"}"#)
            #expect(qr.status == 200)
            #expect(try h.violations(qr.body, path: "/api/v1/qr/create", method: "post", status: 200) == [])
            let token = try #require(json(qr.body)["qrToken"] as? String)
            let qrStatus = try await h.raw(.GET, "/api/v1/qr/\(token)/status", headers: ["Authorization": "Bearer \(h.tradePoint.apiKey)"])
            #expect(try h.violations(qrStatus.body, path: "/api/v1/qr/{qrToken}/status", method: "get", status: 200) == [])
            let qrOrder = try await h.raw(.GET, "/api/v1/orders/C-2/status", headers: ["Authorization": "Bearer \(h.tradePoint.apiKey)"])
            #expect(try h.violations(qrOrder.body, path: "/api/v1/orders/{orderId}/status", method: "get", status: 200) == [])
            #expect(json(qrOrder.body)["qrToken"] as? String == token)
            try await h.sandbox.trigger(.approved, orderID: "C-1", tradePointID: "TP-1")
            let refund = try await h.post("/api/v1/orders/C-1/refund", #"{"amount":100,"signature":"\#(h.sign(100, "C-1", kind: .refund))"}"#)
            #expect(refund.status == 200)
            #expect(try h.violations(refund.body, path: "/api/v1/orders/{orderId}/refund", method: "post", status: 200) == [])
        }
    }

    /// Every error code of openapi/kaspi-pay.yaml, reached through the HTTP API, in the documented shape.
    @Test func everyErrorCodeIsReachable() async throws {
        try await withSandbox(configure: { $0.rateLimitPerMinute = 30 }) { h in
            let key = h.tradePoint.apiKey
            func create(
                _ amount: Int, _ id: String, tp: String = "TP-1", returnURL: String = "https://shop.example/ok", sig: String? = nil,
                bearer: String? = nil
            ) async throws -> (Int, String, String) {
                let body =
                    #"{"amount":\#(amount),"orderId":"\#(id)","returnUrl":"\#(returnURL)","failUrl":"https://shop.example/fail","tradePointId":"\#(tp)","signature":"\#(sig ?? h.sign(amount, id))"}"#
                let r = try await h.post("/api/v1/orders/create", body, bearer: bearer)
                return (r.status, json(r.body)["code"] as? String ?? "", r.body)
            }
            var seen: [String: Int] = [:]
            func check(
                _ result: (Int, String, String), _ code: String, _ status: Int, path: String = "/api/v1/orders/create", method: String = "post"
            ) throws {
                #expect(result.1 == code, "\(result.2)")
                #expect(result.0 == status)
                #expect(try h.violations(result.2, path: path, method: method, status: status) == [], "\(result.2)")
                seen[code] = status
            }
            try check(try await create(5000, "E-1", sig: String(repeating: "0", count: 64)), "INVALID_SIGNATURE", 400)
            _ = try await create(5000, "E-2")
            try check(try await create(5000, "E-2"), "ORDER_ALREADY_EXISTS", 409)
            try check(try await create(5000, "E-3", tp: "TP-NOPE"), "TRADE_POINT_NOT_FOUND", 404)
            try check(try await create(99, "E-4"), "AMOUNT_TOO_SMALL", 400)
            try check(try await create(5000, "E-5", returnURL: "https://evil.example/ok"), "INVALID_RETURN_URL", 400)
            try check(try await create(5000, "E-6", bearer: "wrong-key"), "UNAUTHORIZED", 401)
            let noBearer = try await h.raw(.GET, "/api/v1/orders/E-2/status")
            try check(
                (noBearer.status, json(noBearer.body)["code"] as? String ?? "", noBearer.body), "UNAUTHORIZED", 401,
                path: "/api/v1/orders/{orderId}/status", method: "get")
            let missing = try await h.raw(.GET, "/api/v1/orders/NOPE/status", headers: ["Authorization": "Bearer \(key)"])
            try check(
                (missing.status, json(missing.body)["code"] as? String ?? "", missing.body), "ORDER_NOT_FOUND", 404,
                path: "/api/v1/orders/{orderId}/status", method: "get")
            for bad in [
                "not json", "[]", #"{"amount":"5000","orderId":"X","tradePointId":"TP-1","signature":"s"}"#,
                #"{"amount":5000,"orderId":"bad id","tradePointId":"TP-1","signature":"s","returnUrl":"https://shop.example/","failUrl":"https://shop.example/"}"#,
                #"{"amount":5000,"orderId":"X","tradePointId":"TP-1","signature":"s","returnUrl":"/relative","failUrl":"https://shop.example/"}"#,
                #"{"amount":5000,"orderId":"X","tradePointId":"TP-1","signature":"s","returnUrl":"https://shop.example/","failUrl":"https://shop.example/","description":"\#(String(repeating: "x", count: 257))"}"#,
            ] {
                let r = try await h.post("/api/v1/orders/create", bad)
                try check((r.status, json(r.body)["code"] as? String ?? "", r.body), "INVALID_REQUEST", 400)
            }
            let refund = try await h.post("/api/v1/orders/E-2/refund", #"{"amount":100,"signature":"\#(h.sign(100, "E-2", kind: .refund))"}"#)
            try check(
                (refund.status, json(refund.body)["code"] as? String ?? "", refund.body), "REFUND_NOT_ALLOWED", 409,
                path: "/api/v1/orders/{orderId}/refund")
            // Rate limit: 30 a minute here; everything above counted for TP-1.
            var limited: (status: Int, headers: [String: String], body: String)? = nil
            for _ in 0..<40 {
                let r = try await h.raw(.GET, "/api/v1/orders/E-2/status", headers: ["Authorization": "Bearer \(key)"])
                if r.status == 429 {
                    limited = r
                    break
                }
            }
            let rate = try #require(limited)
            try check(
                (rate.status, json(rate.body)["code"] as? String ?? "", rate.body), "RATE_LIMITED", 429, path: "/api/v1/orders/{orderId}/status",
                method: "get")
            let retryAfter = try #require(rate.headers["retry-after"].flatMap(Int.init))
            #expect((1...60).contains(retryAfter))
            // A minute later the trade point may send again.
            await h.sandbox.advanceClock(by: 61)
            let after = try await h.raw(.GET, "/api/v1/orders/E-2/status", headers: ["Authorization": "Bearer \(key)"])
            #expect(after.status == 200)
            #expect(
                Set(seen.keys) == [
                    "INVALID_SIGNATURE", "ORDER_ALREADY_EXISTS", "TRADE_POINT_NOT_FOUND", "AMOUNT_TOO_SMALL", "INVALID_RETURN_URL", "UNAUTHORIZED",
                    "ORDER_NOT_FOUND", "INVALID_REQUEST", "REFUND_NOT_ALLOWED", "RATE_LIMITED",
                ])
        }
    }

    @Test func theOrderOfChecksIsTheContracts() async throws {
        try await withSandbox { h in
            // Unknown trade point wins over a bad signature; a bad signature over a small amount.
            let unknown = try await h.post(
                "/api/v1/orders/create",
                #"{"amount":1,"orderId":"O-1","returnUrl":"https://x.example/","failUrl":"https://x.example/","tradePointId":"NOPE","signature":"bad"}"#
            )
            #expect(json(unknown.body)["code"] as? String == "TRADE_POINT_NOT_FOUND")
            let badSig = try await h.post(
                "/api/v1/orders/create",
                #"{"amount":1,"orderId":"O-1","returnUrl":"https://x.example/","failUrl":"https://x.example/","tradePointId":"TP-1","signature":"bad"}"#
            )
            #expect(json(badSig.body)["code"] as? String == "INVALID_SIGNATURE")
            let small = try await h.post(
                "/api/v1/orders/create",
                #"{"amount":1,"orderId":"O-1","returnUrl":"https://x.example/","failUrl":"https://x.example/","tradePointId":"TP-1","signature":"\#(h.sign(1, "O-1"))"}"#
            )
            #expect(json(small.body)["code"] as? String == "AMOUNT_TOO_SMALL")
        }
    }

    @Test func theGuidesQRCallNeedsNoBearerButGETsDo() async throws {
        try await withSandbox { h in
            let qr = try await h.post(
                "/api/v1/qr/create", #"{"amount":1000,"orderId":"G-1","tradePointId":"TP-1","signature":"\#(h.sign(1000, "G-1"))"}"#)
            #expect(qr.status == 200)
            let token = try #require(json(qr.body)["qrToken"] as? String)
            #expect(try await h.raw(.GET, "/api/v1/qr/\(token)/status").status == 401)
            #expect(try await h.raw(.GET, "/api/v1/qr/\(token)/status", headers: ["Authorization": "Bearer \(h.tradePoint.apiKey)"]).status == 200)
        }
    }

    @Test func qrCodesExpireWithTheClock() async throws {
        let receiver = WebhookReceiver()
        try await receiver.run { hook in
            try await withSandbox(configure: {
                $0.tradePoints[0].webhookURL = hook
                $0.qrLifetimeSeconds = 300
            }) { h in
                let qr = try await h.client.qr.create(amount: 500, orderID: "EXP-1")
                // A margin of 10 s: real time passes too, and a loaded machine is slow.
                await h.sandbox.advanceClock(by: 290)
                #expect(try await h.client.qr.status(token: qr.token) == .pending)
                await h.sandbox.advanceClock(by: 11)
                #expect(try await h.client.qr.status(token: qr.token) == .cancelled)
                #expect(await receiver.waitFor(1))
                let event = try WebhookVerifier(apiKey: h.apiKey).verify(body: receiver.received[0].body)
                #expect(event.status == .cancelled && event.orderID == "EXP-1")
                // The clock is visible and movable over HTTP too.
                let moved = try await h.post("/sandbox/clock/advance", #"{"seconds":5}"#)
                #expect(moved.status == 200 && (json(moved.body)["offsetSeconds"] as? Double ?? 0) >= 306)
                #expect(try await h.post("/sandbox/clock/advance", #"{"seconds":-5}"#).status == 400)
            }
        }
    }

    @Test func twoCreatesOfTheSameOrderIDGiveExactlyOneOrder() async throws {
        try await withSandbox(retry: .none) { h in
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        do {
                            _ = try await h.client.orders.create(newOrder("RACE-1"))
                            return "created"
                        } catch let error as KaspiError {
                            return error.code
                        } catch {
                            return "other"
                        }
                    }
                }
                var all: [String] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            // Exactly one order, whatever the client heard: at most one "created", every other
            // answer ORDER_ALREADY_EXISTS, except answers lost to the client's timeout on a
            // loaded machine (the create may have landed all the same).
            // Counted before #expect: its expansion of a closure's `$0` inside the expectation
            // misreported the count (6 "created" for an array holding one, six TIMEOUTs).
            let lost = outcomes.count { $0 == "TIMEOUT" || $0 == "TRANSPORT_FAILURE" }
            let created = outcomes.count { $0 == "created" }
            let refused = outcomes.count { $0 == "ORDER_ALREADY_EXISTS" }
            #expect(created <= 1, "\(outcomes)")
            #expect(created + refused + lost == 20, "\(outcomes)")
            if lost == 0 { #expect(created == 1, "\(outcomes)") }
            #expect(await h.sandbox.orders().filter { $0.orderID == "RACE-1" }.count == 1)
        }
    }
}
