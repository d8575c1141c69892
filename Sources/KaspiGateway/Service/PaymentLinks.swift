import Foundation
import KaspiGatewayStore
import KaspiPay
import QRCodeEncoder

extension Gateway {
    /// Creates a payment link: a short public URL, its QR code, and share links.
    ///
    /// - Parameter resuming: the link an earlier request with the same key stored before its
    ///   run ended: it is the answer.
    public func createPaymentLink(
        amount: Int, description: String?, merchantReference: String?, expiresAt: Date?, reserving reservation: IdempotencyReservation? = nil,
        resuming: String? = nil
    ) async throws(GatewayError) -> PaymentLink {
        if let resuming {
            let stored: PaymentLink?
            do { stored = try await store.paymentLink(id: resuming) } catch { throw GatewayError.storage(error) }
            guard let stored else { throw GatewayError.notResumable(resuming) }
            metrics.resumed(.paymentLink)
            return stored
        }
        guard amount >= 100, amount <= 100_000_000 else { throw .invalid("amount must be an integer number of tenge from 100 to 100000000.") }
        if let description, description.count > 256 { throw .invalid("description must be at most 256 characters.") }
        if let merchantReference, merchantReference.isEmpty || merchantReference.count > 128 {
            throw .invalid("merchantReference must be 1 to 128 characters.")
        }
        if let expiresAt, expiresAt <= now() { throw .invalid("expiresAt must be in the future.") }
        let link = PaymentLink(
            id: String(GatewayID.make("l", length: 10).dropFirst(2)), amount: amount, description: description,
            merchantReference: merchantReference, expiresAt: expiresAt, createdAt: now())
        do { try await store.insert(link, reserving: reservation) } catch { throw GatewayError.storage(error) }
        return link
    }

    /// What a link's page shows: pay, paid, processing, or expired.
    public enum LinkStatus: String, Sendable, Codable { case open, processing, paid, expired }

    func status(of link: PaymentLink) async throws -> (LinkStatus, GatewayOrder?) {
        let order = try await link.orderID.asyncMap { try await store.order(id: $0) } ?? nil
        if order?.state == .paid { return (.paid, order) }
        if let expiresAt = link.expiresAt, expiresAt <= now() { return (.expired, order) }
        if let order, order.state == .pending || order.state == .created { return (.processing, order) }
        return (.open, order)
    }

    /// Starts (or reuses) the order that pays a link and returns where to send the payer.
    func pay(linkID: String, publicBase: String) async throws -> String {
        guard let link = try await store.paymentLink(id: linkID) else { throw Self.linkNotFound(linkID) }
        let (status, order) = try await status(of: link)
        switch status {
        case .paid: return "\(publicBase)/l/\(linkID)"
        case .expired: throw GatewayError(.gone, "LINK_EXPIRED", "This payment link has expired.")
        case .processing:
            if let url = order?.paymentURL { return url }
            return "\(publicBase)/l/\(linkID)"
        case .open:
            let (created, _, _) = try await createCheckout(
                CheckoutRequest(
                    amount: link.amount, description: link.description, merchantReference: link.merchantReference, paymentLinkID: link.id),
                kind: .link)
            guard try await store.attach(orderID: created.id, toLink: link.id, replacing: link.orderID) else {
                // Someone else started an order at the same moment: use theirs.
                let current = try await store.paymentLink(id: linkID)?.orderID
                if let current, let theirs = try await store.order(id: current), let url = theirs.paymentURL { return url }
                return "\(publicBase)/l/\(linkID)"
            }
            return created.paymentURL ?? "\(publicBase)/l/\(linkID)"
        }
    }

    /// A payment link as the payer and the merchant see it: its page's URL, its QR code,
    /// ready-made WhatsApp and SMS share links, and its status now.
    public struct PaymentLinkView: Sendable {
        /// The link as stored.
        public var link: PaymentLink
        /// Open, processing, paid or expired, as of now.
        public var status: LinkStatus
        /// The order paying it, if one was started.
        public var order: GatewayOrder?
        /// The link's public page.
        public var url: String
        /// The page's URL as a QR code, PNG.
        public var png: [UInt8]
        /// A WhatsApp link that shares the page.
        public var whatsappURL: String
        /// An SMS link that shares the page.
        public var smsURL: String
    }

    /// A link's view, its status read now.
    func view(of link: PaymentLink) async throws -> PaymentLinkView {
        let (status, order) = try await status(of: link)
        return view(of: link, status: status, order: order)
    }

    func view(of link: PaymentLink, status: LinkStatus, order: GatewayOrder?) -> PaymentLinkView {
        let url = "\(publicBase)/l/\(link.id)"
        let text = "\(link.description ?? "Payment") — \(Amount.formatted(tenge: link.amount)): \(url)"
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? url
        let png = (try? QRCode(encoding: url).png(scale: 6)) ?? []
        return PaymentLinkView(
            link: link, status: status, order: order, url: url, png: png, whatsappURL: "https://wa.me/?text=\(encoded)",
            smsURL: "sms:?&body=\(encoded)")
    }

    /// A payment link by id.
    ///
    /// - Throws: `LINK_NOT_FOUND`.
    public func paymentLink(id: String) async throws(GatewayError) -> PaymentLinkView {
        do {
            guard let link = try await store.paymentLink(id: id) else { throw Self.linkNotFound(id) }
            return try await view(of: link)
        } catch {
            throw GatewayError.storage(error)
        }
    }

    static func linkNotFound(_ id: String) -> GatewayError { GatewayError(.notFound, "LINK_NOT_FOUND", "No payment link \(id).") }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
