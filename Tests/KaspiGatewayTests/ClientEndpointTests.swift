import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPayTesting
import KaspiSandbox
import Testing

/// The public client endpoint (`GET /client/v1/orders/{id}`) and the client secrets on checkout
/// answers: what the payer's app may read without the merchant's API key.
@Suite("Gateway: client secrets and the client endpoint")
struct ClientEndpointTests {
    static func client(_ s: Stack, _ id: String, secret: String?) async throws -> HTTPResult {
        try await http(.GET, s.gatewayURL + "/client/v1/orders/\(id)", headers: secret.map { ["Client-Secret": $0] } ?? [:])
    }

    @Test(arguments: Backend.available)
    func theSecretOpensOnlyItsOwnOrderAndOnlyWhatAnAppNeeds(_ backend: Backend) async throws {
        let contract = try ContractChecker.gateway()
        try await withStack(backend) { s in
            let created = try await s.api(
                .POST, "/v1/checkouts", #"{"amount":4200,"merchantReference":"R-1","metadata":{"customer":"c-9"},"description":"Tea"}"#)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["clientSecret"] as? String)
            #expect(secret.hasPrefix("\(id)_secret_") && secret.count > id.count + 40)
            // The same secret every time the merchant reads the order.
            #expect(try await s.api(.GET, "/v1/orders/\(id)").json["clientSecret"] as? String == secret)

            // No API key: the secret alone.
            let read = try await Self.client(s, id, secret: secret)
            #expect(read.status == 200, "\(read.body)")
            #expect(read.headers["cache-control"] == "no-store")
            let schema = try contract.responseSchema(path: "/client/v1/orders/{id}", method: "get", status: 200)
            #expect(contract.violations(of: Array(read.body.utf8), against: schema) == [], "\(read.body)")
            #expect(read.json["state"] as? String == "pending" && read.json["amount"] as? Int == 4200)
            #expect(read.json["paymentUrl"] as? String == created.json["paymentUrl"] as? String)
            #expect((read.json["expiresIn"] as? Int ?? 0) > 0 && read.json["expiresAt"] is String)
            // Nothing about the merchant or Kaspi's ids.
            #expect(
                Set(read.json.keys).isSubset(of: [
                    "id", "state", "final", "kind", "amount", "currency", "paymentUrl", "qrToken", "expiresAt", "expiresIn", "pollAfter",
                ]))
            for private_ in ["R-1", "c-9", "Tea", created.json["providerOrderId"] as? String ?? "?"] { #expect(!read.body.contains(private_)) }

            // A wrong secret, another order's secret and an unknown order all look the same.
            let other = try await s.api(.POST, "/v1/checkouts", #"{"amount":900}"#)
            let otherID = try #require(other.json["id"] as? String)
            let otherSecret = try #require(other.json["clientSecret"] as? String)
            var answers: [HTTPResult] = []
            answers.append(try await Self.client(s, id, secret: otherSecret))
            answers.append(try await Self.client(s, id, secret: secret + "x"))
            answers.append(try await Self.client(s, id, secret: String(secret.dropLast())))
            answers.append(try await Self.client(s, "ord_unknown", secret: secret))
            answers.append(try await Self.client(s, otherID, secret: secret))
            answers.append(try await Self.client(s, String(repeating: "o", count: 300), secret: secret))
            for answer in answers {
                #expect(answer.status == 404 && answer.errorCode == "CHECKOUT_NOT_FOUND", "\(answer.body)")
                #expect(answer.body == answers[0].body)
            }
            // No secret at all says nothing about the order either, and is told plainly.
            let none = try await Self.client(s, id, secret: nil)
            #expect(none.status == 401 && none.errorCode == "CLIENT_SECRET_REQUIRED")
            #expect(try await Self.client(s, "ord_unknown", secret: nil).body == none.body)
            // The merchant API's key is not a client secret, and the client secret is not an API key.
            #expect(try await Self.client(s, id, secret: s.apiKey).status == 404)
            #expect(try await s.api(.GET, "/v1/orders/\(id)", key: secret).status == 401)
            // The secret never reaches the logs.
            #expect(!s.logs.lines.contains { $0.contains(secret) })
        }
    }

    @Test(arguments: Backend.available)
    func anAppAskingAfterThePayerReturnsSeesThePaymentWithoutAWebhook(_ backend: Backend) async throws {
        var faults = SandboxFaults()
        faults.webhookDropRate = 1
        // Reconciliation would find it much later; the app's question reads Kaspi at once.
        try await withStack(backend, faults: faults, configure: { $0.firstPollAfter = 3600 }) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":2500}"#)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["clientSecret"] as? String)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            let read = try await Self.client(s, id, secret: secret)
            #expect(read.json["state"] as? String == "paid" && read.json["final"] as? Bool == true, "\(read.body)")
            #expect(read.json["paymentUrl"] == nil && read.json["expiresAt"] == nil)
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.contains { $0.kind == .transition && $0.detail.contains("via client_app") })
        }
    }

