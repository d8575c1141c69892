import Foundation
import Hummingbird
import KaspiPay
import QRCodeEncoder
import NIOCore

extension Sandbox {
    /// The payer's side: `GET /pay/{token}` shows the payment page (no JavaScript needed),
    /// `POST /pay/{token}` with `action=pay|decline|cancel` settles the order and sends the
    /// browser to the order's returnUrl or failUrl.
    func addPaymentPage(to router: Router<BasicRequestContext>) {
        router.get("/pay/invoice/:id") { _, context in await self.qrInvoicePage(get: context.parameters.get("id") ?? "") }
        router.post("/pay/invoice/:id") { request, context in
            let form = Self.form(try await request.body.collect(upTo: 4096))
            return await self.qrInvoicePage(post: context.parameters.get("id") ?? "", form: form)
        }
        router.get("/pay/:token") { request, context in
            let token = context.parameters.get("token") ?? ""
            if let page = await self.qrPage(get: token) { return page }
            guard let order = await self.state.order(paymentToken: token) else {
                return Self.html(.notFound, Self.page(title: "Payment not found", body: "<p>This payment link is unknown or was reset.</p>"))
            }
            let merchant = await self.state.tradePoint(id: order.tradePointId)?.displayName ?? order.tradePointId
            return Self.html(.ok, self.paymentPage(order, merchant: merchant, url: "/pay/\(token)", request: request))
        }
        router.get("/pay/:token/qr.svg") { request, context in
            let token = context.parameters.get("token") ?? ""
            if let svg = await self.qrPageSVG(token) { return svg }
            guard await self.state.order(paymentToken: token) != nil, let qr = try? QRCode(encoding: self.paymentURL(token: token)) else {
                return Response(status: .notFound)
            }
            return Response(
                status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: qr.svg())))
        }
        router.post("/pay/:token") { request, context in
            let token = context.parameters.get("token") ?? ""
            let form = Self.form(try await request.body.collect(upTo: 4096))
            if let response = await self.qrPage(post: token, form: form) { return response }
            guard let order = await self.state.order(paymentToken: token) else {
                return Self.html(.notFound, Self.page(title: "Payment not found", body: "<p>This payment link is unknown or was reset.</p>"))
            }
            let target: String
            switch form["action"] {
            case "pay": target = "APPROVED"
            case "decline": target = "DECLINED"
            case "cancel": target = "CANCELLED"
            default:
                return Self.html(.badRequest, Self.page(title: "Unknown choice", body: "<p>Choose Pay, Decline or Cancel.</p>"))
            }
            let settled = await self.state.settle(tradePoint: order.tradePointId, orderId: order.orderId, to: target, via: "payment-page") ?? order
            try await self.state.waitForWrites()
            let destination: String?
            switch settled.status {
            case "APPROVED": destination = settled.returnUrl
            case "DECLINED", "CANCELLED": destination = settled.failUrl
            default: destination = nil
            }
            return Response(status: .seeOther, headers: [.location: destination ?? "/pay/\(token)"])
        }
    }

    func paymentPage(_ order: SandboxOrder, merchant: String, url: String, request: Request) -> String {
        let amount = Amount.formatted(tenge: order.amount)
        var body = """
            <p class="merchant">\(Self.escape(merchant))</p>
            <p class="amount">\(Self.escape(amount))</p>
            """
        if let description = order.description { body += "<p class=\"description\">\(Self.escape(description))</p>" }
        body += "<p class=\"meta\">Order \(Self.escape(order.orderId))</p>"
        if order.status == "PENDING" {
            body += """
                <form method="post" action="\(Self.escape(url))">
                <button type="submit" name="action" value="pay" class="pay">Pay \(Self.escape(amount))</button>
                <button type="submit" name="action" value="decline" class="decline">Decline</button>
                <button type="submit" name="action" value="cancel" class="cancel">Cancel</button>
                </form>
                <figure><img src="\(Self.escape(url))/qr.svg" width="200" height="200" alt="QR code of this payment"><figcaption>Scan to pay in the Kaspi app</figcaption></figure>
                """
            if let expires = order.qrExpiresAt {
                body += "<p class=\"meta\">This QR expires at \(Self.escape(ISO8601DateFormatter().string(from: expires))) (sandbox time).</p>"
            }
        } else {
            let words = ["APPROVED": "Paid", "DECLINED": "Declined", "CANCELLED": "Cancelled"][order.status] ?? order.status
            body += "<p class=\"status status-\(order.status.lowercased())\">\(words)</p>"
            let next = order.status == "APPROVED" ? order.returnUrl : order.failUrl
            if let next { body += "<p><a href=\"\(Self.escape(next))\">Back to the shop</a></p>" }
        }
        return Self.page(title: "Pay \(amount) to \(merchant)", body: body)
    }

    static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · Kaspi sandbox</title>
        <style>
        body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#222}
        header{color:#f14635;font-weight:700;letter-spacing:.02em}
        .amount{font-size:2.2rem;font-weight:700;margin:.2rem 0}.merchant{font-size:1.2rem;margin:.6rem 0 0}
        .meta{color:#666;font-size:.9rem}button{font-size:1rem;padding:.7rem 1.1rem;margin:.3rem .3rem 0 0;border-radius:.5rem;border:1px solid #ccc;cursor:pointer}
        .pay{background:#f14635;color:#fff;border-color:#f14635}.status{font-size:1.4rem;font-weight:700}
        table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;font-size:.9rem}
        </style></head>
        <body><header>Kaspi Pay · sandbox</header><h1 hidden>\(escape(title))</h1>
        \(body)
        </body></html>
        """
    }

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    static func form(_ buffer: ByteBuffer) -> [String: String] {
        var result: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            if let name = parts.first { result[name] = parts.count > 1 ? parts[1] : "" }
        }
        return result
    }
}
