import Foundation

/// An event the gateway sends to your systems (`openapi/gateway.yaml`'s `MerchantEvent`).
public enum GatewayEvent: Sendable, Hashable {
    /// Kaspi confirmed the payment: ship.
    case orderPaid(OrderEvent)
    /// The payer or Kaspi refused it.
    case orderDeclined(OrderEvent)
    /// Cancelled before payment.
    case orderCancelled(OrderEvent)
    /// Not paid in time.
    case orderExpired(OrderEvent)
    /// A refund went through; `refundedAmount` is the order's total refunded since.
    case refundSucceeded(RefundEvent)
    /// A type this version does not know: acknowledge it, and upgrade when you need it.
    case unknown(type: String)

    /// The event's type, e.g. `order.paid`.
    public var type: String {
        switch self {
        case .orderPaid: "order.paid"
        case .orderDeclined: "order.declined"
        case .orderCancelled: "order.cancelled"
        case .orderExpired: "order.expired"
        case .refundSucceeded: "refund.succeeded"
        case .unknown(let type): type
        }
    }

    /// The order the event is about.
    public var orderID: String? {
        switch self {
        case .orderPaid(let o), .orderDeclined(let o), .orderCancelled(let o), .orderExpired(let o): o.id
        case .refundSucceeded(let r): r.orderID
        case .unknown: nil
        }
    }

    /// Decodes an event body (`{"type": …, "data": …}`).
    ///
    /// - Throws: `DecodingError` when it is not one.
    public init(json: some Collection<UInt8>) throws {
        let decoder = JSONDecoder()
        let data = Data(json)
        let head = try decoder.decode(Head.self, from: data)
        switch head.type {
        case "order.paid": self = .orderPaid(try decoder.decode(Body<OrderEvent>.self, from: data).data)
        case "order.declined": self = .orderDeclined(try decoder.decode(Body<OrderEvent>.self, from: data).data)
        case "order.cancelled": self = .orderCancelled(try decoder.decode(Body<OrderEvent>.self, from: data).data)
        case "order.expired": self = .orderExpired(try decoder.decode(Body<OrderEvent>.self, from: data).data)
        case "refund.succeeded": self = .refundSucceeded(try decoder.decode(Body<RefundEvent>.self, from: data).data)
        default: self = .unknown(type: head.type)
        }
    }

    private struct Head: Decodable { var type: String }
    private struct Body<T: Decodable>: Decodable { var data: T }
}

/// An order, as `order.*` events carry it.
public struct OrderEvent: Sendable, Hashable, Codable {
    /// The gateway's order id (`ord_…`).
    public var id: String
    /// Its state after the event: `paid`, `declined`, `cancelled`, `expired`.
    public var state: String
    /// The amount, in whole tenge.
    public var amount: Int
    /// What has been refunded of it, in whole tenge.
    public var refundedAmount: Int
    /// Kaspi's id for it.
    public var providerOrderID: String
    /// Your own reference (the cart or invoice number given at checkout).
    public var merchantReference: String?
    /// Kaspi's transaction id, once paid.
    public var transactionID: String?
    /// True when the order needs a person (see the dashboard).
    public var needsReview: Bool
    /// The payer's language (`kk`, `ru` or `en`) when the checkout said it: for your emails
    /// and receipts.
    public var locale: String?

    /// An order event's data.
    public init(
        id: String, state: String, amount: Int, refundedAmount: Int = 0, providerOrderID: String, merchantReference: String? = nil,
        transactionID: String? = nil, needsReview: Bool = false, locale: String? = nil
    ) {
        self.locale = locale
        (self.id, self.state, self.amount, self.refundedAmount, self.providerOrderID) = (id, state, amount, refundedAmount, providerOrderID)
        (self.merchantReference, self.transactionID, self.needsReview) = (merchantReference, transactionID, needsReview)
    }

    enum CodingKeys: String, CodingKey {
        case id, state, amount, refundedAmount, merchantReference, needsReview, locale
        case providerOrderID = "providerOrderId"
        case transactionID = "transactionId"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        state = try c.decode(String.self, forKey: .state)
        amount = try c.decode(Int.self, forKey: .amount)
        refundedAmount = try c.decodeIfPresent(Int.self, forKey: .refundedAmount) ?? 0
        providerOrderID = try c.decode(String.self, forKey: .providerOrderID)
        merchantReference = try c.decodeIfPresent(String.self, forKey: .merchantReference)
        transactionID = try c.decodeIfPresent(String.self, forKey: .transactionID)
        needsReview = try c.decodeIfPresent(Bool.self, forKey: .needsReview) ?? false
        locale = try c.decodeIfPresent(String.self, forKey: .locale)
    }
}

/// A refund, as `refund.succeeded` carries it.
public struct RefundEvent: Sendable, Hashable, Codable {
    /// The order refunded.
    public var orderID: String
    /// The refund's id.
    public var refundID: String
    /// This refund's amount, in whole tenge.
    public var amount: Int
    /// The order's total refunded, this one included.
    public var refundedAmount: Int

    /// A refund event's data.
    public init(orderID: String, refundID: String, amount: Int, refundedAmount: Int) {
        (self.orderID, self.refundID, self.amount, self.refundedAmount) = (orderID, refundID, amount, refundedAmount)
    }

    enum CodingKeys: String, CodingKey {
        case orderID = "orderId"
        case refundID = "refundId"
        case amount, refundedAmount
    }
}
