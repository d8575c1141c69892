import Foundation
import KaspiEvents
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("Gateway end to end against the sandbox")
struct GatewayFlowTests {
    @Test(arguments: Backend.available)
    func redirectCheckoutPaidWithWebhookEventAndReturnPage(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let body = #"{"amount":5000,"description":"Two chairs","merchantReference":"cart-77","metadata":{"b":2,"a":"x"}}"#
            let created = try await s.api(.POST, "/v1/checkouts", body, idempotencyKey: "idem-1")
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(created.json["id"] as? String)
            let paymentURL = try #require(created.json["paymentUrl"] as? String)
            #expect(paymentURL.hasPrefix(s.sandboxURL + "/pay/"))
            #expect(created.json["state"] as? String == "pending")
            #expect((created.json["metadata"] as? [String: Any])?["b"] as? Int == 2)
            // The same key and body replay the first response; another body is a conflict.
            let replay = try await s.api(.POST, "/v1/checkouts", body, idempotencyKey: "idem-1")
            #expect(replay.status == 201 && replay.body == created.body && replay.headers["idempotent-replayed"] == "true")
            let conflict = try await s.api(.POST, "/v1/checkouts", #"{"amount":6000}"#, idempotencyKey: "idem-1")
            #expect(conflict.status == 409 && conflict.errorCode == "IDEMPOTENCY_CONFLICT")
            #expect(try await s.gateway.store.orders(OrderQuery()).orders.count == 1)

            // Before paying, the return page asks Kaspi and shows pending, refreshing itself
            // (in Russian, the default).
            let pendingPage = try await http(.GET, s.gatewayURL + "/pay/return/\(id)")
            #expect(pendingPage.body.contains("Обрабатывается") && pendingPage.body.contains("data-waiting"))
            #expect(pendingPage.body.contains("<html lang=\"ru\">") && pendingPage.headers["content-language"] == "ru")

            let paid = try await s.payOnPage(paymentURL)
            #expect(paid.status == 303 && paid.headers["location"] == s.gatewayURL + "/pay/return/\(id)")
            #expect(try await s.waitFor(id, .paid))
            let page = try await http(.GET, paid.headers["location"]!, headers: ["Accept-Language": "kk-KZ,ru;q=0.8"])
            #expect(page.body.contains("Төлем қабылданды") && page.body.contains("5\u{00A0}000\u{00A0}₸") && page.body.contains("<html lang=\"kk\">"))

            // The merchant's systems hear about it, signed the Standard Webhooks way.
            #expect(await eventually { s.merchant.events.contains { $0.type == "order.paid" } })
            let event = try #require(s.merchant.events.first { $0.type == "order.paid" })
            // Verified and decoded as a merchant's shop does, with KaspiEvents.
            let verifier = try EventVerifier(secret: s.webhookSecret)
            let headers = ["webhook-id": event.id, "webhook-timestamp": event.timestamp, "webhook-signature": event.signature]
            let verified = try verifier.verify(payload: Array(event.body.utf8), headers: headers)
            guard case .orderPaid(let order) = verified.event else {
                Issue.record("not order.paid: \(verified.event)")
                return
            }
            #expect(order.id == id && order.merchantReference == "cart-77" && order.transactionID != nil && verified.id == event.id)
            #expect(throws: EventVerificationError.signatureMismatch) {
                try verifier.verify(payload: Array((event.body + " ").utf8), headers: headers)
            }

            let fetched = try await s.api(.GET, "/v1/orders/\(id)")
            #expect(fetched.json["state"] as? String == "paid" && (fetched.json["transactionId"] as? String) != nil)
            let events = try await s.api(.GET, "/v1/orders/\(id)/events")
            let kinds = (events.json["data"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(kinds.first == "created" && kinds.contains("transition"))
            let list = try await s.api(.GET, "/v1/orders?status=paid&limit=10")
            #expect((list.json["data"] as? [[String: Any]])?.count == 1)
            // The delivery is recorded just after the merchant answered.
            #expect(
                await eventually {
                    let outbox = try? await s.api(.GET, "/v1/events?orderId=\(id)")
                    return ((outbox?.json["data"] as? [[String: Any]]) ?? []).contains { $0["state"] as? String == "delivered" }
                })

            // Prometheus metrics: requests, transitions, webhooks, Kaspi latency, deliveries.
            let metrics = try await http(.GET, s.adminURL + "/metrics")
            #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
            for line in [
                #"kaspi_gateway_http_requests_total{route="/v1/checkouts",status="201"}"#,
                #"kaspi_gateway_transitions_total{to="paid"} 1"#,
                #"kaspi_gateway_webhooks_total{outcome="applied"} 1"#,
                #"kaspi_gateway_kaspi_call_duration_seconds_count{call="create_payment"} 1"#,
                #"kaspi_gateway_event_deliveries_total{outcome="delivered"}"#,
                "kaspi_gateway_outbox_lag_seconds",
            ] {
                #expect(metrics.body.contains(line), "\(line)")
            }
            #expect(!metrics.body.contains(s.apiKey) && !metrics.body.contains("sandbox_gateway_key"))

            // Logs are structured and carry no secret: not the merchant's key, Kaspi's key or the signing secret.
            let lines = s.logs.lines
            #expect(lines.contains { $0.contains("Checkout created") })
            #expect(lines.contains { $0.contains("Kaspi response") && $0.contains("http.status=200") })
            for line in lines {
                #expect(!line.contains(s.apiKey) && !line.contains("sandbox_gateway_key") && !line.contains(s.webhookSecret))
            }
        }
    }

