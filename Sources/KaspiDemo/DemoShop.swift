import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KaspiEvents
import KaspiGateway
import KaspiGatewayClient
import KaspiWeb
import NIOCore
import NIOHTTP1
import OpenAPIAsyncHTTPClient
import Synchronization

/// A tiny shop that takes payments through the gateway's API, as a merchant's backend would:
/// redirect checkout, QR checkout and payment links. Server-rendered, no JavaScript.
public final class DemoShop: Sendable {
    /// An item for sale; its name is a message of the shop's catalog.
    struct Item: Sendable {
        var id: String
        var nameKey: String
        var price: Int
    }

    static let items = [
        Item(id: "chair", nameKey: "item_chair", price: 12_500), Item(id: "lamp", nameKey: "item_lamp", price: 5_900),
        Item(id: "tea", nameKey: "item_tea", price: 1_200),
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
    /// The gateway's API, over the shop's HTTP client.
    let gateway: KaspiGatewayClient
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
        guard let url = URL(string: gatewayURL) else { throw GatewayClientError.transport("the gateway's address \(gatewayURL) is not a URL") }
        self.gateway = KaspiGatewayClient(
            baseURL: url, apiKey: apiKey, transport: OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport(configuration: .init(client: http)))
    }

    /// Releases the shop's HTTP client.
    public func shutdown() async { try? await http.shutdown() }

    // MARK: The gateway's API, through KaspiGatewayClient as a merchant's backend calls it

    typealias Order = KaspiGatewayClient.Order