    @Test(arguments: Backend.available)
    func qrCheckoutsGiveTheTokenAndReplaysGiveTheSameSecret(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let first = try await s.api(.POST, "/v1/qr-checkouts", #"{"amount":700}"#, idempotencyKey: "qr-client-1")
            let replay = try await s.api(.POST, "/v1/qr-checkouts", #"{"amount":700}"#, idempotencyKey: "qr-client-1")
            #expect(replay.headers["idempotent-replayed"] == "true")
            let secret = try #require(first.json["clientSecret"] as? String)
            #expect(replay.json["clientSecret"] as? String == secret)
            let read = try await Self.client(s, try #require(first.json["id"] as? String), secret: secret)
            #expect(read.json["kind"] as? String == "qr" && read.json["qrToken"] as? String == first.json["qrToken"] as? String)
        }
    }

    @Test(arguments: Backend.available)
    func readsAreLimitedPerOrderAndWrongSecretsPerAddressNeverTheRightOne(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":900}"#)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["clientSecret"] as? String)
            // Someone who knows the id (deep links carry it) does not spend the app's budget.
            for n in 0..<10 { #expect(try await Self.client(s, id, secret: "guess-\(n)").status == 404) }
            for _ in 0..<60 { #expect(try await Self.client(s, id, secret: secret).status == 200) }
            let limited = try await Self.client(s, id, secret: secret)
            #expect(limited.status == 429 && limited.errorCode == "CLIENT_RATE_LIMITED")
            #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
            // Another order is not held back by this one.
            let other = try await s.api(.POST, "/v1/checkouts", #"{"amount":900}"#)
            let otherID = try #require(other.json["id"] as? String)
            let otherSecret = try #require(other.json["clientSecret"] as? String)
            #expect(try await Self.client(s, otherID, secret: otherSecret).status == 200)
            // Guessing: 20 wrong secrets in all, then the guesser waits; the payer with the
            // right secret, behind the same address (a carrier's NAT, a proxy), does not.
            for n in 10..<20 { #expect(try await Self.client(s, otherID, secret: "guess-\(n)").status == 404) }
            let guessing = try await Self.client(s, otherID, secret: "guess-20")
            #expect(guessing.status == 429 && guessing.errorCode == "CLIENT_RATE_LIMITED")
            #expect(try await Self.client(s, "ord_unknown", secret: "guess-21").status == 429)
            #expect(try await Self.client(s, otherID, secret: otherSecret).status == 200)
        }
    }

    /// Public reads (the return page, the app) reach Kaspi at most once per polling interval an
    /// order, whoever reads: a flood of page views over several orders cannot turn into a
    /// stream of calls to Kaspi, and one address's views are capped.
    @Test(arguments: Backend.available)
    func aFloodOfPageViewsReachesKaspiOncePerOrderAndPollingInterval(_ backend: Backend) async throws {
        try await withStack(backend, configure: { $0.pollInterval = 15 }) { s in
            var orders: [(id: String, secret: String)] = []
            for _ in 0..<6 {
                let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":900}"#)
                orders.append((try #require(created.json["id"] as? String), try #require(created.json["clientSecret"] as? String)))
            }
            func statusCalls() async throws -> Double {
                metric(try await http(.GET, s.adminURL + "/metrics").body, #"kaspi_gateway_kaspi_call_duration_seconds_count{call="status"}"#)
                    ?? 0
            }
            let before = try await statusCalls()
            // 90 page views and 30 reads by the app, well inside one polling interval: one read
            // of Kaspi an order in all.
            for round in 0..<20 {
                for order in orders {
                    // The return page first (its first view of an order asks Kaspi at once:
                    // the payer just came back), then the app and the page, interleaved.
                    if round % 4 == 1 {
                        #expect(try await Self.client(s, order.id, secret: order.secret).status == 200)
                    } else {
                        #expect(try await http(.GET, s.gatewayURL + "/pay/return/\(order.id)").status == 200)
                    }
                }
            }
            let calls = Int(try await statusCalls() - before)
            #expect(calls >= 1 && calls <= orders.count, "\(calls) status calls for \(orders.count) orders")
            // The address's budget of page views (120 a minute) runs out; the app's reads, with
            // their secrets, are limited per order instead.
            var refused: HTTPResult? = nil
            for _ in 0..<40 where refused == nil {
                let view = try await http(.GET, s.gatewayURL + "/pay/return/\(orders[0].id)")
                if view.status == 429 { refused = view }
            }
            let limited = try #require(refused, "no page view was refused")
            #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
            #expect(try await Self.client(s, orders[1].id, secret: orders[1].secret).status == 200)
        }
    }

    /// Every instance on one database derives the same secrets: the key lives in the database.
    @Test func instancesSharingADatabaseGiveTheSameSecret() async throws {
        let handle = try await Backend.sqlite.open()
        let first = Gateway(configuration: GatewayConfiguration(), store: handle.store, provider: NoProvider())
        let second = Gateway(configuration: GatewayConfiguration(), store: handle.store, provider: NoProvider())
        let secret = try await first.clientSecret(orderID: "ord_1")
        #expect(try await second.clientSecret(orderID: "ord_1") == secret)
        #expect(try await second.clientSecret(orderID: "ord_2") != secret)
        await first.shutdown()
        await second.shutdown()
        try await handle.close()
    }
}
