import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiWeb

/// The payer's pages: where Kaspi sends them back (`/pay/return/{id}`, `/pay/fail/{id}`), and
/// payment links (`/l/{id}`).
struct PublicPagesController {
    let gateway: Gateway
    let pages: PageLibrary

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/pay/return/:id") { request, context in
            if let refusal = limited(context, locale(request)) { return refusal }
            return await result(orderID: try context.parameters.require("id"), request)
        }
        router.get("/pay/fail/:id") { request, context in
            if let refusal = limited(context, locale(request)) { return refusal }
            return await result(orderID: try context.parameters.require("id"), request)
        }
        router.get("/l/:id") { request, context in
            let locale = locale(request)
            if let refusal = limited(context, locale) { return refusal }
            return await link(id: try context.parameters.require("id"), locale)
        }
        router.post("/l/:id/pay") { request, context in
            // A form's answer: in the language its page was, without a switcher.
            let locale = PageLocale(locale(request).language)
            if let refusal = limited(context, locale) { return refusal }
            return await payLink(id: try context.parameters.require("id"), locale)
        }
    }

    /// The payer's language: `?lang=`, the switcher's cookie, the browser's, the gateway's default.
    func locale(_ request: Request, order: GatewayOrder? = nil) -> PageLocale {
        PageLocale(
            request: request, preferred: order?.locale.flatMap { PageLanguage(tag: $0) },
            fallback: PageLanguage(tag: gateway.configuration.defaultLanguage) ?? .ru)
    }

    /// The answer to a client over its budget of page views (120 a minute an address), or nil.
    func limited(_ context: GatewayRequestContext, _ locale: PageLocale) -> Response? {
        guard let wait = gateway.clients.clientThrottle.pageView(address: context.clientAddress, now: gateway.now()) else { return nil }
        let language = locale.language
        var response = page(
            "message",
            MessagePage(
                title: pages.text("too_many_requests_title", language),
                message: pages.text("too_many_requests_message", language, ["seconds": String(wait)])),
            locale, status: .tooManyRequests)
        response.headers[.retryAfter] = String(wait)
        return response
    }

    struct ResultPage {
        var title: String
        var refresh: Int?
        var amount: String
        var reference: String
        var paid = false
        var pending = false
        var failed = false
    }

    struct MessagePage {
        var title: String
        var message: String
    }

    /// Paid, pending (refreshing itself) or failed; a mobile order is sent back to its app
    /// in the guide's format (`yourapp://payment?status=…&orderId=…`).
    func result(orderID: String, _ request: Request) async -> Response {
        guard let (order, outcome) = await gateway.paymentResult(orderID: orderID) else {
            let locale = locale(request)
            let language = locale.language
            return page(
                "message", MessagePage(title: pages.text("payment_not_found_title", language), message: pages.text("payment_not_found", language)),
                locale, status: .notFound)
        }
        if let mobile = order.mobileReturnURL, var components = URLComponents(string: mobile) {
            var items = components.queryItems ?? []
            items.append(URLQueryItem(name: "status", value: outcome.rawValue))
            items.append(URLQueryItem(name: "orderId", value: order.merchantReference ?? order.id))
            // The gateway's own id too, so that KaspiCheckout knows its order by either.
            items.append(URLQueryItem(name: "gatewayOrderId", value: order.id))
            components.queryItems = items
            if let url = components.string { return Response(status: .seeOther, headers: [.location: url]) }
        }
        // The language the merchant's checkout said the payer reads, unless the payer chose.
        let locale = locale(request, order: order)
        let language = locale.language
        var view = ResultPage(title: "", amount: LocalFormat.tenge(order.amount, language), reference: order.merchantReference ?? order.id)
        switch outcome {
        case .success: (view.title, view.paid) = (pages.text("result_paid_title", language), true)
        case .pending: (view.title, view.pending, view.refresh) = (pages.text("result_pending_title", language), true, 3)
        case .failed: (view.title, view.failed) = (pages.text("result_failed_title", language), true)
        }
        return page("result", view, locale)
    }

    struct LinkPage {
        var title: String
        var id: String
        var amount: String
        var description: String?
        var paid: Bool
        var expired: Bool
        var payable: Bool
    }

    func link(id: String, _ locale: PageLocale) async -> Response {
        let language = locale.language
        guard let view = try? await gateway.paymentLink(id: id) else {
            return page(
                "message", MessagePage(title: pages.text("link_not_found_title", language), message: pages.text("link_not_found", language)),
                locale, status: .notFound)
        }
        let amount = LocalFormat.tenge(view.link.amount, language)
        return page(
            "link",
            LinkPage(
                title: pages.text("link_title", language, ["amount": amount]), id: view.link.id, amount: amount,
                description: view.link.description, paid: view.status == .paid, expired: view.status == .expired,
                payable: view.status == .open || view.status == .processing),
            locale)
    }

    func payLink(id: String, _ locale: PageLocale) async -> Response {
        let language = locale.language
        do {
            let target = try await gateway.pay(linkID: id, publicBase: gateway.publicBase)
            return Response(status: .seeOther, headers: [.location: target])
        } catch let error as GatewayError {
            // The payer reads the reason in their language; the code stays for support.
            let key = ["LINK_EXPIRED": "link_expired", "LINK_NOT_FOUND": "link_not_found"][error.code] ?? "try_again"
            return page(
                "message", MessagePage(title: pages.text("cannot_pay_title", language), message: pages.text(key, language)), locale,
                status: error.status)
        } catch {
            return page(
                "message", MessagePage(title: pages.text("cannot_pay_title", language), message: pages.text("try_again", language)), locale,
                status: .serviceUnavailable)
        }
    }

    private func page(_ template: String, _ context: Any, _ locale: PageLocale, status: HTTPResponse.Status = .ok) -> Response {
        pages.page(template, context, locale: locale, status: status).response
    }
}
