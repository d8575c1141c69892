import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KaspiGateway
import NIOCore
import NIOHTTP1
import Synchronization

/// A tiny shop that takes payments through the gateway's API, as a merchant's backend would:
/// redirect checkout, QR checkout and payment links. Server-rendered, no JavaScript.
public final class DemoShop: Sendable {
    struct Item: Sendable {
        var id: String
        var name: String
        var price: Int
    }

    static let items = [
        Item(id: "chair", name: "Kaspi Red chair", price: 12_500),
        Item(id: "lamp", name: "Almaty desk lamp", price: 5_900),
        Item(id: "tea", name: "Steppe tea, 100 g", price: 1_200),
    ]

    let gatewayURL: String
    let apiKey: String
    let eventsSecret: String
    /// Whether the gateway speaks the Kaspi QR API (no return URL: the shop waits and asks).
    let qrProfile: Bool
    /// Whether it can bill phone numbers (r3).
    let remoteInvoices: Bool
    /// The sandbox, where the demo's payer pays a remote invoice.
    let sandboxURL: String
    let http: HTTPClient
    private let qrImages = Mutex<[String: String]>([:])
    private let received = Mutex<[String]>([])

    /// The event types received from the gateway with a valid signature, oldest first.
    public var receivedEvents: [String] { received.withLock { $0 } }

