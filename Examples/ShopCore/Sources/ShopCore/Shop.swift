import Foundation
import KaspiEvents
import KaspiGatewayClient

/// Where the shop's gateway is, and the shop's own address, from the environment.
public struct ShopConfiguration: Sendable {
    /// The gateway's root, e.g. `http://127.0.0.1:8282`.
    public var gatewayURL: URL
    /// A merchant API key of the gateway (`kaspi gateway key`).
    public var apiKey: String
    /// The gateway's events secret (`whsec_…`), or `kaspi listen`'s.
    public var eventsSecret: String
    /// The shop's own root, where payers come back to; the gateway must allow it
    /// (`KASPI_GATEWAY_MOBILE_RETURN_URLS`).
    public var shopURL: String
    /// The port the shop listens on.
    public var port: Int

    /// Reads `KASPI_GATEWAY_URL`, `KASPI_GATEWAY_API_KEY`, `KASPI_GATEWAY_EVENTS_SECRET`,
    /// `SHOP_PORT` and `SHOP_URL`.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, defaultPort: Int
    ) throws(ShopError) -> ShopConfiguration {
        guard let gateway = URL(string: environment["KASPI_GATEWAY_URL"] ?? "http://127.0.0.1:8282") else {
            throw ShopError("KASPI_GATEWAY_URL is not a URL")
        }
        guard let key = environment["KASPI_GATEWAY_API_KEY"], !key.isEmpty else { throw ShopError("set KASPI_GATEWAY_API_KEY") }
        guard let secret = environment["KASPI_GATEWAY_EVENTS_SECRET"], (try? EventVerifier(secret: secret)) != nil else {
            throw ShopError("set KASPI_GATEWAY_EVENTS_SECRET to the gateway's events secret (whsec_…)")
        }
        guard let port = Int(environment["SHOP_PORT"] ?? String(defaultPort)), (1...65535).contains(port) else {
            throw ShopError("SHOP_PORT must be a port number")
        }
        let shopURL = environment["SHOP_URL"] ?? "http://127.0.0.1:\(port)"
        return ShopConfiguration(gatewayURL: gateway, apiKey: key, eventsSecret: secret, shopURL: shopURL, port: port)
    }
}

/// A configuration the shop cannot start with.
public struct ShopError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// An answer for the web framework to send.
public struct Reply: Sendable {
    public var status: Int
    public var contentType = "text/html; charset=utf-8"
    public var location: String?
    public var body = ""

    static func page(_ title: String, _ html: String, status: Int = 200) -> Reply {
        Reply(
            status: status,
            body: """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title></head>
                <body><h1>\(escape(title))</h1>\(html)</body></html>
                """)
    }

    static func redirect(_ location: String) -> Reply { Reply(status: 303, location: location) }

    static func json(_ value: some Encodable, status: Int = 200) -> Reply {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return Reply(status: status, contentType: "application/json", body: String(decoding: data, as: UTF8.self))
    }
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;")
}

