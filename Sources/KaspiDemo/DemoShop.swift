import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KaspiEvents
import KaspiGateway
import KaspiWeb
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
    /// The shop's own base URL: checkouts send payers back to its result page.
    let shopURL: String
    let apiKey: String
    let eventsSecret: String
    /// Whether the gateway speaks the Kaspi QR API (no return URL: the shop waits and asks).
    let qrProfile: Bool
    /// Whether it can bill phone numbers (r3).
    let remoteInvoices: Bool
    /// The sandbox, where the demo's payer pays a remote invoice.
    let sandboxURL: String
    let http: HTTPClient
    let pages: PageLibrary
    private let qrImages = Mutex<[String: String]>([:])
    private let received = Mutex<[String]>([])

    /// The event types received from the gateway with a valid signature, oldest first.
    public var receivedEvents: [String] { received.withLock { $0 } }

    /// - Throws: ``KaspiWeb/PageLibrary/LoadError`` when the shop's page templates are missing.
    public init(
        gatewayURL: String, apiKey: String, eventsSecret: String, qrProfile: Bool = false, remoteInvoices: Bool = false, sandboxURL: String = "",
        shopURL: String
    ) throws {
        self.shopURL = shopURL
        self.pages = try PageLibrary(
            bundle: "KaspiKit_KaspiDemo.resources", folder: "Templates",
            sourceFolder: #filePath.replacingOccurrences(of: "/DemoShop.swift", with: "/Templates"),
            required: ["layout", "message", "catalogue", "wait", "qr", "link", "invoice-confirm", "invoice", "result"])
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

    /// Releases the shop's HTTP client.
    public func shutdown() async { try? await http.shutdown() }

    // MARK: The gateway's API, as a merchant's backend calls it

    /// The part of the gateway's order the shop reads.
    struct Order: Decodable {
        var id: String
        var state: String
        var amount: Int
        var merchantReference: String?
        var paymentURL: String?
        var providerPaymentID: String?
        var qrCode: String?

        enum CodingKeys: String, CodingKey {
            case id
            case state
            case amount
            case merchantReference
            case paymentURL = "paymentUrl"
            case providerPaymentID = "providerPaymentId"
            case qrCode
        }
    }

    struct OrderPage: Decodable { var data: [Order] }
    struct ClientInfo: Decodable { var clientName: String }
    struct Link: Decodable {
        var url, qrCode, whatsappURL, smsURL: String

        enum CodingKeys: String, CodingKey {
            case url, qrCode
            case whatsappURL = "whatsappUrl"
            case smsURL = "smsUrl"
        }
    }

    /// The gateway's error answer.
    struct Failure: Decodable {
        struct Detail: Decodable { var code, message: String }
        var error: Detail
    }

    struct Checkout: Encodable {
        var amount: Int
        var description: String?
        var merchantReference: String?
        var mobileReturnURL: String?

        enum CodingKeys: String, CodingKey {
            case amount
            case description
            case merchantReference
            case mobileReturnURL = "mobileReturnUrl"
        }
    }

    struct RemoteInvoice: Encodable {
        var amount: Int
        var phoneNumber: String
        var comment: String
        var merchantReference: String
    }

    /// What the gateway answered: the decoded body, or its error's message.
    enum Answer<T> {
        case ok(T)
        case failed(String)
    }

    /// Calls the gateway's API and decodes its answer.
    func gateway<T: Decodable>(
        _ method: HTTPMethod, _ path: String, _ body: (some Encodable)? = String?.none, idempotencyKey: String? = nil, as type: T.Type
    ) async throws -> Answer<T> {
        var request = HTTPClientRequest(url: gatewayURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let body { request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body))) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 4 << 20)
        if (200..<300).contains(response.status.code), let value = try? JSONDecoder().decode(T.self, from: buffer) { return .ok(value) }
        return .failed((try? JSONDecoder().decode(Failure.self, from: buffer))?.error.message ?? "The gateway did not answer.")
    }

    // MARK: Pages

    struct ItemForm: Decodable {
        var item: String?
        var phone: String?
        var confirmed: String?
    }

    struct Message {
        var title: String
        var message: String?
        var toShop = false
    }

    func page(_ template: String, _ context: Any, status: HTTPResponse.Status = .ok) -> Response {
        pages.page(template, context, status: status).response
    }

    func unknownItem() -> Response { page("message", Message(title: "Unknown item"), status: .badRequest) }

    func failure(_ message: String) -> Response {
        page("message", Message(title: "Payment could not start", message: message), status: .badGateway)
    }

    /// Where a settled order's payer goes: the result page, which asks the gateway again.
    func result(of order: Order) -> Response {
        Response(status: .seeOther, headers: [.location: "/result?" + QueryString.encode([("orderId", order.merchantReference ?? order.id)])])
    }

    static func reference() -> String { "SHOP-" + UUID().uuidString.prefix(8).uppercased() }

    /// The shop's routes: the catalogue, checkout by redirect, QR, link and invoice, and the gateway's events.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        pages.addAssetRoutes(to: router)
        router.get("/") { _, _ in self.catalogue() }
        // The gateway's events for the shop's systems, verified and decoded with KaspiEvents.
        router.post("/events") { request, _ in
            let body = try await request.body.collect(upTo: 64 * 1024)
            guard let verifier = try? EventVerifier(secret: self.eventsSecret),
                let verified = try? verifier.verify(
                    payload: body.readableBytesView,
                    header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } })
            else { return Response(status: .badRequest) }
            self.received.withLock { $0.append(verified.event.type) }
            return Response(status: .noContent)
        }
        router.post("/buy") { request, _ in
            guard let item = await self.item(request) else { return self.unknownItem() }
            let reference = Self.reference()
            // The shop's own address, never the request's Host header, which the caller writes.
            let resultURL = "\(self.shopURL)/result"
            let checkout = Checkout(amount: item.price, description: item.name, merchantReference: reference, mobileReturnURL: resultURL)
            switch try await self.gateway(.POST, "/v1/checkouts", checkout, idempotencyKey: reference, as: Order.self) {
            case .failed(let message): return self.failure(message)
            case .ok(let order):
                guard let paymentURL = order.paymentURL else { return self.failure("The gateway gave no payment link.") }
                // Kaspi's partner API gives no return URL: the shop shows the link and waits.
                if self.qrProfile { return Response(status: .seeOther, headers: [.location: "/wait/\(order.id)"]) }
                return Response(status: .seeOther, headers: [.location: paymentURL])
            }
        }
        router.get("/wait/:id") { _, context in
            let id = try context.parameters.require("id")
            guard case .ok(let order) = try await self.gateway(.GET, "/v1/orders/\(id)", as: Order.self) else {
                return self.page("message", Message(title: "Order not found", toShop: true), status: .notFound)
            }
            if order.state != "pending" && order.state != "created" { return self.result(of: order) }
            struct Wait {
                var title: String
                var refresh: Int
                var link, amount: String
            }
            return self.page("wait", Wait(title: "Pay in Kaspi", refresh: 2, link: order.paymentURL ?? "", amount: Self.tenge(order.amount)))
        }
        router.post("/invoice") { request, _ in
            let form = await request.decodeForm(as: ItemForm.self, upTo: 4096)
            guard self.remoteInvoices, let item = Self.items.first(where: { $0.id == form?.item }) else { return self.unknownItem() }
            let phone = form?.phone ?? ""
            if form?.confirmed != "yes" {
                // The payer's name first, so that the right person is billed.
                struct Lookup: Encodable { var phoneNumber: String }
                switch try await self.gateway(.POST, "/v1/remote-invoices/client-info", Lookup(phoneNumber: phone), as: ClientInfo.self) {
                case .failed(let message): return self.failure(message)
                case .ok(let info):
                    struct Confirm { var title, name, phone, amount, item, itemID: String }
                    return self.page(
                        "invoice-confirm",
                        Confirm(
                            title: "Send the invoice?", name: info.clientName, phone: phone, amount: Self.tenge(item.price), item: item.name,
                            itemID: item.id))
                }
            }
            let reference = Self.reference()
            let invoice = RemoteInvoice(amount: item.price, phoneNumber: phone, comment: item.name, merchantReference: reference)
            switch try await self.gateway(.POST, "/v1/remote-invoices", invoice, idempotencyKey: reference, as: Order.self) {
            case .failed(let message): return self.failure(message)
            case .ok(let order): return Response(status: .seeOther, headers: [.location: "/invoice/\(order.id)"])
            }
        }
        router.get("/invoice/:id") { _, context in try await self.invoicePage(try context.parameters.require("id")) }
        router.post("/invoice/:id/check") { _, context in
            // Kaspi's anti-abuse refuses reads on a timer: the status is read when asked.
            let id = try context.parameters.require("id")
            _ = try await self.gateway(.POST, "/v1/orders/\(id)/refresh", as: Order.self)
            return Response(status: .seeOther, headers: [.location: "/invoice/\(id)"])
        }
        router.post("/buy-qr") { request, _ in
            guard let item = await self.item(request) else { return self.unknownItem() }
            let reference = Self.reference()
            let checkout = Checkout(amount: item.price, description: item.name, merchantReference: reference)
            switch try await self.gateway(.POST, "/v1/qr-checkouts", checkout, idempotencyKey: reference, as: Order.self) {
            case .failed(let message): return self.failure(message)
            case .ok(let order):
                guard let png = order.qrCode else { return self.failure("The gateway gave no QR code.") }
                self.qrImages.withLock { $0[order.id] = png }
                return Response(status: .seeOther, headers: [.location: "/qr/\(order.id)"])
            }
        }
        router.get("/qr/:id") { _, context in
            let id = try context.parameters.require("id")
            guard case .ok(let order) = try await self.gateway(.GET, "/v1/orders/\(id)", as: Order.self) else {
                return self.page("message", Message(title: "Order not found", toShop: true), status: .notFound)
            }
            if order.state != "pending" && order.state != "created" { return self.result(of: order) }
            struct QR {
                var title: String
                var refresh: Int
                var png: String
            }
            return self.page("qr", QR(title: "Scan to pay", refresh: 2, png: self.qrImages.withLock { $0[id] } ?? ""))
        }
        router.post("/link") { request, _ in
            guard let item = await self.item(request) else { return self.unknownItem() }
            switch try await self.gateway(.POST, "/v1/payment-links", Checkout(amount: item.price, description: item.name), as: Link.self) {
            case .failed(let message): return self.failure(message)
            case .ok(let link):
                struct LinkPage { var title, url, qrCode, whatsappURL, smsURL: String }
                return self.page(
                    "link", LinkPage(title: "Payment link", url: link.url, qrCode: link.qrCode, whatsappURL: link.whatsappURL, smsURL: link.smsURL))
            }
        }
        router.get("/result") { request, _ in
            // Never trust the URL: ask the gateway for the order's verified state.
            let reference = request.uri.queryParameters.get("orderId").map { String($0) } ?? ""
            let path = "/v1/orders?" + QueryString.encode([("search", reference), ("limit", "1")])
            guard case .ok(let found) = try await self.gateway(.GET, path, as: OrderPage.self), let order = found.data.first else {
                return self.page("message", Message(title: "Order not found", toShop: true), status: .notFound)
            }
            let (title, text): (String, String)
            switch order.state {
            case "paid": (title, text) = ("Thank you!", "Payment of \(Self.tenge(order.amount)) received. Your order \(reference) is confirmed.")
            case "pending", "created": (title, text) = ("Payment processing", "We are waiting for Kaspi to confirm the payment.")
            default: (title, text) = ("Payment not completed", "The payment was \(order.state). No money was taken.")
            }
            struct Result {
                var title, state, text: String
                var refresh: Int?
            }
            return self.page("result", Result(title: title, state: order.state, text: text, refresh: order.state == "pending" ? 2 : nil))
        }
        return router
    }

    /// The item a form names.
    func item(_ request: Request) async -> Item? {
        let form = await request.decodeForm(as: ItemForm.self, upTo: 4096)
        return Self.items.first { $0.id == form?.item }
    }

    func invoicePage(_ id: String) async throws -> Response {
        guard case .ok(let order) = try await gateway(.GET, "/v1/orders/\(id)", as: Order.self) else {
            return page("message", Message(title: "Order not found", toShop: true), status: .notFound)
        }
        if order.state != "pending" && order.state != "created" { return result(of: order) }
        struct Invoice { var title, id, amount, payer: String }
        let payer = order.providerPaymentID.map { "\(sandboxURL)/pay/invoice/\($0)" } ?? ""
        return page("invoice", Invoice(title: "Invoice sent", id: id, amount: Self.tenge(order.amount), payer: payer))
    }

    func catalogue() -> Response {
        struct Row {
            var id, name, price: String
            var remoteInvoices: Bool
        }
        struct Catalogue {
            var title: String
            var items: [Row]
        }
        let rows = Self.items.map { Row(id: $0.id, name: $0.name, price: Self.tenge($0.price), remoteInvoices: remoteInvoices) }
        return page("catalogue", Catalogue(title: "KaspiKit demo shop", items: rows))
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
}