    public init(gatewayURL: String, apiKey: String, eventsSecret: String, qrProfile: Bool = false, remoteInvoices: Bool = false, sandboxURL: String = "") {
        self.gatewayURL = gatewayURL
        self.apiKey = apiKey
        self.eventsSecret = eventsSecret
        self.qrProfile = qrProfile
        self.remoteInvoices = remoteInvoices
        self.sandboxURL = sandboxURL
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async { try? await http.shutdown() }

    /// Calls the gateway's API.
    func gateway(_ method: HTTPMethod, _ path: String, _ body: String? = nil, idempotencyKey: String? = nil) async throws -> (Int, [String: Any]) {
        var request = HTTPClientRequest(url: gatewayURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 4 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), json)
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in Self.html(self.catalogue()) }
        // The gateway's events for the shop's systems, verified the Standard Webhooks way.
        router.post("/events") { request, _ in
            let body = String(buffer: try await request.body.collect(upTo: 64 * 1024))
            guard let id = request.headers[.webhookID], let timestamp = request.headers[.webhookTimestamp],
                let signature = request.headers[.webhookSignature],
                StandardWebhooks.verify(id: id, timestamp: timestamp, signatures: signature, body: body, secret: self.eventsSecret)
            else { return Response(status: .badRequest) }
            let type = ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["type"] as? String ?? "?"
            self.received.withLock { $0.append(type) }
            return Response(status: .noContent)
        }
        router.post("/buy") { request, _ in
            let form = Self.form(try await request.body.collect(upTo: 4096))
            guard let item = Self.items.first(where: { $0.id == form["item"] }) else { return Self.html(Self.page("Unknown item", "<p><a href=\"/\">Back</a></p>"), status: .badRequest) }
            let reference = "SHOP-" + UUID().uuidString.prefix(8).uppercased()
            let resultURL = "http://\(request.head.authority ?? "127.0.0.1")/result"
            let (status, order) = try await self.gateway(
                .POST, "/v1/checkouts",
                #"{"amount":\#(item.price),"description":"\#(item.name)","merchantReference":"\#(reference)","mobileReturnUrl":"\#(resultURL)"}"#,
                idempotencyKey: reference)
            guard status == 201, let paymentURL = order["paymentUrl"] as? String else { return Self.failure(order) }
            if self.qrProfile, let id = order["id"] as? String {
                // Kaspi's partner API gives no return URL: the shop shows the link and waits.
                return Response(status: .seeOther, headers: [.location: "/wait/\(id)"])
            }
            return Response(status: .seeOther, headers: [.location: paymentURL])
        }
        router.get("/wait/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            let (_, order) = try await self.gateway(.GET, "/v1/orders/\(id)")
            let state = order["state"] as? String ?? "unknown"
            if state != "pending" && state != "created" {
                return Response(status: .seeOther, headers: [.location: "/result?orderId=\(order["merchantReference"] as? String ?? id)"])
            }
            let link = order["paymentUrl"] as? String ?? ""
            return Self.html(Self.page("Pay in Kaspi", """
                <p>On a phone this opens the Kaspi app. Here it opens the sandbox's page: press Scan, then Confirm.</p>
                <p><a class="link" id="open-kaspi" href="\(Self.escape(link))" target="_blank">Open Kaspi to pay \(Self.tenge(order["amount"] as? Int ?? 0))</a></p>
                <p class="muted">Waiting for Kaspi… this page checks by itself.</p>
                """, refresh: 2))
        }
        router.post("/invoice") { request, _ in
            let form = Self.form(try await request.body.collect(upTo: 4096))
            guard self.remoteInvoices, let item = Self.items.first(where: { $0.id == form["item"] }) else {
                return Self.html(Self.page("Unknown item", "<p><a href=\"/\">Back</a></p>"), status: .badRequest)
            }
            let phone = form["phone"] ?? ""
            if form["confirmed"] != "yes" {
                // The payer's name first, so that the right person is billed.
                let (status, info) = try await self.gateway(.POST, "/v1/remote-invoices/client-info", #"{"phoneNumber":\#(Self.jsonString(phone))}"#)
                guard status == 200, let name = info["clientName"] as? String else { return Self.failure(info) }
                return Self.html(Self.page("Send the invoice?", """
                    <p>Bill <strong>\(Self.escape(name))</strong> (\(Self.escape(phone))) \(Self.tenge(item.price)) for \(Self.escape(item.name))?</p>
                    <form method="post" action="/invoice"><input type="hidden" name="item" value="\(item.id)"><input type="hidden" name="phone" value="\(Self.escape(phone))">
                    <input type="hidden" name="confirmed" value="yes"><button type="submit" class="buy" id="send-invoice">Send the invoice</button></form>
                    """))
            }
            let reference = "SHOP-" + UUID().uuidString.prefix(8).uppercased()
            let (status, order) = try await self.gateway(
                .POST, "/v1/remote-invoices",
                #"{"amount":\#(item.price),"phoneNumber":\#(Self.jsonString(phone)),"comment":\#(Self.jsonString(item.name)),"merchantReference":"\#(reference)"}"#,
                idempotencyKey: reference)
            guard status == 201, let id = order["id"] as? String else { return Self.failure(order) }
            return Response(status: .seeOther, headers: [.location: "/invoice/\(id)"])
        }
        router.get("/invoice/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.invoicePage(id)
        }
        router.post("/invoice/:id/check") { _, context in
            // Kaspi's anti-abuse refuses reads on a timer: the status is read when asked.
            let id = context.parameters.get("id") ?? ""
            _ = try await self.gateway(.POST, "/v1/orders/\(id)/refresh")
            return Response(status: .seeOther, headers: [.location: "/invoice/\(id)"])
        }
        router.post("/buy-qr") { request, _ in
            let form = Self.form(try await request.body.collect(upTo: 4096))
            guard let item = Self.items.first(where: { $0.id == form["item"] }) else { return Self.html(Self.page("Unknown item", ""), status: .badRequest) }
            let reference = "SHOP-" + UUID().uuidString.prefix(8).uppercased()
            let (status, order) = try await self.gateway(
                .POST, "/v1/qr-checkouts", #"{"amount":\#(item.price),"description":"\#(item.name)","merchantReference":"\#(reference)"}"#,
                idempotencyKey: reference)
            guard status == 201, let id = order["id"] as? String, let png = order["qrCode"] as? String else { return Self.failure(order) }
            self.qrImages.withLock { $0[id] = png }
            return Response(status: .seeOther, headers: [.location: "/qr/\(id)"])
        }
        router.get("/qr/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            let (_, order) = try await self.gateway(.GET, "/v1/orders/\(id)")
            let state = order["state"] as? String ?? "unknown"
            if state != "pending" && state != "created" {
                return Response(status: .seeOther, headers: [.location: "/result?orderId=\(order["merchantReference"] as? String ?? id)"])
            }
            let png = self.qrImages.withLock { $0[id] } ?? ""
            return Self.html(Self.page("Scan to pay", """
                <p>Scan with the Kaspi app (in the sandbox, open the QR's link and press Pay).</p>
                <img class="qr" src="data:image/png;base64,\(png)" alt="QR code to pay">
                <p class="muted">Waiting for the payment… this page checks by itself.</p>
                """, refresh: 2))
        }
        router.post("/link") { request, _ in
            let form = Self.form(try await request.body.collect(upTo: 4096))
            guard let item = Self.items.first(where: { $0.id == form["item"] }) else { return Self.html(Self.page("Unknown item", ""), status: .badRequest) }
            let (status, link) = try await self.gateway(.POST, "/v1/payment-links", #"{"amount":\#(item.price),"description":"\#(item.name)"}"#)
            guard status == 201, let url = link["url"] as? String else { return Self.failure(link) }
            return Self.html(Self.page("Payment link", """
                <p>Send this link to the payer:</p>
                <p><a class="link" href="\(Self.escape(url))">\(Self.escape(url))</a></p>
                <img class="qr" src="data:image/png;base64,\(link["qrCode"] as? String ?? "")" alt="QR code of the link">
                <p><a href="\(Self.escape(link["whatsappUrl"] as? String ?? ""))">Share on WhatsApp</a> · <a href="\(Self.escape(link["smsUrl"] as? String ?? ""))">Send by SMS</a></p>
                """))
        }
        router.get("/result") { request, _ in
            // Never trust the URL: ask the gateway for the order's verified state.
            let reference = request.uri.queryParameters.get("orderId") ?? ""
            let (_, page) = try await self.gateway(.GET, "/v1/orders?search=\(reference.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&limit=1")
            guard let order = (page["data"] as? [[String: Any]])?.first else {
                return Self.html(Self.page("Order not found", "<p><a href=\"/\">Back to the shop</a></p>"), status: .notFound)
            }
            let state = order["state"] as? String ?? "unknown"
            let amount = order["amount"] as? Int ?? 0
            let (title, text): (String, String)
            switch state {
            case "paid": (title, text) = ("Thank you!", "Payment of \(Self.tenge(amount)) received. Your order \(Self.escape(reference)) is confirmed.")
            case "pending", "created": (title, text) = ("Payment processing", "We are waiting for Kaspi to confirm the payment.")
            default: (title, text) = ("Payment not completed", "The payment was \(Self.escape(state)). No money was taken.")
            }
            return Self.html(Self.page(title, "<p class=\"result result-\(Self.escape(state))\">\(text)</p><p><a href=\"/\">Back to the shop</a></p>", refresh: state == "pending" ? 2 : nil))
        }
        return router
    }

    func invoicePage(_ id: String) async throws -> Response {
        let (_, order) = try await gateway(.GET, "/v1/orders/\(id)")
        let state = order["state"] as? String ?? "unknown"
        if state != "pending" && state != "created" {
            return Response(status: .seeOther, headers: [.location: "/result?orderId=\(order["merchantReference"] as? String ?? id)"])
        }
        let payer = (order["providerPaymentId"] as? String).map { "\(sandboxURL)/pay/invoice/\($0)" } ?? ""
        return Self.html(Self.page("Invoice sent", """
            <p>The invoice for \(Self.tenge(order["amount"] as? Int ?? 0)) is in the payer's Kaspi app, payable for 24 hours.</p>
            <p class="muted">In the sandbox, pay it as the payer: <a id="payer-app" href="\(Self.escape(payer))" target="_blank">the payer's Kaspi app</a>.</p>
            <form method="post" action="/invoice/\(Self.escape(id))/check"><button type="submit" id="check-payment">Check the payment</button></form>
            <p class="muted">Kaspi forbids checking on a timer, so this page asks only when you press the button.</p>
            """))
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    func catalogue() -> String {
        var body = "<p class=\"muted\">A demo shop. Payments go through the KaspiKit gateway to the Kaspi sandbox; no real money moves.</p><ul class=\"items\">"
        for item in Self.items {
            body += """
                <li><div class="head"><span class="name">\(Self.escape(item.name))</span><span class="price">\(Self.tenge(item.price))</span></div>
                <form method="post" action="/buy"><input type="hidden" name="item" value="\(item.id)"><button type="submit" class="buy" id="buy-\(item.id)">Buy with Kaspi</button></form>
                <form method="post" action="/buy-qr"><input type="hidden" name="item" value="\(item.id)"><button type="submit" id="qr-\(item.id)">Pay by QR</button></form>
                <form method="post" action="/link"><input type="hidden" name="item" value="\(item.id)"><button type="submit" id="link-\(item.id)">Payment link</button></form>
                """
            if remoteInvoices {
                body += """
                    <form method="post" action="/invoice"><input type="hidden" name="item" value="\(item.id)">
                    <input name="phone" id="phone-\(item.id)" value="87071234567" size="12" aria-label="Payer's phone"><button type="submit" id="invoice-\(item.id)">Invoice a phone</button></form>
                    """
            }
            body += "</li>"
        }
        return Self.page("KaspiKit demo shop", body + "</ul>")
    }

    static func failure(_ json: [String: Any]) -> Response {
        let error = json["error"] as? [String: Any]
        return html(page("Payment could not start", "<p>\(escape(error?["message"] as? String ?? "The gateway did not answer."))</p><p><a href=\"/\">Back</a></p>"), status: .badGateway)
    }

    static func tenge(_ amount: Int) -> String {
        let digits = String(amount)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append("\u{202F}") }
            out.append(character)
        }
        return out + "\u{00A0}₸"
    }

    static func page(_ title: String, _ body: String, refresh: Int? = nil) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        \(refresh.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")<title>\(escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}
        .items{list-style:none;padding:0}.items li{border:1px solid #ddd;border-radius:.6rem;padding:1rem;margin:.8rem 0}
        .head{display:flex;justify-content:space-between;margin-bottom:.2rem}.name{font-weight:600}.price{font-weight:700}form{display:inline-block;margin:.6rem .4rem 0 0}
        button{padding:.5rem .9rem;border-radius:.4rem;border:1px solid #ccc;background:#fafafa;cursor:pointer}.buy{background:#f14635;color:#fff;border-color:#f14635}
        .muted{color:#666}.qr{width:220px;height:220px;image-rendering:pixelated}.result{font-size:1.2rem}</style></head>
        <body><h1>\(escape(title))</h1>\(body)</body></html>
        """
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func form(_ buffer: ByteBuffer) -> [String: String] {
        var result: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            if let name = parts.first { result[name] = parts.count > 1 ? parts[1] : "" }
        }
        return result
    }
}
