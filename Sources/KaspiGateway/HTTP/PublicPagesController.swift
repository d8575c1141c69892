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
        router.get("/pay/return/:id") { _, context in
            if let refusal = limited(context) { return refusal }
            return await result(orderID: try context.parameters.require("id"))
        }
        router.get("/pay/fail/:id") { _, context in
            if let refusal = limited(context) { return refusal }
            return await result(orderID: try context.parameters.require("id"))
        }
        router.get("/l/:id") { _, context in
            if let refusal = limited(context) { return refusal }
            return await link(id: try context.parameters.require("id"))
        }
        router.post("/l/:id/pay") { _, context in
            if let refusal = limited(context) { return refusal }
            return await payLink(id: try context.parameters.require("id"))
        }
    }

    /// The answer to a client over its budget of page views (120 a minute an address), or nil.
    func limited(_ context: GatewayRequestContext) -> Response? {
        guard let wait = gateway.clients.clientThrottle.pageView(address: context.clientAddress, now: gateway.now()) else { return nil }
        var response = page(
            "message", MessagePage(title: "Too many requests", message: "Please wait \(wait) seconds, then reload the page."),
            status: .tooManyRequests)
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
    func result(orderID: String) async -> Response {
        guard let (order, outcome) = await gateway.paymentResult(orderID: orderID) else {
            return page("message", MessagePage(title: "Payment not found", message: "This payment is unknown."), status: .notFound)
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
        var view = ResultPage(title: "", amount: Amount.formatted(tenge: order.amount), reference: order.merchantReference ?? order.id)
        switch outcome {
        case .success: (view.title, view.paid) = ("Payment received", true)
        case .pending: (view.title, view.pending, view.refresh) = ("Payment processing", true, 3)
        case .failed: (view.title, view.failed) = ("Payment failed", true)
        }
        return page("result", view)
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

    func link(id: String) async -> Response {
        guard let view = try? await gateway.paymentLink(id: id) else {
            return page("message", MessagePage(title: "Payment link not found", message: "This link is unknown."), status: .notFound)
        }
        let amount = Amount.formatted(tenge: view.link.amount)
        return page(
            "link",
            LinkPage(
                title: "Pay \(amount)", id: view.link.id, amount: amount, description: view.link.description, paid: view.status == .paid,
                expired: view.status == .expired, payable: view.status == .open || view.status == .processing))
    }

    func payLink(id: String) async -> Response {
        do {
            let target = try await gateway.pay(linkID: id, publicBase: gateway.publicBase)
            return Response(status: .seeOther, headers: [.location: target])
        } catch let error as GatewayError {
            return page("message", MessagePage(title: "Cannot pay", message: error.message), status: error.status)
        } catch {
            return page("message", MessagePage(title: "Cannot pay", message: "Please try again in a moment."), status: .serviceUnavailable)
        }
    }

    private func page(_ template: String, _ context: Any, status: HTTPResponse.Status = .ok) -> Response {
        pages.page(template, context, status: status).response
    }
}