/// The shop: a catalogue, checkout through the gateway, the page payers come back to, the
/// events endpoint, and refunds. Its orders live in memory here; a real shop keeps them, and the
/// ids of the events it acted on, in its database.
public actor Shop {
    /// One of the shop's sales, as its own systems know it.
    public struct Sale: Sendable, Codable {
        public var reference: String
        public var item: String
        public var amount: Int
        public var gatewayOrderID: String
        /// Set by the gateway's `order.paid` event, never by the return URL.
        public var paid = false
        public var refunded = 0
    }

    static let items = ["tea": ("Steppe tea, 100 g", 1_200), "lamp": ("Almaty desk lamp", 5_900)]

    let gateway: KaspiGatewayClient
    let verifier: EventVerifier
    let shopURL: String
    var sales: [String: Sale] = [:]
    /// The `webhook-id`s acted on: a repeat delivery is acknowledged and not acted on again.
    var handled: Set<String> = []

    public init(configuration: ShopConfiguration, gateway: KaspiGatewayClient) throws {
        self.gateway = gateway
        verifier = try EventVerifier(secret: configuration.eventsSecret)
        shopURL = configuration.shopURL
    }

    /// `GET /`.
    public func catalogue() -> Reply {
        let rows = Self.items.sorted { $0.key < $1.key }.map { id, item in
            """
            <form method="post" action="/buy"><input type="hidden" name="item" value="\(id)">\
            \(escape(item.0)), \(item.1) ₸ <button>Pay with Kaspi</button></form>
            """
        }
        return .page("Example shop", rows.joined())
    }

    /// `POST /buy`: a checkout at the gateway, and the payer off to its payment page.
    public func buy(item id: String?) async -> Reply {
        guard let id, let item = Self.items[id] else { return .page("Unknown item", "", status: 400) }
        let reference = "EX-" + UUID().uuidString.prefix(8).uppercased()
        do {
            // The reference is the idempotency key: a retried checkout is the same order.
            let order = try await gateway.checkouts.create(
                .init(amount: item.1, description: item.0, merchantReference: reference, mobileReturnUrl: "\(shopURL)/result"),
                idempotencyKey: reference)
            sales[reference] = Sale(reference: reference, item: item.0, amount: item.1, gatewayOrderID: order.id)
            guard let paymentURL = order.paymentUrl else { return .page("Payment could not start", "", status: 502) }
            return .redirect(paymentURL)
        } catch {
            return .page("Payment could not start", "<p>\(escape(Self.message(error)))</p>", status: 502)
        }
    }

    /// `GET /result?gatewayOrderId=…`: where the gateway sends the payer back. The URL proves
    /// nothing: the page asks the gateway.
    public func result(gatewayOrderID: String?) async -> Reply {
        guard let gatewayOrderID, let order = try? await gateway.orders.get(gatewayOrderID) else {
            return .page("Order not found", "", status: 404)
        }
        let reference = escape(order.merchantReference ?? order.id)
        switch order.state {
        case .paid: return .page("Thank you!", "<p>Order \(reference) is paid.</p>")
        case .pending, .created: return .page("Payment processing", "<p>Waiting for Kaspi to confirm order \(reference).</p>")
        default: return .page("Payment not completed", "<p>Order \(reference) was \(order.state.rawValue). No money was taken.</p>")
        }
    }

    /// `POST /events`: the gateway's events, verified before anything in them is believed.
    ///
    /// - Parameters:
    ///   - body: the request body, exactly as received.
    ///   - header: the request's header of a name (any case).
    public func receiveEvent(body: [UInt8], header: (String) -> String?) -> Reply {
        guard let verified = try? verifier.verify(payload: body, header: header) else { return Reply(status: 400) }
        // At least once: act on each webhook-id once, acknowledge repeats.
        guard handled.insert(verified.id).inserted else { return Reply(status: 204) }
        switch verified.event {
        case .orderPaid(let order):
            if let reference = order.merchantReference { sales[reference]?.paid = true }
        case .refundSucceeded(let refund):
            if let reference = sales.values.first(where: { $0.gatewayOrderID == refund.orderID })?.reference {
                sales[reference]?.refunded = refund.refundedAmount
            }
        case .orderDeclined, .orderCancelled, .orderExpired, .unknown:
            break
        }
        return Reply(status: 204)
    }

    /// `POST /refund` with `reference`: the whole sale back to the payer.
    public func refund(reference: String?) async -> Reply {
        guard let reference, let sale = sales[reference], sale.paid, sale.refunded < sale.amount else {
            return .page("Nothing to refund", "", status: 409)
        }
        do {
            _ = try await gateway.refunds.create(orderID: sale.gatewayOrderID, amount: sale.amount, idempotencyKey: "refund-\(reference)")
            return .redirect("/orders/\(reference)")
        } catch {
            return .page("Refund refused", "<p>\(escape(Self.message(error)))</p>", status: 502)
        }
    }

    /// `GET /orders/{reference}`: the shop's own record, as JSON.
    public func sale(reference: String) -> Reply {
        guard let sale = sales[reference] else { return .json(["error": "unknown order"], status: 404) }
        return .json(sale)
    }

    static func message(_ error: any Error) -> String {
        if case .refused(_, let code, let message) = error as? GatewayClientError { return "\(code): \(message)" }
        return "The payment service did not answer; try again."
    }
}

/// A form field of an `application/x-www-form-urlencoded` body.
public func formField(_ name: String, in body: [UInt8]) -> String? {
    var components = URLComponents()
    components.percentEncodedQuery = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "+", with: "%20")
    return components.queryItems?.first { $0.name == name }?.value
}
