import Foundation
import Hummingbird
import KaspiPay
import KaspiWeb
import NIOCore
import QRCodeEncoder

extension Sandbox {
    /// The payer's choice on a payment page.
    struct ActionForm: Decodable {
        var action: String?
    }

    struct MessagePage {
        var title: String
        var message: String
        var back: String?
    }

    func message(_ title: String, _ message: String, back: String? = nil, status: HTTPResponse.Status) -> Response {
        pages.page("message", MessagePage(title: title, message: message, back: back), status: status).response
    }

    /// The payer's side: `GET /pay/{token}` shows the payment page (no JavaScript needed),
    /// `POST /pay/{token}` with `action=pay|decline|cancel` settles the order and sends the
    /// browser to the order's returnUrl or failUrl. 41-digit tokens are the Kaspi QR API's
    /// purchases, and `/pay/invoice/{id}` its remote invoices.
    func addPaymentPages(to router: Router<BasicRequestContext>) {
        router.get("/pay/invoice/:id") { _, context in await self.qrInvoicePage(get: try context.parameters.require("id")) }
        router.post("/pay/invoice/:id") { request, context in
            let form = await request.decodeForm(as: ActionForm.self, upTo: 4096)
            return await self.qrInvoicePage(post: try context.parameters.require("id"), action: form?.action)
        }
        router.get("/pay/:token") { _, context in
            let token = try context.parameters.require("token")
            if let page = await self.qrPage(get: token) { return page }
            guard let order = await self.state.order(paymentToken: token) else {
                return self.message("Payment not found", "This payment link is unknown or was reset.", status: .notFound)
            }
            let merchant = await self.state.tradePoint(id: order.tradePointID)?.displayName ?? order.tradePointID
            return self.paymentPage(order, merchant: merchant, url: "/pay/\(token)")
        }
        router.get("/pay/:token/qr.svg") { _, context in
            let token = try context.parameters.require("token")
            if let svg = await self.qrPageSVG(token) { return svg }
            guard await self.state.order(paymentToken: token) != nil, let qr = try? QRCode(encoding: self.paymentURL(token: token)) else {
                return Response(status: .notFound)
            }
            return Self.svg(qr)
        }
        router.post("/pay/:token") { request, context in
            let token = try context.parameters.require("token")
            let action = await request.decodeForm(as: ActionForm.self, upTo: 4096)?.action
            if let response = await self.qrPage(post: token, action: action) { return response }
            guard let order = await self.state.order(paymentToken: token) else {
                return self.message("Payment not found", "This payment link is unknown or was reset.", status: .notFound)
            }
            let target: PaymentStatus
            switch action {
            case "pay": target = .approved
            case "decline": target = .declined
            case "cancel": target = .cancelled
            default: return self.message("Unknown choice", "Choose Pay, Decline or Cancel.", status: .badRequest)
            }
            let settled = await self.state.settle(tradePoint: order.tradePointID, orderID: order.orderID, to: target, via: "payment-page") ?? order
            try await self.state.waitForWrites()
            let destination: String?
            switch settled.status {
            case .approved: destination = settled.returnURL
            case .declined, .cancelled: destination = settled.failURL
            case .pending, .unknown: destination = nil
            }
            return Response(status: .seeOther, headers: [.location: destination ?? "/pay/\(token)"])
        }
    }

    static func svg(_ qr: QRCode) -> Response {
        Response(
            status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: qr.svg())))
    }

    func paymentPage(_ order: SandboxOrder, merchant: String, url: String) -> Response {
        struct Page {
            var title, merchant, amount, orderID, url: String
            var description: String?
            var pending: Bool
            var qrExpires: String?
            var settled: Bool
            var statusClass, statusWords: String
            var next: String?
        }
        let amount = Amount.formatted(tenge: order.amount)
        let words: String
        switch order.status {
        case .approved: words = "Paid"
        case .declined: words = "Declined"
        case .cancelled: words = "Cancelled"
        case .pending, .unknown: words = order.status.rawValue
        }
        let page = Page(
            title: "Pay \(amount) to \(merchant)", merchant: merchant, amount: amount, orderID: order.orderID, url: url,
            description: order.description,
            pending: order.status == .pending, qrExpires: order.qrExpiresAt.map { ISO8601DateFormatter().string(from: $0) },
            settled: order.status != .pending, statusClass: order.status.rawValue.lowercased(), statusWords: words,
            next: order.status == .approved ? order.returnURL : order.failURL)
        return pages.page("payment", page).response
    }
}