    @Test(arguments: Backend.available)
    func theCheckoutsLocaleIsKeptShownToThePayerAndCarriedByTheEvents(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":2500,"merchantReference":"kk-1","locale":"kk"}"#)
            #expect(created.status == 201 && created.json["locale"] as? String == "kk", "\(created.body)")
            let id = try #require(created.json["id"] as? String)
            #expect(try await s.order(id)?.locale == "kk")
            #expect(try await s.api(.GET, "/v1/orders/\(id)").json["locale"] as? String == "kk")
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            // The return page speaks the checkout's language over the browser's; the payer's own choice wins.
            let page = try await http(.GET, s.gatewayURL + "/pay/return/\(id)", headers: ["Accept-Language": "ru-RU"])
            #expect(page.body.contains("<html lang=\"kk\">") && page.body.contains("Төлем қабылданды"), "\(page.body)")
            let chosen = try await http(.GET, s.gatewayURL + "/pay/return/\(id)?lang=en")
            #expect(chosen.body.contains("Payment received"))
            // The merchant's event carries it, for the shop's emails.
            #expect(await eventually { s.merchant.events.contains { $0.type == "order.paid" } })
            let event = try #require(s.merchant.events.first { $0.type == "order.paid" })
            let verified = try EventVerifier(secret: s.webhookSecret).verify(
                payload: Array(event.body.utf8),
                headers: ["webhook-id": event.id, "webhook-timestamp": event.timestamp, "webhook-signature": event.signature])
            guard case .orderPaid(let order) = verified.event else { throw CancellationError() }
            #expect(order.locale == "kk")
            // Without one, none is invented; a language the gateway does not speak is refused.
            let plain = try await s.api(.POST, "/v1/checkouts", #"{"amount":2500}"#)
            #expect(plain.status == 201 && plain.json["locale"] == nil)
            let refused = try await s.api(.POST, "/v1/checkouts", #"{"amount":2500,"locale":"de"}"#)
            #expect(refused.status == 400 && refused.body.contains("locale must be kk, ru or en."), "\(refused.body)")
        }
    }

    @Test(arguments: Backend.available)
    func aDroppedWebhookIsRecoveredByReconciliation(_ backend: Backend) async throws {
        var faults = SandboxFaults()
        faults.webhookDropRate = 1
        try await withStack(backend, faults: faults, configure: { $0.firstPollAfter = 0.3 }) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":2500}"#)
            let id = try #require(created.json["id"] as? String, "\(created.body)")
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            #expect(await s.sandbox.webhooks().allSatisfy { $0.state == .dropped })
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.contains { $0.kind == .transition && $0.detail.contains("via poll") })
        }
    }

    @Test(arguments: Backend.available)
    func duplicateReorderedForgedAndWrongWebhooks(_ backend: Backend) async throws {
        var faults = SandboxFaults()
        faults.webhookDuplicateRate = 1
        try await withStack(backend, faults: faults) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":3000}"#)
            let id = try #require(created.json["id"] as? String)
            let order = try #require(try await s.order(id))
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            try await Task.sleep(for: .milliseconds(300))
            // The duplicate changed nothing: one transition to paid, one event out, and, being a
            // copy of what the order shows, no row in the timeline either.
            #expect(try await s.gateway.store.events(orderID: id).filter { $0.toState == .paid }.count == 1)
            #expect(
                await eventually {
                    metric((try? await http(.GET, s.adminURL + "/metrics").body) ?? "", #"kaspi_gateway_webhooks_total{outcome="unchanged"}"#)
                        ?? 0 >= 1
                })
            #expect(!(try await s.gateway.store.events(orderID: id).contains { $0.detail.contains("nothing to change") }))
            #expect(try await s.gateway.store.outboxMessages(orderID: id, limit: 10).filter { $0.type == "order.paid" }.count == 1)

            // An older CANCELLED arriving after the payment changes nothing but is flagged.
            let key = try APIKey("sandbox_gateway_key")
            let late =
                #"{"orderId":"\#(order.providerOrderID)","amount":3000,"status":"CANCELLED","transactionId":null,"signature":"\#(Signature.webhook(orderID: order.providerOrderID, amount: 3000, apiKey: key))"}"#
            let lateAnswer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: late, headers: ["Content-Type": "application/json"])
            #expect(lateAnswer.status == 200)
            let after = try #require(try await s.order(id))
            #expect(after.state == .paid && after.needsReview)

            // Forged and wrong webhooks are refused with a code, changing nothing.
            let version = after.version
            let forged =
                #"{"orderId":"\#(order.providerOrderID)","amount":3000,"status":"DECLINED","transactionId":null,"signature":"\#(String(repeating: "0", count: 64))"}"#
            let forgedAnswer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: forged)
            #expect(forgedAnswer.status == 400 && forgedAnswer.errorCode == "WEBHOOK_BAD_SIGNATURE")
            let wrongAmount =
                #"{"orderId":"\#(order.providerOrderID)","amount":30,"status":"APPROVED","transactionId":"X","signature":"\#(Signature.webhook(orderID: order.providerOrderID, amount: 30, apiKey: key))"}"#
            let wrongAnswer = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: wrongAmount)
            #expect(wrongAnswer.status == 400 && wrongAnswer.errorCode == "WEBHOOK_AMOUNT_MISMATCH")
            let unknown =
                #"{"orderId":"kk_nope","amount":30,"status":"APPROVED","transactionId":"X","signature":"\#(Signature.webhook(orderID: "kk_nope", amount: 30, apiKey: key))"}"#
            #expect(try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: unknown).errorCode == "WEBHOOK_UNKNOWN_ORDER")
            #expect(try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: "not json").errorCode == "WEBHOOK_NOT_JSON")
            #expect(try await s.order(id)?.version == version)
        }
    }

    @Test(arguments: Backend.available)
    func refundsPartialFullAndConcurrent(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let id = try #require(created.json["id"] as? String)
            let early = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":100}"#)
            #expect(early.status == 409 && early.errorCode == "NOT_REFUNDABLE")
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            let partial = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#, idempotencyKey: "rf-1")
            #expect(partial.status == 201 && partial.json["refundedAmount"] as? Int == 1000, "\(partial.body)")
            let replay = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#, idempotencyKey: "rf-1")
            #expect(replay.json["refundedAmount"] as? Int == 1000)
            // Ten concurrent refunds of 1000 race for the 4000 that remain.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 { group.addTask { try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":1000}"#).status } }
                var all: [Int] = []
                for try await status in group { all.append(status) }
                return all
            }
            #expect(statuses.filter { $0 == 201 }.count == 4)
            #expect(statuses.filter { $0 == 409 }.count == 6)
            let final = try #require(try await s.order(id))
            #expect(final.refundedAmount == 5000)
            let kaspi = try #require(await s.sandbox.orders().first { $0.orderID == final.providerOrderID })
            #expect(kaspi.refundedAmount == 5000)
            #expect(await eventually { s.merchant.events.filter { $0.type == "refund.succeeded" }.count == 5 })
            let none = try await s.api(.POST, "/v1/orders/\(id)/refunds", "{}")
            #expect(none.status == 409 && none.errorCode == "NOTHING_TO_REFUND")
        }
    }

    @Test(arguments: Backend.available)
    func qrCheckoutIsPolledToPaid(_ backend: Backend) async throws {
        try await withStack(backend, configure: { $0.firstPollAfter = 0.2 }) { s in
            let created = try await s.api(.POST, "/v1/qr-checkouts", #"{"amount":1500,"merchantReference":"till-3"}"#)
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(created.json["id"] as? String)
            let png = try #require((created.json["qrCode"] as? String).flatMap { Data(base64Encoded: $0) })
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let order = try #require(try await s.order(id))
            #expect(order.kind == .qr && order.qrToken == created.json["qrToken"] as? String)
            try await s.sandbox.trigger(.approved, orderID: order.providerOrderID, tradePointID: "TP-GW")
            #expect(try await s.waitFor(id, .paid))
        }
    }

    @Test(arguments: Backend.available)
    func mobileOrdersReturnToTheAppInTheGuidesFormat(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let created = try await s.api(
                .POST, "/v1/checkouts", #"{"amount":900,"merchantReference":"ORDER-123","mobileReturnUrl":"yourapp://payment"}"#)
            let id = try #require(created.json["id"] as? String)
            let paid = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            let back = try await http(.GET, try #require(paid.headers["location"]))
            #expect(back.status == 303)
            #expect(back.headers["location"] == "yourapp://payment?status=success&orderId=ORDER-123&gatewayOrderId=\(id)")
            #expect(try await s.order(id)?.state == .paid)

            let declined = try await s.api(
                .POST, "/v1/checkouts", #"{"amount":900,"merchantReference":"ORDER-124","mobileReturnUrl":"yourapp://payment"}"#)
            let fail = try await s.payOnPage(try #require(declined.json["paymentUrl"] as? String), action: "decline")
            let failBack = try await http(.GET, try #require(fail.headers["location"]))
            let declinedID = try #require(declined.json["id"] as? String)
            #expect(failBack.headers["location"] == "yourapp://payment?status=failed&orderId=ORDER-124&gatewayOrderId=\(declinedID)")
        }
    }

    @Test(arguments: Backend.available)
    func everyResponseMatchesOpenAPIGatewayYAML(_ backend: Backend) async throws {
        let contract = try ContractChecker.gateway()
        try await withStack(backend) { s in
            func check(_ result: HTTPResult, _ path: String, _ method: String, _ status: Int) throws {
                #expect(result.status == status, "\(method) \(path): \(result.body)")
                let schema = try contract.responseSchema(path: path, method: method, status: status)
                #expect(contract.violations(of: Array(result.body.utf8), against: schema) == [], "\(method) \(path): \(result.body)")
            }
            let request =
                #"{"amount":5000,"description":"d","merchantReference":"r-1","metadata":{"k":[1,true,null]},"mobileReturnUrl":"yourapp://payment"}"#
            #expect(contract.violations(of: Array(request.utf8), against: try contract.requestSchema(path: "/v1/checkouts", method: "post")) == [])
            let created = try await s.api(.POST, "/v1/checkouts", request)
            try check(created, "/v1/checkouts", "post", 201)
            let id = try #require(created.json["id"] as? String)
            try check(try await s.api(.POST, "/v1/qr-checkouts", #"{"amount":700}"#), "/v1/qr-checkouts", "post", 201)
            try check(try await s.api(.GET, "/v1/orders/\(id)"), "/v1/orders/{id}", "get", 200)
            try check(try await s.api(.GET, "/v1/orders/\(id)/events"), "/v1/orders/{id}/events", "get", 200)
            try check(try await s.api(.GET, "/v1/orders?limit=1"), "/v1/orders", "get", 200)
            _ = try await s.payOnPage(try #require(created.json["paymentUrl"] as? String))
            #expect(try await s.waitFor(id, .paid))
            try check(try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":100}"#), "/v1/orders/{id}/refunds", "post", 201)
            #expect(await eventually { s.merchant.events.count >= 2 })
            try check(try await s.api(.GET, "/v1/events"), "/v1/events", "get", 200)
            try check(try await s.api(.GET, "/v1/events?after=0_0&limit=1"), "/v1/events", "get", 200)
            try check(try await s.api(.GET, "/v1/events?after=nope"), "/v1/events", "get", 400)
            try check(try await s.api(.POST, "/v1/events/msg_nope/resend"), "/v1/events/{id}/resend", "post", 404)
            let eventSchema = try contract.webhookSchema(name: "merchantEvent")
            for event in s.merchant.events { #expect(contract.violations(of: Array(event.body.utf8), against: eventSchema) == []) }
            try check(try await s.api(.GET, "/v1/orders/nope"), "/v1/orders/{id}", "get", 404)
            try check(try await s.api(.POST, "/v1/checkouts", "{}"), "/v1/checkouts", "post", 400)
        }
    }

    @Test(arguments: Backend.available)
    func paymentLinksArePaidOnceAndShareable(_ backend: Backend) async throws {
        let contract = try ContractChecker.gateway()
        try await withStack(backend) { s in
            let created = try await s.api(.POST, "/v1/payment-links", #"{"amount":7500,"description":"Invoice 42","merchantReference":"inv-42"}"#)
            #expect(created.status == 201, "\(created.body)")
            #expect(
                contract.violations(
                    of: Array(created.body.utf8), against: try contract.responseSchema(path: "/v1/payment-links", method: "post", status: 201)) == [])
            let id = try #require(created.json["id"] as? String)
            let url = try #require(created.json["url"] as? String)
            #expect(url == s.gatewayURL + "/l/\(id)" && id.count == 10)
            #expect((created.json["whatsappUrl"] as? String)?.hasPrefix("https://wa.me/?text=") == true)
            #expect((created.json["whatsappUrl"] as? String)?.contains(url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!) == true)
            #expect((created.json["smsUrl"] as? String)?.hasPrefix("sms:?&body=") == true)
            let png = try #require((created.json["qrCode"] as? String).flatMap { Data(base64Encoded: $0) })
            if let zbar = try ExternalTool.zbarimg.locate() {
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("link-\(UUID().uuidString).png")
                try png.write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                #expect(
                    try await ProcessRunner.run(zbar, ["--quiet", "--raw", file.path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == url)
            }
            // ?lang= chooses, and the answer remembers it.
            let page = try await http(.GET, url + "?lang=en")
            #expect(page.status == 200 && page.body.contains("Pay with Kaspi") && page.body.contains("Invoice 42"))
            #expect(page.headers["set-cookie"]?.hasPrefix("kaspikit_lang=en;") == true)
            #expect(page.body.contains(#"<a href="/l/\#(id)?lang=kk" lang="kk" hreflang="kk">Қазақша</a>"#), "the switcher links to the same page")
            let remembered = try await http(.GET, url, headers: ["Cookie": "kaspikit_lang=en", "Accept-Language": "ru"])
            #expect(remembered.body.contains("Pay with Kaspi") && remembered.headers["set-cookie"] == nil)
            let first = try await http(.POST, url + "/pay")
            #expect(first.status == 303)
            let paymentURL = try #require(first.headers["location"])
            #expect(paymentURL.hasPrefix(s.sandboxURL + "/pay/"))
            // Opening it again reuses the same Kaspi order.
            #expect(try await http(.POST, url + "/pay").headers["location"] == paymentURL)
            _ = try await s.payOnPage(paymentURL)
            #expect(await eventually { (try? await s.api(.GET, "/v1/payment-links/\(id)").json["status"] as? String) == "paid" })
            let paidPage = try await http(.GET, url)
            #expect(paidPage.body.contains("Оплачено.") && !paidPage.body.contains("Оплатить через Kaspi"))
            let fetched = try await s.api(.GET, "/v1/payment-links/\(id)")
            let orderID = try #require(fetched.json["orderId"] as? String)
            #expect(try await s.order(orderID)?.kind == .link)
            #expect(try await s.order(orderID)?.paymentLinkID == id)

            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let soon = formatter.string(from: Date().addingTimeInterval(1.5))
            let expiring = try await s.api(.POST, "/v1/payment-links", #"{"amount":1000,"expiresAt":"\#(soon)"}"#)
            let expiringURL = try #require(expiring.json["url"] as? String, "\(expiring.body)")
            try await Task.sleep(for: .milliseconds(1600))
            #expect(try await http(.POST, expiringURL + "/pay").status == 410)
            #expect(try await http(.GET, expiringURL).body.contains("Срок действия ссылки истёк"))
            #expect(try await s.api(.POST, "/v1/payment-links", #"{"amount":1000,"expiresAt":"2001-01-01T00:00:00Z"}"#).status == 400)
            #expect(try await http(.GET, s.gatewayURL + "/l/nope").status == 404)
        }
    }

    @Test(arguments: Backend.available)
    func theAPIValidatesAndAuthenticates(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            #expect(try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#, key: "wrong").status == 401)
            #expect(try await http(.GET, s.gatewayURL + "/v1/orders").status == 401)
            for bad in [
                #"{"amount":99}"#, #"{"amount":"5000"}"#, #"{}"#, "not json", #"{"amount":5000,"description":7}"#, #"{"amount":5000,"metadata":[1]}"#,
                #"{"amount":5000,"mobileReturnUrl":"no scheme"}"#,
            ] {
                let answer = try await s.api(.POST, "/v1/checkouts", bad)
                #expect(answer.status == 400 && answer.errorCode == "INVALID_REQUEST", "\(bad): \(answer.body)")
            }
            // A mobile return goes only where the merchant configured (yourapp:// and
            // kaspikit-test:// here): never to another app, another host or script.
            for elsewhere in ["javascript:alert(1)//yourapp://", "otherapp://payment", "https://evil.example/yourapp://", "data:text/html,x"] {
                let answer = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000,"mobileReturnUrl":"\#(elsewhere)"}"#)
                #expect(answer.status == 403 && answer.errorCode == "MOBILE_RETURN_URL_NOT_ALLOWED", "\(elsewhere): \(answer.body)")
            }
            #expect(try await s.api(.POST, "/v1/checkouts", #"{"amount":5000,"mobileReturnUrl":"YourApp://payment?x=1"}"#).status == 201)
            // Money is a whole number of tenge: a fraction is refused, never rounded; the same
            // number written another way is the same amount.
            for fraction in ["99.99999999999999999", "5000.5", "1e-2", "true", "[5000]"] {
                let answer = try await s.api(.POST, "/v1/checkouts", #"{"amount":\#(fraction)}"#)
                #expect(answer.status == 400 && answer.body.contains("amount must be a whole number of tenge"), "\(fraction): \(answer.body)")
            }
            // null is neither a value nor leaving the field out.
            let null = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000,"description":null}"#)
            #expect(null.status == 400 && null.body.contains("description must not be null"), "\(null.body)")
            for same in ["5000.0", "5e3"] {
                let answer = try await s.api(.POST, "/v1/checkouts", #"{"amount":\#(same)}"#)
                #expect(answer.status == 201 && answer.json["amount"] as? Int == 5000, "\(same): \(answer.body)")
            }
            // A field the request does not have is refused by name, as the contract's
            // additionalProperties: false says; nothing is created.
            let before = try await s.api(.GET, "/v1/orders?limit=200").json["data"] as? [Any]
            for (path, body) in [
                ("/v1/checkouts", #"{"amount":5000,"x":1}"#), ("/v1/qr-checkouts", #"{"amount":5000,"descripton":"typo"}"#),
                ("/v1/payment-links", #"{"amount":5000,"expires":"2030-01-01T00:00:00Z"}"#),
                ("/v1/orders/ord_nope/refunds", #"{"amount":100,"reason":"x"}"#), ("/v1/orders/ord_nope/manual-refunds", #"{"amount":100,"x":1}"#),
            ] {
                let answer = try await s.api(.POST, path, body)
                let field =
                    body.contains("descripton") ? "descripton" : body.contains("expires\"") ? "expires" : body.contains("reason") ? "reason" : "x"
                #expect(
                    answer.status == 400 && answer.errorCode == "UNKNOWN_FIELD" && answer.body.contains("\\\"\(field)\\\""), "\(path): \(answer.body)"
                )
            }
            #expect((try await s.api(.GET, "/v1/orders?limit=200").json["data"] as? [Any])?.count == before.map { $0.count })
            #expect(try await s.api(.GET, "/v1/orders/ord_nope").errorCode == "ORDER_NOT_FOUND")
            #expect(try await s.api(.GET, "/v1/orders?status=weird").status == 400)
            #expect(try await s.api(.GET, "/v1/orders?cursor=zzz").status == 400)
            #expect(try await http(.GET, s.gatewayURL + "/health").status == 200)
            #expect(try await http(.GET, s.gatewayURL + "/ready").status == 200)
            // A known path asked with a method it does not have: 405, with the methods it has.
            let trace = try await http(.TRACE, s.gatewayURL + "/v1/orders/ord_x")
            #expect(trace.status == 405 && trace.headers["allow"] == "GET", "\(trace.status) \(trace.headers)")
            let put = try await http(.PUT, s.gatewayURL + "/v1/orders/ord_x/refunds")
            #expect(put.status == 405 && put.headers["allow"] == "GET, POST")
            #expect(try await http(.TRACE, s.gatewayURL + "/nowhere").status == 404)
            let qr = try await http(.PUT, s.sandboxURL + "/r1/v01/qr/create")
            #expect(qr.status == 405 && qr.headers["allow"] == "POST", "\(qr.status) \(qr.headers)")
            // The public listener serves no dashboard and no metrics; the admin one nothing else.
            for path in ["/metrics", "/admin", "/admin/login"] { #expect(try await http(.GET, s.gatewayURL + path).status == 404, "\(path)") }
            #expect(try await http(.GET, s.adminURL + "/metrics").status == 200)
            #expect(try await http(.GET, s.adminURL + "/admin/login").status == 200)
            #expect(try await http(.GET, s.adminURL + "/health").status == 200)
            for path in ["/v1/orders", "/client/v1/orders/x", "/pay/return/x"] {
                #expect(try await http(.GET, s.adminURL + path).status == 404, "\(path)")
            }
        }
    }
}
