import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import QRCodeEncoder
import NIOCore

extension Gateway {
    /// Creates a payment link: a short public URL, its QR code, and share links.
    public func createPaymentLink(amount: Int, description: String?, merchantReference: String?, expiresAt: Date?, reserving reservation: IdempotencyReservation? = nil) async throws(GatewayAPIError) -> PaymentLink {
        guard amount >= 100, amount <= 100_000_000 else { throw .invalid("amount must be an integer number of tenge from 100 to 100000000.") }
        if let description, description.count > 256 { throw .invalid("description must be at most 256 characters.") }
        if let merchantReference, merchantReference.isEmpty || merchantReference.count > 128 { throw .invalid("merchantReference must be 1 to 128 characters.") }
        if let expiresAt, expiresAt <= now() { throw .invalid("expiresAt must be in the future.") }
        let link = PaymentLink(
            id: String(GatewayID.make("l", length: 10).dropFirst(2)), amount: amount, description: description,
            merchantReference: merchantReference, expiresAt: expiresAt, createdAt: now())
        do { try await store.insert(link, reserving: reservation) } catch { throw Self.storeError(error) }
        return link
    }

    /// What a link's page shows: pay, paid, processing, or expired.
    enum LinkStatus: String { case open, processing, paid, expired }

    func status(of link: PaymentLink) async throws -> (LinkStatus, GatewayOrder?) {
        let order = try await link.orderId.asyncMap { try await store.order(id: $0) } ?? nil
        if order?.state == .paid { return (.paid, order) }
        if let expiresAt = link.expiresAt, expiresAt <= now() { return (.expired, order) }
        if let order, order.state == .pending || order.state == .created { return (.processing, order) }
        return (.open, order)
    }

    /// Starts (or reuses) the order that pays a link and returns where to send the payer.
    func pay(linkId: String, publicBase: String) async throws -> String {
        guard let link = try await store.paymentLink(id: linkId) else { throw GatewayAPIError(404, "LINK_NOT_FOUND", "No payment link \(linkId).") }
        let (status, order) = try await status(of: link)
        switch status {
        case .paid: return "\(publicBase)/l/\(linkId)"
        case .expired: throw GatewayAPIError(410, "LINK_EXPIRED", "This payment link has expired.")
        case .processing:
            if let url = order?.paymentURL { return url }
            return "\(publicBase)/l/\(linkId)"
        case .open:
            let (created, _) = try await createCheckout(
                CheckoutRequest(amount: link.amount, description: link.description, merchantReference: link.merchantReference, paymentLinkId: link.id),
                kind: .link)
            guard try await store.attach(orderId: created.id, toLink: link.id, replacing: link.orderId) else {
                // Someone else started an order at the same moment: use theirs.
                let current = try await store.paymentLink(id: linkId)?.orderId
                if let current, let theirs = try await store.order(id: current), let url = theirs.paymentURL { return url }
                return "\(publicBase)/l/\(linkId)"
            }
            return created.paymentURL ?? "\(publicBase)/l/\(linkId)"
        }
    }

    static func linkJSON(_ link: PaymentLink, base: String, status: LinkStatus, order: GatewayOrder?) -> String {
        let url = "\(base)/l/\(link.id)"
        let text = "\(link.description ?? "Payment") — \(Amount.formatted(tenge: link.amount)): \(url)"
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? url
        let png = (try? QRCode(encoding: url).png(scale: 6)) ?? []
        var fields = [
            #""id":\#(string(link.id))"#, #""url":\#(string(url))"#, #""amount":\#(link.amount)"#, #""status":"\#(status.rawValue)""#,
            #""qrCode":"\#(Data(png).base64EncodedString())""#, #""whatsappUrl":\#(string("https://wa.me/?text=\(encoded)"))"#,
            #""smsUrl":\#(string("sms:?&body=\(encoded)"))"#, #""createdAt":"\#(iso(link.createdAt))""#,
        ]
        if let v = link.description { fields.append(#""description":\#(string(v))"#) }
        if let v = link.merchantReference { fields.append(#""merchantReference":\#(string(v))"#) }
        if let v = link.expiresAt { fields.append(#""expiresAt":"\#(iso(v))""#) }
        if let order { fields.append(#""orderId":\#(string(order.id))"#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    func addPaymentLinks(to router: Router<GatewayRequestContext>, api: RouterGroup<GatewayRequestContext>) {
        api.post("payment-links") { request, _ in
            await self.api(request, idempotent: true) { body, key in
                guard case .object(let object) = body, case .integer(let amount)? = object["amount"] else {
                    throw GatewayAPIError.invalid("amount must be an integer number of tenge.")
                }
                func string(_ name: String) throws -> String? {
                    switch object[name] {
                    case nil, .null?: return nil
                    case .string(let text)?: return text
                    default: throw GatewayAPIError.invalid("\(name) must be a string.")
                    }
                }
                var expiresAt: Date? = nil
                if let text = try string("expiresAt") {
                    guard let date = Self.parseISO(text) else { throw GatewayAPIError.invalid("expiresAt must be an ISO 8601 time.") }
                    expiresAt = date
                }
                let link = try await self.createPaymentLink(
                    amount: Int(clamping: amount), description: try string("description"), merchantReference: try string("merchantReference"), expiresAt: expiresAt, reserving: key)
                return (201, Self.linkJSON(link, base: self.publicBase, status: .open, order: nil))
            }
        }
        api.get("payment-links/:id") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                guard let link = try await self.store.paymentLink(id: id) else { throw GatewayAPIError(404, "LINK_NOT_FOUND", "No payment link \(id).") }
                let (status, order) = try await self.status(of: link)
                return (200, Self.linkJSON(link, base: self.publicBase, status: status, order: order))
            }
        }
        router.get("/l/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            guard let link = try? await self.store.paymentLink(id: id), let (status, _) = try? await self.status(of: link) else {
                return Self.html(.notFound, Self.page("Payment link not found", "<p>This link is unknown.</p>"))
            }
            let amount = Self.escape(Amount.formatted(tenge: link.amount))
            var body = "<p class=\"big\">\(amount)</p>"
            if let description = link.description { body += "<p>\(Self.escape(description))</p>" }
            switch status {
            case .paid: body += "<p><strong>Paid.</strong> Thank you!</p>"
            case .expired: body += "<p><strong>This link has expired.</strong></p>"
            case .open, .processing:
                body += "<form method=\"post\" action=\"/l/\(Self.escape(id))/pay\"><button type=\"submit\" style=\"font-size:1.1rem;padding:.7rem 1.2rem;background:#f14635;color:#fff;border:0;border-radius:.5rem\">Pay with Kaspi</button></form>"
            }
            return Self.html(.ok, Self.page("Pay \(Amount.formatted(tenge: link.amount))", body))
        }
        router.post("/l/:id/pay") { request, context in
            let id = context.parameters.get("id") ?? ""
            do {
                let target = try await self.pay(linkId: id, publicBase: self.publicBase)
                return Response(status: .seeOther, headers: [.location: target])
            } catch let error as GatewayAPIError {
                return Self.html(.init(code: error.status), Self.page("Cannot pay", "<p>\(Self.escape(error.message))</p>"))
            } catch {
                return Self.html(.serviceUnavailable, Self.page("Cannot pay", "<p>Please try again in a moment.</p>"))
            }
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
