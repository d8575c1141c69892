import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiWeb
import Synchronization

extension Gateway {
    /// The Kaspi QR API provider, when the gateway runs on that profile.
    public var qrProvider: KaspiQRProvider? {
        ((provider as? MeasuredProvider)?.base ?? provider) as? KaspiQRProvider
    }
}

extension DashboardController {
    /// The dashboard's pages for the Kaspi QR API: the profile with its trade points and
    /// devices, r2's return QRs, r3's remote invoices, and r1's refunds made in the app.
    func addKaspiQRRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/admin/kaspi") { request, _ in try await view(request) { session in try await kaspi(session) } }
        router.post("/admin/orders/:id/manual-refund") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { form, _, session in
                let language = session.language
                guard let amount = Int(form.amount ?? ""), amount > 0 else {
                    return redirect("/admin/orders/\(id)", text("admin_enter_manual_refund", language))
                }
                do {
                    let order = try await gateway.recordManualRefund(orderID: id, amount: amount, note: Form.text(form.note))
                    return redirect("/admin/orders/\(id)", text("admin_recorded", language, refundedValues(order, language)))
                } catch {
                    return redirect("/admin/orders/\(id)", text("admin_not_recorded", language, ["reason": reason(error, language)]))
                }
            }
        }
        router.post("/admin/orders/:id/refresh") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { _, _, session in
                let language = session.language
                do {
                    let order = try await gateway.refreshOnRequest(orderID: id)
                    return redirect("/admin/orders/\(id)", text("admin_kaspi_asked", language, ["state": text(Self.stateKey(order.state), language)]))
                } catch {
                    return redirect("/admin/orders/\(id)", reason(error, language))
                }
            }
        }
        router.post("/admin/orders/:id/cancel") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { _, _, session in
                let language = session.language
                do {
                    let order = try await gateway.cancelRemoteInvoice(orderID: id)
                    return redirect("/admin/orders/\(id)", text("admin_invoice_is", language, ["state": text(Self.stateKey(order.state), language)]))
                } catch {
                    return redirect("/admin/orders/\(id)", text("admin_not_cancelled", language, ["reason": reason(error, language)]))
                }
            }
        }
        router.get("/admin/invoices") { request, _ in
            try await view(request) { session in
                let language = session.language
                guard gateway.qrProvider?.supportsRemoteInvoices == true else {
                    return message(
                        text("admin_remote_invoices", language), Message(text: text("admin_invoices_r3_only", language)), session: session,
                        flash: flash(request))
                }
                return render(
                    "admin-invoices", Page(title: text("admin_remote_invoices", language), flash: flash(request), session: session, content: true))
            }
        }
        router.post("/admin/invoices") { request, _ in
            try await form(request) { form, _, session in
                let language = session.language
                guard let amount = Int(form.amount ?? ""), amount > 0 else {
                    return redirect("/admin/invoices", text("admin_enter_amount", language))
                }
                let phone = form.phone ?? ""
                let comment = Form.text(form.comment)
                if form.confirmed != "yes" {
                    // The payer's name first, so that the right person is billed.
                    struct Confirm {
                        var name, phone, amountText, comment: String
                        var amount: Int
                    }
                    do {
                        let name = try await gateway.remoteClientName(phoneNumber: phone)
                        let content = Confirm(
                            name: name, phone: phone, amountText: LocalFormat.tenge(amount, language), comment: comment ?? "", amount: amount)
                        return render(
                            "admin-invoice-confirm", Page(title: text("admin_send_invoice_title", language), session: session, content: content))
                    } catch {
                        return redirect("/admin/invoices", text("admin_no_invoice", language, ["reason": reason(error, language)]))
                    }
                }
                do {
                    let order = try await gateway.createRemoteInvoice(
                        CheckoutRequest(amount: amount, description: comment), phoneNumber: phone, comment: comment)
                    return redirect("/admin/orders/\(order.id)", text("admin_invoice_sent", language))
                } catch {
                    return redirect("/admin/invoices", text("admin_no_invoice", language, ["reason": reason(error, language)]))
                }
            }
        }
        router.get("/admin/returns") { request, _ in
            try await view(request) { session in
                render(
                    "admin-returns",
                    Page(title: text("admin_customer_refunds", session.language), flash: flash(request), session: session, content: true))
            }
        }
        router.post("/admin/returns") { request, _ in
            try await form(request) { _, _, session in
                do {
                    let created = try await gateway.createCustomerReturn()
                    returnQRs.remember(created)
                    return Response(status: .seeOther, headers: [.location: "/admin/returns/\(created.id)"])
                } catch {
                    return redirect("/admin/returns", text("admin_no_return_qr", session.language, ["reason": reason(error, session.language)]))
                }
            }
        }
        router.get("/admin/returns/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await view(request) { session in await customerReturn(id, session, flash: flash(request)) }
        }
        router.post("/admin/returns/:id/refund") { request, context in
            let returnID = try context.parameters.require("id")
            return try await form(request) { form, _, session in
                let language = session.language
                guard let orderID = form.order, let amount = Int(form.amount ?? ""), amount > 0 else {
                    return redirect("/admin/returns/\(returnID)", text("admin_enter_whole_tenge", language))
                }
                do {
                    let order = try await gateway.refund(orderID: orderID, amount: amount, customerReturnID: returnID)
                    return redirect("/admin/orders/\(order.id)", text("admin_refunded_with_customer", language, refundedValues(order, language)))
                } catch {
                    return redirect("/admin/returns/\(returnID)", text("admin_refund_refused", language, ["reason": reason(error, language)]))
                }
            }
        }
    }

    func kaspi(_ session: Session) async throws -> Response {
        struct Point {
            var id: Int64
            var name, devices: String
        }
        struct Device {
            var id, deviceID: String
            var tradePoint: Int64
            var bin, token, note: String
        }
        struct Kaspi {
            var scheme: String
            var directRefunds, customerRefunds, manualRefunds, invoices: Bool
            var tradePoints: [Point]
            var tradePointError: String?
            var devices: [Device]
        }
        let language = session.language
        guard let qr = gateway.qrProvider else {
            return message("Kaspi", Message(text: text("admin_guide_profile_no_devices", language)), session: session)
        }
        let devices = try await gateway.store.devices(provider: KaspiQRProvider.providerName)
        var points: [Point] = []
        var failure: String? = nil
        do {
            for point in try await qr.tradePoints() {
                let here = devices.filter { $0.tradePointID == point.id }.map(\.id).joined(separator: ", ")
                points.append(Point(id: point.id, name: point.name, devices: here.isEmpty ? "—" : here))
            }
        } catch {
            failure = error.message
        }
        let content = Kaspi(
            scheme: qr.scheme.rawValue, directRefunds: qr.refundMethod == .direct, customerRefunds: qr.refundMethod == .customerPresent,
            manualRefunds: qr.refundMethod == .manual, invoices: qr.supportsRemoteInvoices, tradePoints: points, tradePointError: failure,
            devices: devices.map { d in
                Device(
                    id: d.id, deviceID: d.deviceID, tradePoint: d.tradePointID, bin: d.organizationBin ?? "", token: d.redactedToken,
                    note: [
                        d.isDefault ? text("admin_device_default", language) : nil,
                        d.referencePrefix.map { text("admin_device_prefix", language, ["prefix": $0]) },
                    ]
                    .compactMap { $0 }.joined(separator: ", "))
            })
        return render("admin-kaspi", Page(title: "Kaspi", session: session, content: content))
    }

    func customerReturn(_ id: String, _ session: Session, flash: String?) async -> Response {
        struct Purchase {
            var paymentID, amount, date, note, returnID: String
            var orderID: String?
            var refundable: Int?
        }
        struct Return {
            var status: String
            var qrCode: String?
            var identified: Bool
            var purchases: [Purchase]
        }
        let status: ProviderCustomerReturnStatus
        let orders: [String: GatewayOrder]
        let language = session.language
        do { (status, orders) = try await gateway.customerReturn(id: id) } catch {
            return message(
                text("admin_return_title", language, ["id": id]), Message(text: reason(error, language), error: true), session: session, flash: flash)
        }
        let purchases = status.purchases.map { p in
            let order = orders[p.providerPaymentID]
            let refundable = order.map { $0.state == .paid ? $0.amount - $0.refundedAmount : 0 } ?? 0
            return Purchase(
                paymentID: p.providerPaymentID,
                amount: Int(exactly: NSDecimalNumber(decimal: p.amount).doubleValue).map { LocalFormat.tenge($0, language) } ?? "\(p.amount) ₸",
                date: p.at.map { Self.time($0, language) } ?? "",
                note: text(order == nil ? "admin_not_our_purchase" : "admin_nothing_to_refund", language), returnID: id, orderID: order?.id,
                refundable: order != nil && refundable > 0 ? refundable : nil)
        }
        let content = Return(
            status: status.status, qrCode: status.identified ? nil : returnQRs.image(id: id), identified: status.identified, purchases: purchases)
        // Until the customer scans, the page checks by itself.
        let refresh = !status.identified && status.status != "Error" ? 3 : nil
        return render(
            "admin-return",
            Page(title: text("admin_return_title", language, ["id": id]), flash: flash, refresh: refresh, session: session, content: content))
    }
}

/// Return QRs made from the dashboard, to show while the customer scans: the newest 50 images
/// (base64 PNG), in memory (a return QR is scanned within minutes).
final class ReturnQRCache: Sendable {
    private let images = Mutex<(order: [String], byID: [String: String])>(([], [:]))

    /// Keeps a return QR's image.
    func remember(_ created: ProviderCustomerReturn) {
        let image = Data(created.png).base64EncodedString()
        images.withLock { images in
            images.order.append(created.id)
            images.byID[created.id] = image
            while images.order.count > 50 { images.byID[images.order.removeFirst()] = nil }
        }
    }

    /// A return QR's image, base64 PNG, if this instance made it recently.
    func image(id: String) -> String? { images.withLock { $0.byID[id] } }
}
