import Foundation

/// The deep link a payer comes back by, in the integration guide's format:
/// `yourapp://payment?status=success&orderId=ORDER-123&gatewayOrderId=ord_…`.
///
/// It proves nothing: anyone can open `yourapp://payment?status=success`. A session treats it
/// only as the payer being back, and asks the gateway.
public struct CheckoutReturnLink: Sendable, Hashable {
    /// What the link claims.
    public enum Status: Sendable, Hashable {
        /// `success`.
        case success
        /// `pending`.
        case pending
        /// `failed`.
        case failed
        /// Anything else, or nothing.
        case other(String)
    }

    /// The claimed status.
    public var status: Status
    /// `orderId`: the merchant's reference, or the gateway's id when the order has none.
    public var orderID: String?
    /// `gatewayOrderId`: the gateway's order id.
    public var gatewayOrderID: String?

    /// The longest link read; a longer one is not a return link.
    public static let maximumLength = 4096

    /// Reads a return link, or nil when `url` is not one: longer than ``maximumLength``, with
    /// neither `status` nor an order id, or not under `prefix` (scheme, host and path) when one
    /// is given.
    public init?(url: URL, prefix: URL? = nil) {
        let text = url.absoluteString
        guard text.utf8.count <= Self.maximumLength, let components = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            return nil
        }
        if let prefix {
            guard let expected = URLComponents(url: prefix, resolvingAgainstBaseURL: false),
                components.scheme?.lowercased() == expected.scheme?.lowercased(),
                (components.host ?? "").lowercased() == (expected.host ?? "").lowercased(),
                Self.trimmed(components.path) == Self.trimmed(expected.path)
            else { return nil }
        }
        var status: String? = nil
        var orderID: String? = nil
        var gatewayOrderID: String? = nil
        for item in components.queryItems ?? [] {
            // The first of each counts; a repeated one cannot override it.
            switch item.name {
            case "status" where status == nil: status = item.value ?? ""
            case "orderId" where orderID == nil: orderID = item.value.flatMap(Self.identifier)
            case "gatewayOrderId" where gatewayOrderID == nil: gatewayOrderID = item.value.flatMap(Self.identifier)
            default: break
            }
        }
        guard status != nil || orderID != nil || gatewayOrderID != nil else { return nil }
        switch status {
        case "success": self.status = .success
        case "pending": self.status = .pending
        case "failed": self.status = .failed
        default: self.status = .other(status ?? "")
        }
        self.orderID = orderID
        self.gatewayOrderID = gatewayOrderID
    }

    /// Whether the link is about `orderID`: it names it as `gatewayOrderId`, as every return
    /// link the gateway makes does. A link that names no gateway order (anyone can open
    /// `yourapp://payment?status=success`) wakes no session.
    public func mayConcern(orderID id: String) -> Bool {
        gatewayOrderID == id
    }

    private static func trimmed(_ path: String) -> String {
        var path = Substring(path)
        while path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }

    /// An id as links carry them: 1 to 128 printable characters, no controls.
    private static func identifier(_ text: String) -> String? {
        guard !text.isEmpty, text.count <= 128, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return nil
        }
        return text
    }
}
