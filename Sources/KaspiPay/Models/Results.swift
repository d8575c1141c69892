import Foundation

/// What a merchant asks for when creating an order.
public struct NewOrder: Sendable, Hashable {
    /// The amount to charge; at least 100 tenge.
    public var amount: Amount
    /// The merchant's unique id for this payment attempt.
    public var orderID: OrderID
    /// Where the payer is sent after paying.
    public var returnURL: URL
    /// Where the payer is sent after a decline or cancel.
    public var failURL: URL
    /// Shown to the payer; at most 256 characters.
    public var description: String?

    /// Creates an order request. Everything is checked again before it is sent.
    public init(amount: Amount, orderID: OrderID, returnURL: URL, failURL: URL, description: String? = nil) {
        self.amount = amount
        self.orderID = orderID
        self.returnURL = returnURL
        self.failURL = failURL
        self.description = description
    }
}

/// An order Kaspi accepted.
public struct CreatedOrder: Sendable, Hashable {
    /// The merchant's id of the order.
    public var orderID: OrderID
    /// Where to send the payer: the payment page (web) or the Kaspi app (mobile).
    public var paymentURL: URL
    /// The status the server reported, `PENDING` when it reported none.
    public var status: PaymentStatus
    /// True when an earlier attempt created the order and its response was lost; the order
    /// was then confirmed through the status call.
    public var recovered: Bool

    /// Creates the result of an order's creation (for tests and transports of your own).
    public init(orderID: OrderID, paymentURL: URL, status: PaymentStatus, recovered: Bool = false) {
        self.orderID = orderID
        self.paymentURL = paymentURL
        self.status = status
        self.recovered = recovered
    }
}

/// An order's status as Kaspi reports it. Fields other than ``status`` are extensions a
/// real server may not send.
public struct OrderStatus: Sendable, Hashable {
    /// The payment status.
    public var status: PaymentStatus
    /// The order's amount, if reported.
    public var amount: Amount?
    /// Kaspi's transaction id, once approved, if reported. Store it: refunds need it.
    public var transactionID: String?
    /// The sum refunded so far, if reported. A refund never changes ``status``.
    public var refundedAmount: Amount?

    /// Creates a status report (for tests and transports of your own).
    public init(status: PaymentStatus, amount: Amount? = nil, transactionID: String? = nil, refundedAmount: Amount? = nil) {
        self.status = status
        self.amount = amount
        self.transactionID = transactionID
        self.refundedAmount = refundedAmount
    }
}

/// A QR payment Kaspi accepted.
public struct CreatedQR: Sendable, Hashable {
    /// The merchant's id of the order the QR pays.
    public var orderID: OrderID
    /// The token to poll the QR's status with.
    public var token: String
    /// The QR code as a PNG image.
    public var png: [UInt8]
    /// True when an earlier attempt created it and its response was lost.
    public var recovered: Bool

    /// Creates the result of a QR payment's creation (for tests and transports of your own).
    public init(orderID: OrderID, token: String, png: [UInt8], recovered: Bool = false) {
        self.orderID = orderID
        self.token = token
        self.png = png
        self.recovered = recovered
    }
}

/// A refund Kaspi carried out.
public struct Refund: Sendable, Hashable {
    /// The refunded order.
    public var orderID: OrderID
    /// Kaspi's id of this refund; nil when the refund was confirmed through the order's
    /// refunded amount after its response was lost.
    public var refundID: String?
    /// The amount of this refund.
    public var amount: Amount
    /// The order's total refunded so far, this refund included.
    public var refundedAmount: Amount
    /// True when the response was lost and the refund was confirmed through the status call.
    public var recovered: Bool

    /// Creates the result of a refund (for tests and transports of your own).
    public init(orderID: OrderID, refundID: String?, amount: Amount, refundedAmount: Amount, recovered: Bool = false) {
        self.orderID = orderID
        self.refundID = refundID
        self.amount = amount
        self.refundedAmount = refundedAmount
        self.recovered = recovered
    }
}