    /// What a refused or failed call tells the payer.
    static func message(_ error: any Error) -> String {
        if case .refused(_, _, let message) = error as? GatewayClientError { return message }
        return "The gateway did not answer."
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

    /// The payer's language: `?lang=`, the switcher's cookie, the browser's, then Russian.
    func locale(_ request: Request, switcher: Bool = true) -> PageLocale {
        let locale = PageLocale(request: request, fallback: .ru)
        return switcher ? locale : PageLocale(locale.language)
    }

    func page(_ template: String, _ context: Any, _ locale: PageLocale, status: HTTPResponse.Status = .ok) -> Response {
        pages.page(template, context, locale: locale, status: status).response
    }

    func text(_ key: String, _ locale: PageLocale, _ values: [String: String] = [:]) -> String { pages.text(key, locale.language, values) }

    func unknownItem(_ locale: PageLocale) -> Response { page("message", Message(title: text("unknown_item", locale)), locale, status: .badRequest) }

    func failure(_ message: String, _ locale: PageLocale) -> Response {
        page("message", Message(title: text("payment_not_started", locale), message: message), locale, status: .badGateway)
    }

    func failure(_ error: any Error, _ locale: PageLocale) -> Response {
        // The gateway's reason is for the shop's staff; the payer reads that it did not start.
        failure(error is GatewayClientError ? text("gateway_refused", locale) : Self.message(error), locale)
    }

    func notFound(_ locale: PageLocale) -> Response {
        page("message", Message(title: text("order_not_found", locale), toShop: true), locale, status: .notFound)
    }

    /// Where a settled order's payer goes: the result page, which asks the gateway again.
    func result(of order: Order) -> Response {
        Response(status: .seeOther, headers: [.location: "/result?" + QueryString.encode([("orderId", order.merchantReference ?? order.id)])])
    }

    static func reference() -> String { "SHOP-" + UUID().uuidString.prefix(8).uppercased() }

    /// The item's name in the payer's language.
    func name(_ item: Item, _ locale: PageLocale) -> String { text(item.nameKey, locale) }

    /// The shop's routes: the catalogue, checkout by redirect, QR, link and invoice, and the gateway's events.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        pages.addAssetRoutes(to: router)
        router.get("/") { request, _ in self.catalogue(self.locale(request)) }
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
            let locale = self.locale(request, switcher: false)
            guard let item = await self.item(request) else { return self.unknownItem(locale) }
            let reference = Self.reference()
            // The shop's own address, never the request's Host header, which the caller writes.
            let resultURL = "\(self.shopURL)/result"
            // The payer's language goes with the order: the gateway's pages and events carry it.
            let checkout = KaspiGatewayClient.CheckoutRequest(
                amount: item.price, description: self.name(item, locale), merchantReference: reference, mobileReturnUrl: resultURL,
                locale: .init(rawValue: locale.language.rawValue))
            let order: Order
            do { order = try await self.gateway.checkouts.create(checkout, idempotencyKey: reference) } catch { return self.failure(error, locale) }
            guard let paymentURL = order.paymentUrl else { return self.failure(self.text("no_payment_link", locale), locale) }
            // Kaspi's partner API gives no return URL: the shop shows the link and waits.
            if self.qrProfile { return Response(status: .seeOther, headers: [.location: "/wait/\(order.id)"]) }
            return Response(status: .seeOther, headers: [.location: paymentURL])
        }
        router.get("/wait/:id") { request, context in
            let locale = self.locale(request)
            let id = try context.parameters.require("id")
            guard let order = try? await self.gateway.orders.get(id) else { return self.notFound(locale) }
            if !Self.open(order) { return self.result(of: order) }
            struct Wait {
                var title: String
                var refresh: Int
                var link, amount: String
            }
            return self.page(
                "wait",
                Wait(title: self.text("wait_title", locale), refresh: 2, link: order.paymentUrl ?? "", amount: self.tenge(order.amount, locale)),
                locale)
        }
        router.post("/invoice") { request, _ in
            let locale = self.locale(request, switcher: false)
            let form = await request.decodeForm(as: ItemForm.self, upTo: 4096)
            guard self.remoteInvoices, let item = Self.items.first(where: { $0.id == form?.item }) else { return self.unknownItem(locale) }
            let phone = form?.phone ?? ""
            if form?.confirmed != "yes" {
                // The payer's name first, so that the right person is billed.
                let info: KaspiGatewayClient.Customer
                do { info = try await self.gateway.remoteInvoices.clientInfo(phoneNumber: phone) } catch {
                    return self.failure(Self.message(error), locale)
                }
                struct Confirm { var title, name, phone, amount, item, itemID: String }
                return self.page(
                    "invoice-confirm",
                    Confirm(
                        title: self.text("invoice_confirm_title", locale), name: info.clientName, phone: phone,
                        amount: self.tenge(item.price, locale), item: self.name(item, locale), itemID: item.id),
                    locale)
            }
            let reference = Self.reference()
            do {
                let order = try await self.gateway.remoteInvoices.create(
                    phoneNumber: phone, amount: item.price, comment: self.name(item, locale), merchantReference: reference, idempotencyKey: reference)
                return Response(status: .seeOther, headers: [.location: "/invoice/\(order.id)"])
            } catch { return self.failure(Self.message(error), locale) }
        }
        router.get("/invoice/:id") { request, context in try await self.invoicePage(try context.parameters.require("id"), self.locale(request)) }
        router.post("/invoice/:id/check") { _, context in
            // Kaspi's anti-abuse refuses reads on a timer: the status is read when asked.
            let id = try context.parameters.require("id")
            _ = try? await self.gateway.orders.refresh(id)
            return Response(status: .seeOther, headers: [.location: "/invoice/\(id)"])
        }
        router.post("/buy-qr") { request, _ in
            let locale = self.locale(request, switcher: false)
            guard let item = await self.item(request) else { return self.unknownItem(locale) }
            let reference = Self.reference()
            let checkout = KaspiGatewayClient.CheckoutRequest(
                amount: item.price, description: self.name(item, locale), merchantReference: reference,
                locale: .init(rawValue: locale.language.rawValue))
            do {
                let qr = try await self.gateway.qrCheckouts.create(checkout, idempotencyKey: reference)
                self.qrImages.withLock { $0[qr.order.id] = Data(qr.qrCode).base64EncodedString() }
                return Response(status: .seeOther, headers: [.location: "/qr/\(qr.order.id)"])
            } catch { return self.failure(error, locale) }
        }
        router.get("/qr/:id") { request, context in
            let locale = self.locale(request)
            let id = try context.parameters.require("id")
            guard let order = try? await self.gateway.orders.get(id) else { return self.notFound(locale) }
            if !Self.open(order) { return self.result(of: order) }
            struct QR {
                var title: String
                var refresh: Int
                var png, amount: String
            }
            return self.page(
                "qr",
                QR(
                    title: self.text("qr_title", locale), refresh: 2, png: self.qrImages.withLock { $0[id] } ?? "",
                    amount: self.tenge(order.amount, locale)), locale)
        }
        router.post("/link") { request, _ in
            let locale = self.locale(request, switcher: false)
            guard let item = await self.item(request) else { return self.unknownItem(locale) }
            let link: KaspiGatewayClient.PaymentLink
            do { link = try await self.gateway.paymentLinks.create(amount: item.price, description: self.name(item, locale)) } catch {
                return self.failure(error, locale)
            }
            struct LinkPage { var title, url, qrCode, whatsappURL, smsURL, amount: String }
            return self.page(
                "link",
                LinkPage(
                    title: self.text("link_title", locale), url: link.url, qrCode: Data(link.qrCode.data).base64EncodedString(),
                    whatsappURL: link.whatsappUrl, smsURL: link.smsUrl, amount: self.tenge(item.price, locale)), locale)
        }
        router.get("/result") { request, _ in
            let locale = self.locale(request)
            // Never trust the URL: ask the gateway for the order's verified state.
            let reference = request.uri.queryParameters.get("orderId").map { String($0) } ?? ""
            guard !reference.isEmpty, let order = try? await self.gateway.orders.page(search: reference, limit: 1).orders.first else {
                return self.notFound(locale)
            }
            let values = ["amount": self.tenge(order.amount, locale), "reference": reference]
            let (title, text): (String, String)
            switch order.state {
            case .paid: (title, text) = (self.text("result_paid_title", locale), self.text("result_paid", locale, values))
            case _ where Self.open(order): (title, text) = (self.text("result_pending_title", locale), self.text("result_pending", locale, values))
            default: (title, text) = (self.text("result_failed_title", locale), self.text("result_failed", locale, values))
            }
            struct Result {
                var title, state, text: String
                var refresh: Int?
            }
            return self.page("result", Result(title: title, state: order.state.rawValue, text: text, refresh: Self.open(order) ? 2 : nil), locale)
        }
        return router
    }

    /// The item a form names.
    func item(_ request: Request) async -> Item? {
        let form = await request.decodeForm(as: ItemForm.self, upTo: 4096)
        return Self.items.first { $0.id == form?.item }
    }

    /// Whether the order can still be paid.
    static func open(_ order: Order) -> Bool { order.state == .pending || order.state == .created }

    func invoicePage(_ id: String, _ locale: PageLocale) async throws -> Response {
        guard let order = try? await gateway.orders.get(id) else { return notFound(locale) }
        if !Self.open(order) { return result(of: order) }
        struct Invoice { var title, id, amount, payer: String }
        let payer = order.providerPaymentId.map { "\(sandboxURL)/pay/invoice/\($0)" } ?? ""
        return page("invoice", Invoice(title: text("invoice_title", locale), id: id, amount: tenge(order.amount, locale), payer: payer), locale)
    }

    func catalogue(_ locale: PageLocale) -> Response {
        struct Row {
            var id, name, price: String
            var remoteInvoices: Bool
        }
        struct Catalogue {
            var title: String
            var items: [Row]
        }
        let rows = Self.items.map { Row(id: $0.id, name: name($0, locale), price: tenge($0.price, locale), remoteInvoices: remoteInvoices) }
        return page("catalogue", Catalogue(title: text("shop_title", locale), items: rows), locale)
    }

    func tenge(_ amount: Int, _ locale: PageLocale) -> String { LocalFormat.tenge(amount, locale.language) }
}
