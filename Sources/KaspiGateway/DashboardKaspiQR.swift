import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import NIOCore

extension Gateway {
    /// The Kaspi QR API provider, when the gateway runs on that profile.
    public var qrProvider: KaspiQRProvider? {
        ((provider as? MeasuredProvider)?.base ?? provider) as? KaspiQRProvider
    }

    /// The dashboard's pages for the Kaspi QR API: the profile with its trade points and
    /// devices, r2's return QRs, r3's remote invoices, and r1's refunds made in the app.
    func addQRDashboard(to router: Router<GatewayRequestContext>) {
        router.get("/admin/kaspi") { request, _ in
            try await self.adminView(request) { session in try await self.kaspiPage(session) }
        }
        router.post("/admin/orders/:id/manual-refund") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { form, _ in
                guard let amount = Int(form["amount"] ?? ""), amount > 0 else {
                    return Self.redirect("/admin/orders/\(id)", message: "Enter the amount refunded in the Kaspi Pay app, in whole tenge.")
                }
                let note = (form["note"] ?? "").isEmpty ? nil : form["note"]
                do {
                    let order = try await self.recordManualRefund(orderId: id, amount: amount, note: note)
                    return Self.redirect("/admin/orders/\(id)", message: "Recorded; \(order.refundedAmount) of \(order.amount) refunded in all.")
                } catch {
                    return Self.redirect("/admin/orders/\(id)", message: "Not recorded: \(Self.errorMessage(error))")
                }
            }
        }
        router.post("/admin/orders/:id/refresh") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { _, _ in
                do {
                    let order = try await self.refreshOnRequest(orderId: id)
                    return Self.redirect("/admin/orders/\(id)", message: "Kaspi was asked: the order is \(order.state.rawValue).")
                } catch {
                    return Self.redirect("/admin/orders/\(id)", message: Self.errorMessage(error))
                }
            }
        }
        router.post("/admin/orders/:id/cancel") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { _, _ in
                do {
                    let order = try await self.cancelRemoteInvoice(orderId: id)
                    return Self.redirect("/admin/orders/\(id)", message: "The invoice is \(order.state.rawValue).")
                } catch {
                    return Self.redirect("/admin/orders/\(id)", message: "Not cancelled: \(Self.errorMessage(error))")
                }
            }
        }
        router.get("/admin/invoices") { request, _ in
            try await self.adminView(request) { session in
                self.invoicePage(session, message: request.uri.queryParameters.get("message"))
            }
        }
        router.post("/admin/invoices") { request, _ in
            try await self.adminForm(request) { form, session in
                guard let amount = Int(form["amount"] ?? ""), amount > 0 else { return Self.redirect("/admin/invoices", message: "Enter the amount in whole tenge.") }
                let phone = form["phone"] ?? ""
                let comment = (form["comment"] ?? "").isEmpty ? nil : form["comment"]
                if form["confirmed"] != "yes" {
                    // The payer's name first, so that the right person is billed.
                    do {
                        let name = try await self.remoteClientName(phoneNumber: phone)
                        return Self.html(.ok, self.adminPage("Send the invoice?", signedIn: session, """
                            <p>Bill <strong id="client-name">\(Self.escape(name))</strong> (\(Self.escape(phone))) \(Self.escape(Amount.formatted(tenge: amount)))?</p>
                            <form method="post" action="/admin/invoices"><input type="hidden" name="csrf" value="\(session.csrf)">
                            <input type="hidden" name="amount" value="\(amount)"><input type="hidden" name="phone" value="\(Self.escape(phone))">
                            <input type="hidden" name="comment" value="\(Self.escape(comment ?? ""))"><input type="hidden" name="confirmed" value="yes">
                            <button type="submit" id="send-invoice">Send the invoice</button></form>
                            """))
                    } catch {
                        return Self.redirect("/admin/invoices", message: "No invoice: \(Self.errorMessage(error))")
                    }
                }
                do {
                    let order = try await self.createRemoteInvoice(CheckoutRequest(amount: amount, description: comment), phoneNumber: phone, comment: comment)
                    return Self.redirect("/admin/orders/\(order.id)", message: "Invoice sent; it can be paid for 24 hours. Check it with the button below, never on a timer.")
                } catch {
                    return Self.redirect("/admin/invoices", message: "No invoice: \(Self.errorMessage(error))")
                }
            }
        }
        router.get("/admin/returns") { request, _ in
            try await self.adminView(request) { session in
                self.adminPage("Refunds with the customer", signedIn: session, """
                    <p>Kaspi's r2 scheme refunds with the customer present: create a return QR, the customer scans it in their Kaspi app, then pick the purchase to refund.</p>
                    <form method="post" action="/admin/returns"><input type="hidden" name="csrf" value="\(session.csrf)"><button type="submit" id="create-return">Create a return QR</button></form>
                    """, message: request.uri.queryParameters.get("message"))
            }
        }
        router.post("/admin/returns") { request, _ in
            try await self.adminForm(request) { _, _ in
                do {
                    let created = try await self.createCustomerReturn()
                    let image = Data(created.png).base64EncodedString()
                    self.returnQRs.withLock { images in
                        // A return QR is scanned within minutes: keep the newest few only.
                        images.order.append(created.id)
                        images.byId[created.id] = image
                        while images.order.count > 50 { images.byId[images.order.removeFirst()] = nil }
                    }
                    return Response(status: .seeOther, headers: [.location: "/admin/returns/\(created.id)"])
                } catch {
                    return Self.redirect("/admin/returns", message: "No return QR: \(Self.errorMessage(error))")
                }
            }
        }
        router.get("/admin/returns/:id") { request, context in
            try await self.adminView(request) { session in
                try await self.returnPage(context.parameters.get("id") ?? "", session, message: request.uri.queryParameters.get("message"))
            }
        }
        router.post("/admin/returns/:id/refund") { request, context in
            let returnId = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { form, _ in
                guard let orderId = form["order"], let amount = Int(form["amount"] ?? ""), amount > 0 else {
                    return Self.redirect("/admin/returns/\(returnId)", message: "Enter the amount to refund in whole tenge.")
                }
                do {
                    let order = try await self.refund(orderId: orderId, amount: amount, customerReturnId: returnId)
                    return Self.redirect("/admin/orders/\(order.id)", message: "Refunded with the customer; \(order.refundedAmount) of \(order.amount) refunded in all.")
                } catch {
                    return Self.redirect("/admin/returns/\(returnId)", message: "Refund refused: \(Self.errorMessage(error))")
                }
            }
        }
    }

    static func errorMessage(_ error: any Error) -> String {
        (error as? GatewayAPIError)?.message ?? "try again later."
    }

    func kaspiPage(_ session: AdminSession) async throws -> String {
        guard let qr = qrProvider else {
            return adminPage("Kaspi", signedIn: session, "<p>This gateway speaks the integration guide's API (profile guide): no devices to manage.</p>")
        }
        var body = "<table id=\"kaspi-profile\"><tr><th>Profile</th><td>Kaspi QR API, scheme \(qr.scheme.rawValue)</td></tr>"
        let refunds: String
        switch qr.refundMethod {
        case .direct: refunds = "through the API, without the customer"
        case .customerPresent: refunds = "with the customer present (<a href=\"/admin/returns\">return QR</a>)"
        case .manual: refunds = "in the Kaspi Pay app, then recorded on the order's page"
        }
        body += "<tr><th>Refunds</th><td>\(refunds)</td></tr><tr><th>Remote invoices</th><td>\(qr.supportsRemoteInvoices ? "<a href=\"/admin/invoices\">yes</a>" : "no (r3 only)")</td></tr></table>"
        let devices = try await store.devices(provider: KaspiQRProvider.providerName)
        var points = ""
        do {
            for point in try await qr.tradePoints() {
                let here = devices.filter { $0.tradePointId == point.id }.map(\.id).joined(separator: ", ")
                points += "<tr><td>\(point.id)</td><td>\(Self.escape(point.name))</td><td>\(Self.escape(here.isEmpty ? "—" : here))</td></tr>"
            }
        } catch {
            points = "<tr><td colspan=\"3\" class=\"error\">Kaspi could not be asked: \(Self.escape(error.message))</td></tr>"
        }
        body += "<h2>Trade points</h2><table id=\"trade-points\"><tr><th>Id</th><th>Name</th><th>Devices</th></tr>\(points)</table>"
        var rows = ""
        for d in devices {
            rows += "<tr><td>\(d.id)</td><td>\(Self.escape(d.deviceId))</td><td>\(d.tradePointId)</td><td>\(Self.escape(d.organizationBin ?? ""))</td><td>\(Self.escape(d.redactedToken))</td><td>\(d.isDefault ? "default" : "")\(d.referencePrefix.map { " prefix \(Self.escape($0))" } ?? "")</td></tr>"
        }
        body += """
            <h2>Devices</h2><table id="devices"><tr><th>Id</th><th>Device id</th><th>Trade point</th><th>BIN</th><th>Token</th><th></th></tr>\(rows)</table>
            <p class="muted">Register, rotate or delete devices with <code>kaspi gateway device register --trade-point N</code>, <code>rotate</code>, <code>delete</code>: tokens never pass through a browser.</p>
            """
        return adminPage("Kaspi", signedIn: session, body)
    }

    func invoicePage(_ session: AdminSession, message: String?) -> String {
        guard qrProvider?.supportsRemoteInvoices == true else {
            return adminPage("Remote invoices", signedIn: session, "<p>Remote invoices exist on the Kaspi QR API's r3 scheme only.</p>", message: message)
        }
        return adminPage("Remote invoices", signedIn: session, """
            <p>Bill a phone number: the payer pays in their Kaspi app within 24 hours. The payer's name is shown before the invoice is sent.</p>
            <form method="post" action="/admin/invoices" class="card"><input type="hidden" name="csrf" value="\(session.csrf)">
            <label>Phone <input name="phone" id="invoice-phone" placeholder="87071234567" required></label>
            <label>Amount (tenge) <input name="amount" id="invoice-amount" inputmode="numeric" required></label>
            <label>Comment <input name="comment" id="invoice-comment" maxlength="256"></label>
            <button type="submit" id="check-payer">Show the payer's name</button></form>
            """, message: message)
    }

    func returnPage(_ id: String, _ session: AdminSession, message: String?) async throws -> String {
        let status: ProviderCustomerReturnStatus
        let orders: [String: GatewayOrder]
        do { (status, orders) = try await customerReturn(id: id) } catch {
            return adminPage("Return \(id)", signedIn: session, "<p class=\"error\">\(Self.escape(error.message))</p>", message: message)
        }
        var body = "<p>Status: <strong id=\"return-status\">\(Self.escape(status.status))</strong></p>"
        if !status.identified {
            if let png = returnQRs.withLock({ $0.byId[id] }) {
                body += "<img class=\"qr\" src=\"data:image/png;base64,\(png)\" alt=\"Return QR\"><p>The customer scans this in their Kaspi app; this page checks by itself.</p>"
            }
            return adminPage("Return \(id)", signedIn: session, body, message: message).replacingOccurrences(
                of: "<title>", with: status.status == "Error" ? "<title>" : "<meta http-equiv=\"refresh\" content=\"3\"><title>")
        }
        var rows = ""
        for p in status.purchases {
            let order = orders[p.providerPaymentId]
            let refundable = order.map { $0.state == .paid ? $0.amount - $0.refundedAmount : 0 } ?? 0
            let form = order.map { o in
                refundable > 0 ? """
                    <form method="post" action="/admin/returns/\(Self.escape(id))/refund"><input type="hidden" name="csrf" value="\(session.csrf)">
                    <input type="hidden" name="order" value="\(o.id)"><input name="amount" value="\(refundable)" size="7" inputmode="numeric">
                    <button type="submit" class="refund-with-customer">Refund</button></form>
                    """ : "nothing left to refund"
            } ?? "not a purchase through this gateway"
            rows += "<tr><td>\(Self.escape(p.providerPaymentId))</td><td>\(p.amount)</td><td>\(p.at.map { Self.iso($0) } ?? "")</td><td>\(order.map { "<a href=\"/admin/orders/\($0.id)\">\($0.id)</a>" } ?? "—")</td><td>\(form)</td></tr>"
        }
        body += "<h2>The customer's purchases</h2><table id=\"return-purchases\"><tr><th>Kaspi payment</th><th>Amount</th><th>Date</th><th>Order</th><th></th></tr>\(rows)</table>"
        return adminPage("Return \(id)", signedIn: session, body, message: message)
    }

    /// The order page's part for the Kaspi QR API: Kaspi's id, the running deadline, and the
    /// actions each scheme offers.
    func qrOrderSection(_ order: GatewayOrder, _ session: AdminSession) -> String {
        guard let qr = qrProvider, order.provider == KaspiQRProvider.providerName else { return "" }
        var rows = "<tr><th>Kaspi payment id</th><td id=\"kaspi-payment-id\">\(Self.escape(order.providerPaymentId ?? "— (Kaspi's answer was lost)"))</td></tr>"
        if let plan = qr.pollPlan(for: order, now: now()), order.state == .pending {
            rows += "<tr><th>Deadline</th><td id=\"deadline\">\(plan.phase) phase until \(Self.iso(plan.deadline))</td></tr>"
        }
        if let next = order.nextPollAt { rows += "<tr><th>Next poll</th><td>\(Self.iso(next))</td></tr>" }
        var actions = ""
        if order.kind == .remote, order.state == .pending || order.state == .created {
            actions += """
                <form method="post" action="/admin/orders/\(order.id)/refresh" class="inline-form"><input type="hidden" name="csrf" value="\(session.csrf)"><button type="submit" id="refresh">Check the payment now</button></form>
                <form method="post" action="/admin/orders/\(order.id)/cancel" class="inline-form"><input type="hidden" name="csrf" value="\(session.csrf)"><button type="submit" id="cancel-invoice">Cancel the invoice</button></form>
                <p class="muted">Kaspi forbids reading remote invoices on a timer: they are read when you press the button, and once when their 24 hours end.</p>
                """
        }
        if order.state == .paid, order.refundedAmount < order.amount {
            switch qr.refundMethod {
            case .manual:
                actions += """
                    <h2>Record a refund made in the Kaspi Pay app</h2><p>Kaspi's r1 scheme has no refunds through the API.</p>
                    <form method="post" action="/admin/orders/\(order.id)/manual-refund"><input type="hidden" name="csrf" value="\(session.csrf)">
                    <label>Amount (tenge) <input name="amount" id="manual-refund-amount" inputmode="numeric"></label>
                    <label>Note <input name="note" id="manual-refund-note" maxlength="256"></label>
                    <button type="submit" id="manual-refund">Record it</button></form>
                    """
            case .customerPresent:
                actions += "<p>Refunds on r2 need the customer: <a href=\"/admin/returns\">create a return QR</a> for them to scan.</p>"
            case .direct: break
            }
        }
        return "<table id=\"kaspi-order\">\(rows)</table>\(actions)"
    }
}
