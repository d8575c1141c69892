import Crypto
import Foundation
import HTTPTypes
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiSandbox
import KaspiSupport
import Synchronization
import Testing

@Suite("Hardening: replays, idempotency races, lost answers")
struct HardeningTests {
    /// Creates a checkout, declines it on Kaspi's page, and returns the order id and the exact
    /// DECLINED webhook Kaspi sent.
    static func declinedOrder(_ s: Stack) async throws -> (id: String, webhook: String) {
        let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
        let id = try #require(created.json["id"] as? String)
        let paymentURL = try #require(created.json["paymentUrl"] as? String)
        _ = try await s.payOnPage(paymentURL, action: "decline")
        #expect(try await s.waitFor(id, .declined))
        let providerOrderID = try #require(try await s.order(id)?.providerOrderID)
        let webhook = try #require(await s.sandbox.webhooks(orderID: providerOrderID).first { $0.status == .declined })
        return (id, webhook.body)
    }

    @Test("a captured DECLINED webhook re-sent as APPROVED changes nothing", arguments: Backend.available)
    func replayedWebhookIsNotTrusted(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let (id, declined) = try await Self.declinedOrder(s)
            let forged = declined.replacingOccurrences(of: "\"DECLINED\"", with: "\"APPROVED\"")
            #expect(forged != declined)
            let answer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged, headers: ["Content-Type": "application/json"])
            #expect(answer.status == 409 && answer.errorCode == "WEBHOOK_NOT_CONFIRMED", "\(answer.body)")
            let order = try #require(try await s.order(id))
            #expect(order.state == .declined && !order.needsReview && order.transactionID == nil)
            // Recorded in the timeline and in metrics; no order.paid reaches the merchant.
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.contains { $0.kind == .conflict && $0.detail.contains("not applied") })
            let metrics = try await http(.GET, s.adminURL + "/metrics")
            #expect(metrics.body.contains(#"kaspi_gateway_webhooks_total{outcome="unconfirmed"} 1"#))
            try await Task.sleep(for: .milliseconds(300))
            #expect(!s.merchant.events.contains { $0.type == "order.paid" })
        }
    }

    @Test("a captured webhook replayed many times costs one Kaspi call every 2 s an order and no row a copy", arguments: Backend.available)
    func replayedWebhooksCostNearlyNothing(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            // A forged APPROVED, sent 20 times at once: Kaspi is asked once, one row records it.
            let (declinedID, declined) = try await Self.declinedOrder(s)
            let forged = declined.replacingOccurrences(of: "\"DECLINED\"", with: "\"APPROVED\"")
            func statusCalls() async throws -> Double {
                metric(try await http(.GET, s.adminURL + "/metrics").body, #"kaspi_gateway_kaspi_call_duration_seconds_count{call="status"}"#) ?? 0
            }
            let before = try await statusCalls()
            let eventsBefore = try await s.gateway.store.events(orderID: declinedID).count
            var answers: [Int] = []
            let started = ContinuousClock.now
            for _ in 0..<20 {
                answers.append(
                    try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged, headers: ["Content-Type": "application/json"]).status)
            }
            // One call per two-second window the copies spanned (one, on an idle machine).
            let windows = Int((ContinuousClock.now - started).components.seconds / 2) + 1
            #expect(answers.first == 409 && answers.dropFirst().allSatisfy { $0 == 409 || $0 == 503 }, "\(answers)")
            #expect(Int(try await statusCalls() - before) <= windows, "status calls for 20 copies in \(windows) windows")
            #expect(answers.filter { $0 == 503 }.count >= 20 - windows)
            #expect(try await s.gateway.store.events(orderID: declinedID).count - eventsBefore == 1)
            #expect(try await s.order(declinedID)?.state == .declined)
            // The genuine APPROVED of a paid order, replayed: no call, no write.
            let paidID = try await Self.paidOrder(s)
            let providerOrderID = try #require(try await s.order(paidID)?.providerOrderID)
            let approved = try #require(await s.sandbox.webhooks(orderID: providerOrderID).first { $0.status == .approved })
            let version = try #require(try await s.order(paidID)?.version)
            let calls = try await statusCalls()
            for _ in 0..<10 {
                #expect(
                    try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: approved.body, headers: ["Content-Type": "application/json"]).status
                        == 200)
            }
            #expect(try await statusCalls() == calls)
            #expect(try await s.order(paidID)?.version == version)
        }
    }

    @Test("restricted keys do only what their role allows; wrong keys are throttled per address, never the right one")
    func keysHaveRolesAndWrongOnesAreThrottled() async throws {
        let (reader, taker) = (GatewayConfiguration.makeAPIKey(), GatewayConfiguration.makeAPIKey())
        try await withStack(
            .sqlite,
            configure: {
                $0.readOnlyKeyHashes = [GatewayConfiguration.hash(apiKey: reader)]
                $0.paymentKeyHashes = [GatewayConfiguration.hash(apiKey: taker)]
            }
        ) { s in
            // Read-only: reads, nothing else.
            #expect(try await s.api(.GET, "/v1/orders", key: reader).status == 200)
            let readerPays = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, key: reader)
            #expect(readerPays.status == 403 && readerPays.errorCode == "API_KEY_NOT_ALLOWED")
            // Payments: takes them, cannot refund them.
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, key: taker)
            #expect(created.status == 201)
            let id = try #require(created.json["id"] as? String)
            for path in ["/v1/orders/\(id)/refunds", "/v1/orders/\(id)/manual-refunds", "/v1/returns"] {
                let refused = try await s.api(.POST, path, #"{"amount":100}"#, key: taker)
                #expect(refused.status == 403 && refused.errorCode == "API_KEY_NOT_ALLOWED", "\(path): \(refused.body)")
            }
            #expect(try await s.api(.GET, "/v1/orders/\(id)", key: taker).status == 200)
            // Wrong keys: 20 from an address, then it waits; the right key never does.
            for n in 0..<20 { #expect(try await s.api(.GET, "/v1/orders", key: "guess-\(n)").status == 401) }
            let limited = try await s.api(.GET, "/v1/orders", key: "guess-20")
            #expect(limited.status == 429 && limited.errorCode == "API_KEY_RATE_LIMITED" && limited.headers["retry-after"] != nil)
            #expect(try await s.api(.GET, "/v1/orders").status == 200)
        }
    }

    @Test("with confirmation turned off, the webhook is trusted as the guide does")
    func confirmationCanBeTurnedOff() async throws {
        try await withStack(.sqlite, configure: { $0.confirmPaidWebhooks = false }) { s in
            let (id, declined) = try await Self.declinedOrder(s)
            let forged = declined.replacingOccurrences(of: "\"DECLINED\"", with: "\"APPROVED\"")
            let answer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged, headers: ["Content-Type": "application/json"])
            #expect(answer.status == 200)
            #expect(try await s.order(id)?.state == .paid)
        }
    }

    @Test("a genuine APPROVED webhook is confirmed and applied, with Kaspi's transaction id")
    func genuineWebhookIsApplied() async throws {
        try await withStack(.sqlite) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let id = try #require(created.json["id"] as? String)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            let providerOrderID = try #require(try await s.order(id)?.providerOrderID)
            let kaspi = await s.sandbox.orders().first { $0.orderID == providerOrderID }
            #expect(try await s.order(id)?.transactionID == kaspi?.transactionID)
            let metrics = try await http(.GET, s.adminURL + "/metrics")
            #expect(metric(metrics.body, #"kaspi_gateway_webhooks_total{outcome="unconfirmed"}"#) == 0)
        }
    }

    /// A paid order of `amount`.
    static func paidOrder(_ s: Stack, amount: Int = 5000) async throws -> String {
        let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":\#(amount)}"#)
        let id = try #require(created.json["id"] as? String)
        _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
        #expect(try await s.waitFor(id, .paid))
        return id
    }

    @Test("the same Idempotency-Key fired concurrently refunds once", arguments: Backend.available)
    func concurrentIdempotentRefunds(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let id = try await Self.paidOrder(s)
            // Kaspi answers slowly, so the requests overlap while the first is in flight.
            var slow = SandboxFaults()
            slow.apiLatencyMs = 400
            await s.sandbox.setFaults(slow, tradePointID: "TP-GW")
            let answers = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#, idempotencyKey: "refund-once") }
                }
                return try await group.reduce(into: [HTTPResult]()) { $0.append($1) }
            }
            let fresh = answers.filter { $0.status == 201 && $0.headers["idempotent-replayed"] == nil }
            let replayed = answers.filter { $0.status == 201 && $0.headers["idempotent-replayed"] == "true" }
            let busy = answers.filter { $0.status == 409 && $0.errorCode == "IDEMPOTENCY_IN_PROGRESS" }
            #expect(fresh.count == 1, "\(answers.map { "\($0.status) \($0.body)" })")
            #expect(fresh.count + replayed.count + busy.count == 8)
            #expect(busy.allSatisfy { $0.headers["retry-after"] == "1" })
            #expect(replayed.allSatisfy { $0.body == fresh.first?.body })
            #expect(try await s.order(id)?.refundedAmount == 1000)
            let providerOrderID = try #require(try await s.order(id)?.providerOrderID)
            #expect(await s.sandbox.orders().first { $0.orderID == providerOrderID }?.refundedAmount == 1000)
            // Once the first has finished, a retry replays its answer.
            let retry = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#, idempotencyKey: "refund-once")
            #expect(retry.status == 201 && retry.headers["idempotent-replayed"] == "true" && retry.body == fresh.first?.body)
        }
    }

    @Test("an error answer after the work started is stored and replayed; one before it is not")
    func errorAnswersAreStoredOnceAnEffectMayHaveHappened() async throws {
        try await withStack(.sqlite) { s in
            // Nothing happened: a validation error is not stored, so the key can be used again.
            let invalid = try await s.api(.POST, "/v1/checkouts", #"{"amount":5}"#, idempotencyKey: "k-1")
            #expect(invalid.status == 400)
            // The order is stored, then Kaspi fails every attempt: the answer is final.
            var failing = SandboxFaults()
            failing.apiFailNext = 50
            await s.sandbox.setFaults(failing, tradePointID: "TP-GW")
            let first = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, idempotencyKey: "k-2")
            #expect(first.status >= 500, "\(first.body)")
            await s.sandbox.setFaults(SandboxFaults(), tradePointID: "TP-GW")
            let again = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, idempotencyKey: "k-2")
            #expect(
                again.status == first.status && again.body == first.body && again.headers["idempotent-replayed"] == "true",
                "\(first.status) \(first.body) then \(again.status) \(again.body)")
            #expect(try await s.gateway.store.orders(OrderQuery()).orders.count == 1)
            // The key whose request changed nothing works for a corrected request.
            let fixed = try await s.api(.POST, "/v1/checkouts", #"{"amount":5}"#, idempotencyKey: "k-1")
            #expect(fixed.status == 400 && fixed.headers["idempotent-replayed"] == nil)
        }
    }

    @Test("a reserved key answers in progress, and once its request has died, a retry resumes its work")
    func interruptedKeysAreReported() async throws {
        try await withStack(.sqlite) { s in
            let hash = GatewayConfiguration.hash(apiKey: s.apiKey)
            let body = #"{"amount":5000}"#
            let requestHash = Hex.sha256Hex("/v1/checkouts", body)
            // One request still at work, one that reserved its key 10 minutes ago and died
            // before answering (a kill -9).
            let now = Date()
            let live = makeOrder("live")
            try await s.gateway.store.insert(
                live,
                reserving: IdempotencyReservation(
                    scope: String(hash.prefix(16)), key: "k-live", requestHash: requestHash, owner: "req_live", at: now,
                    expiredBefore: now.addingTimeInterval(-86400)))
            let dead = makeOrder("dead")
            let then = now.addingTimeInterval(-600)
            try await s.gateway.store.insert(
                dead,
                reserving: IdempotencyReservation(
                    scope: String(hash.prefix(16)), key: "k-dead", requestHash: requestHash, owner: "req_dead", at: then,
                    expiredBefore: then.addingTimeInterval(-86400)))
            let busy = try await s.api(.POST, "/v1/checkouts", body, idempotencyKey: "k-live")
            #expect(busy.status == 409 && busy.errorCode == "IDEMPOTENCY_IN_PROGRESS" && busy.headers["retry-after"] == "1")
            // Its lease ran out: the retry takes the key over and finishes the checkout.
            let resumed = try await s.api(.POST, "/v1/checkouts", body, idempotencyKey: "k-dead")
            #expect(resumed.status == 201 && resumed.json["id"] as? String == dead.id, "\(resumed.status) \(resumed.body)")
            #expect((resumed.json["paymentUrl"] as? String)?.hasPrefix(s.sandboxURL) == true)
            let replayed = try await s.api(.POST, "/v1/checkouts", body, idempotencyKey: "k-dead")
            #expect(replayed.body == resumed.body && replayed.headers["idempotent-replayed"] == "true")
            #expect(try await s.gateway.store.orders(OrderQuery()).orders.count == 2)
            #expect(try await s.order(dead.id)?.state == .pending)
        }
    }

    @Test("expired idempotency keys are deleted by the background pass")
    func expiredKeysAreDeleted() async throws {
        try await withStack(.sqlite, configure: { $0.idempotencyKeyLifetime = 0.3 }) { s in
            let first = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, idempotencyKey: "k-exp")
            #expect(first.status == 201)
            try await Task.sleep(for: .milliseconds(400))
            // The worker's own pass may get there first on a loaded machine: either way, once a
            // pass has run the expired key is gone (nothing is left to delete).
            #expect(try await s.gateway.cleanUpOnce() <= 1)
            #expect(try await s.gateway.store.deleteIdempotencyKeys(createdBefore: .distantFuture) == 0)
            let second = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, idempotencyKey: "k-exp")
            #expect(second.status == 201 && second.headers["idempotent-replayed"] == nil && second.body != first.body)
        }
    }

    @Test("a payment after expiry whose webhook is lost is found by late polls, and flagged", arguments: Backend.available)
    func latePaymentsAreFound(_ backend: Backend) async throws {
        var dropAll = SandboxFaults()
        dropAll.webhookDropRate = 1
        try await withStack(
            backend, faults: dropAll,
            configure: {
                $0.firstPollAfter = 0.05
                $0.expireAfter = 0.3
                $0.latePollInterval = 0.2
            }
        ) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let id = try #require(created.json["id"] as? String)
            #expect(try await s.waitFor(id, .expired))
            let expired = try #require(try await s.order(id))
            #expect(expired.nextPollAt != nil)
            // The payer pays late; Kaspi's webhook never arrives.
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            let paid = try #require(try await s.order(id))
            #expect(paid.needsReview && paid.nextPollAt == nil && paid.transactionID != nil)
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.contains { $0.kind == .conflict && $0.fromState == .expired && $0.toState == .paid })
            #expect(await eventually { s.merchant.events.contains { $0.type == "order.paid" } })
            let metrics = try await http(.GET, s.adminURL + "/metrics")
            #expect((metric(metrics.body, "kaspi_gateway_late_polls_total") ?? 0) > 0)
        }
    }

    @Test("late polls stop once the window has passed")
    func latePollsStop() async throws {
        try await withStack(
            .sqlite,
            configure: {
                $0.firstPollAfter = 0.05
                $0.expireAfter = 0.2
                $0.latePollInterval = 0.1
                $0.latePaymentWindow = 0.5
            }
        ) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let id = try #require(created.json["id"] as? String)
            #expect(try await s.waitFor(id, .expired))
            #expect(await eventually { (try? await s.order(id))?.nextPollAt == nil })
            #expect(try await s.order(id)?.state == .expired)
        }
    }

    /// Refunds `amount` at Kaspi directly, as if the gateway's own call had gone through and
    /// its answer had been lost.
    static func refundAtKaspi(_ s: Stack, orderID: String, amount: Int) async throws {
        let providerOrderID = try #require(try await s.order(orderID)?.providerOrderID)
        let configuration = KaspiConfiguration(
            environment: .custom(try #require(URL(string: s.sandboxURL))), tradePointID: "TP-GW", apiKey: try APIKey("sandbox_gateway_key"))
        let transport = AsyncHTTPClientTransport()
        let client = KaspiClient(configuration: configuration, transport: transport)
        _ = try await client.refunds.create(orderID: try OrderID(providerOrderID), amount: try Amount(tenge: amount))
        try await transport.shutdown()
    }

    @Test("a refund whose answer was lost is marked unknown, then settled from Kaspi's record", arguments: Backend.available)
    func lostRefundAnswersAreSettled(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let id = try await Self.paidOrder(s)
            var failing = SandboxFaults()
            failing.apiFailNext = 50
            await s.sandbox.setFaults(failing, tradePointID: "TP-GW")
            let lost = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#)
            #expect(lost.status == 502 && lost.errorCode == "PROVIDER_REFUND_UNKNOWN", "\(lost.body)")
            await s.sandbox.setFaults(SandboxFaults(), tradePointID: "TP-GW")
            var refunds = try await s.gateway.store.refunds(orderID: id)
            #expect(refunds.map(\.status) == [.unknown])
            let listed = try await s.api(.GET, "/v1/orders/\(id)/refunds")
            #expect(((listed.json["data"] as? [[String: Any]])?.first?["status"] as? String) == "unknown", "\(listed.body)")
            #expect(try await s.order(id)?.refundedAmount == 1000)
            #expect(try await s.order(id)?.needsReview == true)
            // Kaspi's record shows nothing refunded: the reservation is released.
            #expect(try await s.gateway.resolveRefundsOnce() == 1)
            refunds = try await s.gateway.store.refunds(orderID: id)
            #expect(refunds.map(\.status) == [.failed])
            let settled = try await s.api(.GET, "/v1/orders/\(id)/refunds")
            #expect(((settled.json["data"] as? [[String: Any]])?.first?["status"] as? String) == "failed")
            #expect(try await s.order(id)?.refundedAmount == 0)
            #expect(try await s.gateway.store.events(orderID: id).contains { $0.detail.contains("never happened") })
            // Nothing is settled twice.
            #expect(try await s.gateway.resolveRefundsOnce() == 0)
        }
    }

    @Test("a refund Kaspi made but the gateway never recorded (a crash) is confirmed from Kaspi's record")
    func unrecordedRefundsAreConfirmed() async throws {
        try await withStack(.sqlite, configure: { $0.refundSettleAfter = 0.05 }) { s in
            let id = try await Self.paidOrder(s)
            // The reservation is stored; the process dies after Kaspi refunded and before the
            // answer was recorded.
            _ = try await s.gateway.store.recordRefund(orderID: id, amount: 2000, refundID: "rf_crashed", at: Date())
            try await Self.refundAtKaspi(s, orderID: id, amount: 2000)
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await s.gateway.resolveRefundsOnce() == 1)
            let refund = try #require(try await s.gateway.store.refunds(orderID: id).first)
            #expect(refund.status == .succeeded && refund.detail?.contains("Kaspi's record") == true)
            #expect(try await s.order(id)?.refundedAmount == 2000)
            #expect(try await s.gateway.store.outboxMessages(orderID: id, limit: 10).contains { $0.type == "refund.succeeded" })
        }
    }

    @Test("when Kaspi's total explains no split, the order is flagged and an admin settles it in the dashboard")
    func mismatchedRefundsWaitForAPerson() async throws {
        try await withStack(.sqlite, configure: { $0.refundSettleAfter = 0.05 }) { s in
            let id = try await Self.paidOrder(s)
            _ = try await s.gateway.store.recordRefund(orderID: id, amount: 1000, refundID: "rf_odd", at: Date())
            try await Self.refundAtKaspi(s, orderID: id, amount: 700)
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await s.gateway.resolveRefundsOnce() == 0)
            #expect(try await s.order(id)?.needsReview == true)
            #expect(try await s.gateway.store.refunds(orderID: id).first?.status == .pending)
            // The dashboard lists it, and an admin settles it after checking Kaspi.
            let (_, browser) = try await SignInTests.signIn(s.adminURL, "admin-pass-123")
            let page = try await browser.get("/admin/refunds")
            #expect(page.status == 200 && page.body.contains("rf_odd"))
            let csrf = try #require(Browser.hidden("csrf", in: page.body))
            let settled = try await browser.post("/admin/refunds/rf_odd/settle", ["csrf": csrf, "order": id, "outcome": "failed"])
            #expect(settled.status == 303)
            #expect(try await s.gateway.store.refunds(orderID: id).first?.status == .failed)
            #expect(try await s.order(id)?.refundedAmount == 0)
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.contains { $0.kind == .admin && $0.detail.contains("settled as not refunded by an admin") })
            let after = try await browser.get("/admin/refunds")
            #expect(after.body.contains("Every refund is settled"))
            // Settling it again is refused: the same form as sent, and a new one as settled.
            let again = try await browser.post("/admin/refunds/rf_odd/settle", ["csrf": csrf, "order": id, "outcome": "succeeded"])
            #expect(again.status == 409 && again.body.contains("already sent"))
            let fresh = try await browser.post(
                "/admin/refunds/rf_odd/settle",
                ["csrf": csrf, "order": id, "outcome": "succeeded", "once": "freshtoken\(UUID().uuidString.prefix(8))"])
            #expect(fresh.headers["location"]?.contains("Not%20settled") == true, "\(fresh.status) \(fresh.headers)")
            #expect(try await s.gateway.store.refunds(orderID: id).first?.status == .failed)
        }
    }

    /// Two gateway instances on one database, each sending `perInstance` checkouts at once to
    /// a sandbox that allows 8 requests per 2 s; returns how many requests the sandbox refused.
    ///
    /// - Parameter allSucceed: whether every checkout must go through. Per-instance limiters
    ///   overrun Kaspi's limit and their retries compete, so on a busy machine some may give up;
    ///   what that test measures is the refusals.
    static func twoInstances(
        _ backend: Backend, perInstance: Int, allSucceed: Bool = true, limiter: @escaping @Sendable (any GatewayStore) -> any RequestRateLimiter
    ) async throws -> Int {
        let refused = Mutex(0)
        try await withStack(
            backend,
            sandbox: {
                $0.rateLimitPerMinute = 8
                $0.rateLimitWindowSeconds = 2
            }, limiter: limiter
        ) { s in
            var configuration = s.gateway.configuration
            configuration.instanceID = "second"
            configuration.publicURL = s.gatewayURL
            let kaspi = KaspiConfiguration(
                environment: .custom(try #require(URL(string: s.sandboxURL))), tradePointID: "TP-GW", apiKey: try APIKey("sandbox_gateway_key"),
                requestTimeout: .seconds(30),
                retryPolicy: RetryPolicy(maxAttempts: 6, initialDelay: .milliseconds(50), jitter: 0, maxElapsed: .seconds(60)))
            let transport = AsyncHTTPClientTransport()
            let second = Gateway(
                configuration: configuration, store: s.gateway.store,
                provider: KaspiPayProvider(client: KaspiClient(configuration: kaspi, transport: transport, rateLimiter: limiter(s.gateway.store))))
            let results = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<(perInstance * 2) {
                    let gateway = i % 2 == 0 ? s.gateway : second
                    group.addTask { (try? await gateway.createCheckout(CheckoutRequest(amount: 1000 + i), kind: .redirect)) != nil }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            if allSucceed { #expect(results.allSatisfy { $0 }) }
            refused.withLock { $0 = 0 }
            let count = await s.sandbox.rateLimitedCount()
            refused.withLock { $0 = count }
            await second.shutdown()
            try await transport.shutdown()
        }
        return refused.withLock { $0 }
    }

    @Test("two instances share Kaspi's rate limit through the database: Kaspi never answers 429", arguments: Backend.available)
    func sharedRateLimit(_ backend: Backend) async throws {
        let refused = try await Self.twoInstances(backend, perInstance: 10) { store in
            SharedRateLimiter(store: store, key: "TP-GW", limit: 8, window: 2, margin: 3)
        }
        #expect(refused == 0)
    }

    @Test("with a limiter per instance, the same load goes over Kaspi's limit (what the shared one prevents)")
    func perInstanceLimitersOverrun() async throws {
        let refused = try await Self.twoInstances(.sqlite, perInstance: 10, allSucceed: false) { _ in
            RateLimiter(limit: 8, per: .seconds(2))
        }
        #expect(refused > 0)
    }

    @Test("two instances and a slow receiver: each event delivered and counted once", arguments: Backend.available)
    func twoInstancesDeliverEachEventOnce(_ backend: Backend) async throws {
        try await withStack(
            backend, merchantDelay: .milliseconds(150),
            configure: {
                $0.eventDeliveryTimeout = 5
                $0.workBatchSize = 20
            }
        ) { s in
            var ids: [String] = []
            for i in 0..<12 {
                let order = makeOrder("slow-\(i)")
                try await s.gateway.store.insert(order)
                _ = try await s.gateway.store.update(orderID: order.id) {
                    OrderStateMachine.apply(.approved, transactionID: "T\(i)", source: .poll, to: $0, at: Date())
                }
                ids.append(order.id)
            }
            var configuration = s.gateway.configuration
            configuration.instanceID = "second"
            let second = Gateway(configuration: configuration, store: s.gateway.store, provider: s.gateway.provider)
            let worker = Task {
                while !Task.isCancelled {
                    _ = try? await second.deliverEventsOnce()
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(
                await eventually {
                    let outbox = (try? await s.gateway.store.outboxMessages(orderID: nil, limit: 100)) ?? []
                    return outbox.count == 12 && outbox.allSatisfy { $0.state == .delivered }
                })
            worker.cancel()
            _ = await worker.result
            await second.shutdown()
            let outbox = try await s.gateway.store.outboxMessages(orderID: nil, limit: 100)
            for message in outbox {
                #expect(message.attempts == 1, "\(message.id): \(message.attempts) attempts")
                #expect(try await s.gateway.store.deliveryAttempts(messageID: message.id).count == 1)
            }
            let heard = Dictionary(grouping: s.merchant.events, by: \.id)
            #expect(heard.count == 12 && s.merchant.events.count == 12)
        }
    }

    @Test func headerNamesAreTheOnesWritten() {
        #expect(HTTPField.Name.idempotencyKey.rawName == "Idempotency-Key")
        #expect(HTTPField.Name.idempotentReplayed.rawName == "Idempotent-Replayed")
        #expect(HTTPField.Name.webhookID.rawName == "webhook-id")
        #expect(HTTPField.Name.webhookTimestamp.rawName == "webhook-timestamp")
        #expect(HTTPField.Name.webhookSignature.rawName == "webhook-signature")
    }
}

extension Hex {
    /// The gateway's request hash: SHA-256 of the path and the body, in hex.
    static func sha256Hex(_ path: String, _ body: String) -> String {
        encode(Array(SHA256.hash(data: Data(path.utf8) + Data(body.utf8))))
    }
}
