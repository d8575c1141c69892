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

    /// A message page: `title` and `message` are catalog keys, `detail` a text shown as it is.
    func message(
        _ title: String, _ message: String, detail: String? = nil, back: String? = nil, locale: PageLocale, status: HTTPResponse.Status
    ) -> Response {
        let language = locale.language
        let text = detail ?? pages.text(message, language)
        return pages.page("message", MessagePage(title: pages.text(title, language), message: text, back: back), locale: locale, status: status)
            .response
    }

    /// The payer's language: `?lang=`, the switcher's cookie, the browser's, then the sandbox's
    /// default (Russian, as Kaspi's pages).
    func locale(_ request: Request) -> PageLocale {
        PageLocale(request: request, fallback: PageLanguage(tag: configuration.defaultLanguage) ?? .ru)
    }

    /// The payer's side: `GET /pay/{token}` shows the payment page (no JavaScript needed),
    /// `POST /pay/{token}` with `action=pay|decline|cancel` settles the order and sends the
    /// browser to the order's returnUrl or failUrl. 41-digit tokens are the Kaspi QR API's
    /// purchases, and `/pay/invoice/{id}` its remote invoices.
    func addPaymentPages(to router: Router<BasicRequestContext>) {
        router.get("/pay/invoice/:id") { request, context in
            await self.qrInvoicePage(get: try context.parameters.require("id"), locale: self.locale(request))
        }
        router.post("/pay/invoice/:id") { request, context in
            let form = await request.decodeForm(as: ActionForm.self, upTo: 4096)
            return await self.qrInvoicePage(
                post: try context.parameters.require("id"), action: form?.action, locale: PageLocale(self.locale(request).language))
        }
        router.get("/pay/:token") { request, context in
            let token = try context.parameters.require("token")
            let locale = self.locale(request)
            if let page = await self.qrPage(get: token, locale: locale) { return page }
            guard let order = await self.state.order(paymentToken: token) else {
                return self.message("payment_not_found_title", "payment_not_found", locale: locale, status: .notFound)
            }
            let merchant = await self.state.tradePoint(id: order.tradePointID)?.displayName ?? order.tradePointID
            return self.paymentPage(order, merchant: merchant, url: "/pay/\(token)", locale: locale)
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
            // A form's answer: in the language its page was, without a switcher.
            let locale = PageLocale(self.locale(request).language)
            if let response = await self.qrPage(post: token, action: action, locale: locale) { return response }
            guard let order = await self.state.order(paymentToken: token) else {
                return self.message("payment_not_found_title", "payment_not_found", locale: locale, status: .notFound)
            }
            let target: PaymentStatus
            switch action {
            case "pay": target = .approved
            case "decline": target = .declined
            case "cancel": target = .cancelled
            default: return self.message("unknown_choice_title", "unknown_choice", locale: locale, status: .badRequest)
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

    func paymentPage(_ order: SandboxOrder, merchant: String, url: String, locale: PageLocale) -> Response {
        struct Page {
            var title, merchant, amount, orderID, url: String
            var description: String?
            var pending: Bool
            var qrExpires: String?
            var settled: Bool
            var statusClass, statusWords: String
            var next: String?
        }
        let language = locale.language
        let amount = LocalFormat.tenge(order.amount, language)
        let words: String
        switch order.status {
        case .approved: words = pages.text("status_paid", language)
        case .declined: words = pages.text("status_declined", language)
        case .cancelled: words = pages.text("status_cancelled", language)
        case .pending, .unknown: words = pages.text("status_pending", language)
        }
        let page = Page(
            title: pages.text("pay_title", language, ["amount": amount, "merchant": merchant]), merchant: merchant, amount: amount,
            orderID: order.orderID, url: url, description: order.description, pending: order.status == .pending,
            qrExpires: order.qrExpiresAt.map { LocalFormat.time($0, language) }, settled: order.status != .pending,
            statusClass: order.status.rawValue.lowercased(), statusWords: words, next: order.status == .approved ? order.returnURL : order.failURL)
        return pages.page("payment", page, locale: locale).response
    }
}
