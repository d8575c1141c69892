import Crypto
import KaspiSupport

/// The contract's signatures: lowercase hex SHA-256 of a plain concatenation, amounts written
/// as decimal integers.
///
/// | where | string hashed |
/// |---|---|
/// | create order, create QR, refund | `"\(amount)\(orderId)\(apiKey)"` |
/// | webhook (Kaspi to merchant) | `"\(orderId)\(amount)\(apiKey)"` (orderId first) |
///
/// The concatenation is ambiguous (`ORDER-1` + `2300` hashes like `ORDER-12` + `300`), so a
/// receiver must also check the order and its stored amount: see ``WebhookVerifier``.
public enum Signature {
    /// Which request or message a signature is for.
    public enum Kind: String, Sendable, CaseIterable, Hashable {
        /// `POST /api/v1/orders/create`
        case createOrder = "order"
        /// `POST /api/v1/qr/create`
        case createQR = "qr"
        /// `POST /api/v1/orders/{orderId}/refund`
        case refund = "refund"
        /// The webhook Kaspi posts to the merchant.
        case webhook = "webhook"
    }

    /// Computes the signature of one kind.
    ///
    /// The order id is taken as a string so that webhooks with ids outside our own charset
    /// can still be checked.
    public static func compute(_ kind: Kind, amount: Int, orderID: String, apiKey: APIKey) -> String {
        let message: String
        switch kind {
        case .createOrder, .createQR, .refund:
            message = "\(amount)\(orderID)\(apiKey.revealed)"
        case .webhook:
            message = "\(orderID)\(amount)\(apiKey.revealed)"
        }
        return hex(SHA256.hash(data: Array(message.utf8)))
    }

    /// The signature for creating an order.
    public static func createOrder(amount: Amount, orderID: OrderID, apiKey: APIKey) -> String {
        compute(.createOrder, amount: amount.tenge, orderID: orderID.rawValue, apiKey: apiKey)
    }

    /// The signature for creating a QR payment.
    public static func createQR(amount: Amount, orderID: OrderID, apiKey: APIKey) -> String {
        compute(.createQR, amount: amount.tenge, orderID: orderID.rawValue, apiKey: apiKey)
    }

    /// The signature for a refund.
    public static func refund(amount: Amount, orderID: OrderID, apiKey: APIKey) -> String {
        compute(.refund, amount: amount.tenge, orderID: orderID.rawValue, apiKey: apiKey)
    }

    /// The signature Kaspi puts on a webhook.
    public static func webhook(orderID: String, amount: Int, apiKey: APIKey) -> String {
        compute(.webhook, amount: amount, orderID: orderID, apiKey: apiKey)
    }

    /// Checks a signature in constant time (for strings of equal length).
    ///
    /// - Returns: true only when `provided` is exactly the expected lowercase hex string.
    public static func isValid(
        _ provided: String, kind: Kind, amount: Int, orderID: String, apiKey: APIKey
    ) -> Bool {
        constantTimeEquals(provided, compute(kind, amount: amount, orderID: orderID, apiKey: apiKey))
    }

    /// Compares two strings byte by byte without returning early on the first difference.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { difference |= 1 }
        let count = max(a.count, b.count)
        for index in 0..<count {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String { Hex.encode(Array(digest)) }
}
