import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import NIOHTTP1
import Testing

/// The gateway on Kaspi's partner API (the Kaspi QR API), against the sandbox, for each scheme.
@Suite("Gateway on the Kaspi QR API")
struct QRGatewayTests {
    static let schemes: [KaspiQRAPI.SchemeName] = [.r1, .r2, .r3]

    @Test("a link checkout is paid: polled at Kaspi's interval, the first Wait in the timeline", arguments: schemes)
    func linkCheckoutPaid(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let (id, body) = try await s.checkout(amount: 7500)
            let link = try #require(body["paymentUrl"] as? String)
            #expect(link.hasPrefix(s.sandboxURL + "/pay/"))
            let purchase = try #require(try await s.purchase(id))
            #expect(purchase.externalID == (try await s.order(id))?.providerOrderID)  // ExternalId carries the order
            #expect(purchase.amount == 7500 && purchase.kind == .link)
            // Polls that change nothing stay out of the timeline (waited for by their metric,
            // not by a sleep: a loaded machine polls later).
            @Sendable func unchangedPolls() async -> Double {
                let metrics = (try? await http(.GET, s.adminURL + "/metrics").body) ?? ""
                return metric(metrics, #"kaspi_gateway_status_polls_total{outcome="unchanged"}"#) ?? 0
            }
            await s.sandbox.advanceClock(by: 6)
            #expect(await eventually(seconds: 20) { await unchangedPolls() > 0 })
            var events = try await s.gateway.store.events(orderID: id)
            #expect(events.map(\.kind) == [.created, .transition])
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            await s.sandbox.advanceClock(by: 6)
            #expect(
                await eventually(seconds: 10) { (try? await s.gateway.store.events(orderID: id).contains { $0.detail.contains("(Wait)") }) == true })
            try await s.sandbox.act(.confirm, paymentID: purchase.id)
            #expect(try await s.advance(6, until: id, is: .paid))
            let order = try #require(try await s.order(id))
            #expect(order.transactionID?.isEmpty == false)
            events = try await s.gateway.store.events(orderID: id)
            #expect(events.map(\.kind) == [.created, .transition, .poll, .transition])
            #expect(await unchangedPolls() > 0)
        }
    }

    @Test("a QR checkout: the token drawn as the QR, declined when the scan fails", arguments: schemes)
    func qrCheckoutDeclined(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let (id, body) = try await s.checkout(qr: true, amount: 3000)
            let purchase = try #require(try await s.purchase(id))
            #expect(body["qrToken"] as? String == purchase.token)
            #expect((body["qrCode"] as? String)?.isEmpty == false)
            try await s.sandbox.act(.scanError, paymentID: purchase.id)
            #expect(try await s.advance(6, until: id, is: .declined))
        }
    }

    @Test("scanned but never confirmed: expired at the confirmation deadline, from the first Wait", arguments: schemes)
    func scannedNeverConfirmed(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let (id, _) = try await s.checkout()
            let purchase = try #require(try await s.purchase(id))
            // Scanned late in the scan window: the payer still has 65 s from the first Wait.
            await s.sandbox.advanceClock(by: 170)
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            #expect(
                await eventually(seconds: 10) { (try? await s.gateway.store.events(orderID: id).contains { $0.detail.contains("(Wait)") }) == true })
            await s.sandbox.advanceClock(by: 20)  // 190 s: past the scan deadline, inside the confirmation one
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await s.order(id)?.state == .pending)
            #expect(try await s.advance(60, until: id, is: .expired))
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.last?.detail.contains("deadline") == true)
        }
    }

    @Test("Kaspi's Error at the confirmation deadline counted from the scan is expired, not declined", arguments: Backend.available)
    func confirmationTimeoutFromTheScan(_ backend: Backend) async throws {
        // Kaspi's timing from the report: 20 s to scan, 10 s to confirm, polls every second.
        try await withQRStack(backend, scheme: .r1) { _ in
        } sandbox: { sandbox in
            sandbox.qrAPI.statusPollingInterval = 1
            sandbox.qrAPI.qrCodeScanWaitTimeout = 20
            sandbox.qrAPI.paymentConfirmationTimeout = 10
        } _: { s in
            let (id, _) = try await s.checkout(qr: true)
            let purchase = try #require(try await s.purchase(id))
            // A poll sees the QR unscanned; the payer scans right after it.
            await s.sandbox.advanceClock(by: 1.2)
            #expect(await eventually(seconds: 20) { (try? await s.order(id)?.lastPolledAt) != nil })
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            // The next poll, 1.2 s after the scan, sees the first Wait.
            await s.sandbox.advanceClock(by: 1.2)
            #expect(
                await eventually(seconds: 20) { (try? await s.gateway.store.events(orderID: id).contains { $0.detail.contains("(Wait)") }) == true })
            // 10.3 s after the scan (9.1 s after the first Wait) Kaspi has cancelled it: the
            // payer let the timer run out.
            #expect(try await s.advance(9.1, until: id, is: .expired))
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.last?.detail.contains("Kaspi cancelled it at its deadline") == true)
        }
    }

    @Test("never scanned: expired at the scan deadline", arguments: schemes)
    func neverScanned(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let (id, _) = try await s.checkout(qr: true)
            await s.sandbox.advanceClock(by: 100)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await s.order(id)?.state == .pending)
            #expect(try await s.advance(90, until: id, is: .expired))
        }
    }

    @Test("a lost create answer: the purchase is made once, the order is not paid twice", arguments: schemes)
    func lostCreate(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            var faults = SandboxQRFaults()
            faults.loseResponseNext = 1
            await s.sandbox.setQRFaults(faults, organizationBin: "123456789012")
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            #expect(created.status == 503 && created.errorCode == "PROVIDER_UNAVAILABLE")
            let purchases = await s.sandbox.qrPurchases()
            #expect(purchases.count == 1)
            let orders = try await s.gateway.store.orders(OrderQuery()).orders
            #expect(orders.count == 1 && orders[0].state == .created)
            let id = orders[0].id
            #expect(purchases[0].externalID == orders[0].providerOrderID)
            // Reconciliation cannot find it (Kaspi has no search) and the payer never saw it.
            #expect(try await s.advance(130, until: id, is: .expired))
            let events = try await s.gateway.store.events(orderID: id)
            #expect(events.last?.detail.contains("never received") == true)
        }
    }

    @Test("refunds per scheme: r3 through the API, r1 and r2 say how", arguments: schemes)
    func refundsPerScheme(_ scheme: KaspiQRAPI.SchemeName) async throws {
        try await withQRStack(.sqlite, scheme: scheme) { s in
            let (id, _) = try await s.checkout(amount: 9000)
            let purchase = try #require(try await s.purchase(id))
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            try await s.sandbox.act(.confirm, paymentID: purchase.id)
            #expect(try await s.advance(6, until: id, is: .paid))
            let refund = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":4000}"#)
            switch scheme {
            case .r1:
                #expect(refund.status == 409 && refund.errorCode == "REFUND_IN_KASPI_APP")
                // Refunded in the Kaspi Pay app, then recorded: reserved like any refund.
                let manual = try await s.api(.POST, "/v1/orders/\(id)/manual-refunds", #"{"amount":4000,"note":"app operation 77"}"#)
                #expect(manual.status == 201, "\(manual.body)")
                #expect(manual.json["refundedAmount"] as? Int == 4000)
                let over = try await s.api(.POST, "/v1/orders/\(id)/manual-refunds", #"{"amount":5001}"#)
                #expect(over.status == 409 && over.errorCode == "REFUND_EXCEEDS_PAID")
                let refunds = try await s.gateway.store.refunds(orderID: id)
                #expect(refunds.map(\.status) == [.succeeded] && refunds[0].detail?.contains("app operation 77") == true)
                let events = try await s.gateway.store.events(orderID: id)
                #expect(events.contains { $0.kind == .admin && $0.detail.contains("Kaspi Pay app") })
            case .r2:
                #expect(refund.status == 409 && refund.errorCode == "REFUND_NEEDS_CUSTOMER")
                // The customer scans a return QR; their purchases name the gateway's orders.
                let created = try await s.api(.POST, "/v1/returns")
                #expect(created.status == 201, "\(created.body)")
                let returnID = try #require(created.json["id"] as? String)
                #expect((created.json["qrToken"] as? String)?.count == 41 && (created.json["qrCode"] as? String)?.isEmpty == false)
                var state = try await s.api(.GET, "/v1/returns/\(returnID)")
                #expect(state.json["identified"] as? Bool == false && state.json["status"] as? String == "QrTokenCreated")
                try await s.sandbox.scanReturn(try #require(Int64(returnID)))
                state = try await s.api(.GET, "/v1/returns/\(returnID)")
                let purchases = state.json["purchases"] as? [[String: Any]] ?? []
                #expect(state.json["identified"] as? Bool == true && purchases.count == 1)
                #expect(purchases.first?["orderId"] as? String == id && purchases.first?["refundableAmount"] as? Int == 9000)
                let withCustomer = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":4000,"returnId":"\#(returnID)"}"#)
                #expect(withCustomer.status == 201, "\(withCustomer.body)")
                #expect(try await s.order(id)?.refundedAmount == 4000)
                #expect(try await s.purchase(id)?.availableReturnAmount == 5000)
                let unknown = try await s.api(.GET, "/v1/returns/999")
                #expect(unknown.status == 404 && unknown.errorCode == "RETURN_NOT_FOUND")
            case .r3:
                #expect(refund.status == 201, "\(refund.body)")
                #expect(try await s.order(id)?.refundedAmount == 4000)
                let after = try #require(try await s.purchase(id))
                #expect(after.availableReturnAmount == 5000)
                // Refunded in the Kaspi Pay app meanwhile: Kaspi holds less than the gateway
                // thinks, and refuses (-99000005) on the merits: 409, not a 502 to retry.
                guard case .r3(let r3) = s.client else { return }
                let bin = try KaspiQRAPI.OrganizationBIN("123456789012")
                _ = try await r3.acting(for: bin).refund(
                    device: try KaspiQRAPI.DeviceToken(s.device.token), paymentID: after.id, amount: 3000)
                let beyond = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":4000}"#)
                #expect(beyond.status == 409 && beyond.errorCode == "KASPI_QR_REFUND_EXCEEDS_AMOUNT", "\(beyond.status) \(beyond.body)")
                #expect(try await s.order(id)?.refundedAmount == 4000)
                let returns = try await s.api(.POST, "/v1/returns")
                #expect(returns.status == 409 && returns.errorCode == "RETURNS_NOT_SUPPORTED")
            }
        }
    }

    @Test("paid and refunded on every database", arguments: Backend.available)
    func everyBackend(_ backend: Backend) async throws {
        try await withQRStack(backend, scheme: .r3) { s in
            let (id, _) = try await s.checkout(qr: true, amount: 4200)
            let purchase = try #require(try await s.purchase(id))
            try await s.sandbox.act(.scan, paymentID: purchase.id)
            try await s.sandbox.act(.confirm, paymentID: purchase.id)
            #expect(try await s.advance(6, until: id, is: .paid))
            let refund = try await s.api(.POST, "/v1/orders/\(id)/refunds", #"{"amount":200}"#)
            #expect(refund.status == 201, "\(refund.body)")
            #expect(try await s.purchase(id)?.availableReturnAmount == 4000)
        }
    }

    @Test("r3 remote invoices: the client's name first, read on request only, paid or cancelled")
    func remoteInvoices() async throws {
        try await withQRStack(.sqlite, scheme: .r3) { s in
            let info = try await s.api(.POST, "/v1/remote-invoices/client-info", #"{"phoneNumber":"87071234567"}"#)
            #expect(info.status == 200 && (info.json["clientName"] as? String)?.hasSuffix("4567") == true, "\(info.body)")
            let nobody = try await s.api(.POST, "/v1/remote-invoices/client-info", #"{"phoneNumber":"87070000000"}"#)
            // No Kaspi client (-1404): refused on the merits, which no retry changes.
            #expect(nobody.status == 422 && nobody.errorCode == "KASPI_QR_CLIENT_NOT_FOUND", "\(nobody.status) \(nobody.body)")
            let created = try await s.api(.POST, "/v1/remote-invoices", #"{"amount":4200,"phoneNumber":"8 707 123 45 67","comment":"Roses"}"#)
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["kind"] as? String == "remote" && created.json["state"] as? String == "pending")
            let purchase = try #require(try await s.purchase(id))
            #expect(purchase.kind == .remote && purchase.phoneNumber == "87071234567" && purchase.comment == "Roses")
            // Never polled on a timer: its next poll is the end of its 24 hours.
            let stored = try #require(try await s.order(id))
            #expect(stored.nextPollAt.map { $0.timeIntervalSince(stored.createdAt) > 86_000 } == true)
            await s.sandbox.advanceClock(by: 600)
            try await Task.sleep(for: .milliseconds(300))
            #expect(await s.sandbox.qrPurchases().first { $0.id == purchase.id }?.lastStatusReadAt == nil)
            // Nor by a public page: anyone can open one, and Kaspi refuses reads on a timer.
            for _ in 0..<3 { #expect(try await http(.GET, s.gatewayURL + "/pay/return/\(id)").status == 200) }
            #expect(await s.sandbox.qrPurchases().first { $0.id == purchase.id }?.lastStatusReadAt == nil, "a page view read a remote invoice")
            // Read on request; a second request at once is refused before it reaches Kaspi.
            let read = try await s.api(.POST, "/v1/orders/\(id)/refresh")
            #expect(read.status == 200 && read.json["state"] as? String == "pending")
            let again = try await s.api(.POST, "/v1/orders/\(id)/refresh")
            #expect(again.status == 429 && again.errorCode == "REFRESH_TOO_SOON" && again.headers["retry-after"] != nil)
            try await s.sandbox.act(.confirm, paymentID: purchase.id)
            await s.sandbox.advanceClock(by: 11)  // past the gateway's spacing and Kaspi's
            let paid = try await s.api(.POST, "/v1/orders/\(id)/refresh")
            #expect(paid.json["state"] as? String == "paid", "\(paid.body)")
            // Another one, cancelled.
            let other = try await s.api(.POST, "/v1/remote-invoices", #"{"amount":100,"phoneNumber":"77012223344"}"#)
            let otherID = try #require(other.json["id"] as? String)
            let cancelled = try await s.api(.POST, "/v1/orders/\(otherID)/cancel")
            #expect(cancelled.status == 200 && cancelled.json["state"] as? String == "cancelled", "\(cancelled.body)")
            let bad = try await s.api(.POST, "/v1/remote-invoices", #"{"amount":100,"phoneNumber":"12345"}"#)
            #expect(bad.status == 400)
        }
        try await withQRStack(.sqlite, scheme: .r1) { s in
            let refused = try await s.api(.POST, "/v1/remote-invoices", #"{"amount":100,"phoneNumber":"87071234567"}"#)
            #expect(refused.status == 409 && refused.errorCode == "REMOTE_INVOICES_NOT_SUPPORTED")
            // The capability is resolved when the app is built: every route of one the provider
            // lacks answers its refusal, whatever the body or the order.
            for (method, path) in [
                (NIOHTTP1.HTTPMethod.POST, "/v1/remote-invoices/client-info"), (.POST, "/v1/orders/ord_unknown/cancel"), (.POST, "/v1/returns"),
                (.GET, "/v1/returns/ret_unknown"),
            ] {
                let answer = try await s.api(method, path, "not json")
                let expected = path.contains("returns") ? "RETURNS_NOT_SUPPORTED" : "REMOTE_INVOICES_NOT_SUPPORTED"
                #expect(answer.status == 409 && answer.errorCode == expected, "\(path): \(answer.status) \(answer.body)")
            }
            // The QR API sends no webhooks: a post to the webhook route is not from Kaspi.
            let webhook = try await http(.POST, s.gatewayURL + "/webhooks/kaspi", body: "{}", headers: ["Content-Type": "application/json"])
            #expect(webhook.status == 400 && webhook.errorCode == "WEBHOOKS_NOT_SUPPORTED", "\(webhook.status) \(webhook.body)")
        }
    }

    @Test("the device is chosen by the merchant reference's prefix, else the default")
    func devicesByReference() async throws {
        try await withQRStack(.sqlite, scheme: .r3) { s in
            let second = try await KaspiQRSetup.registerDevice(
                client: s.client, store: s.gateway.store, tradePointID: 104039, referencePrefix: "B2-",
                organizationBin: try KaspiQRAPI.OrganizationBIN("987654321098"))
            #expect(!second.isDefault && s.device.isDefault)
            try await Task.sleep(for: .milliseconds(5100))  // the provider's device cache
            let (b2, _) = try await s.checkout(reference: "B2-77")
            let (plain, _) = try await s.checkout(reference: "A-1")
            #expect(try await s.purchase(b2)?.tradePointID == 104039)
            #expect(try await s.purchase(b2)?.organizationBin == "987654321098")
            #expect(try await s.purchase(plain)?.tradePointID == 19)
            // Rotating the default gives a new token and keeps it the default.
            let rotated = try await KaspiQRSetup.rotateDevice(client: s.client, store: s.gateway.store, id: s.device.id)
            #expect(rotated.isDefault && rotated.token != s.device.token)
            let devices = await s.sandbox.qrDevices()
            #expect(devices.first { $0.token == s.device.token }?.active == false)
        }
    }
}
