// The JSON bodies of the contract (openapi/kaspi-pay.yaml), exactly as sent and received.

/// `POST /api/v1/orders/create` request body.
struct CreateOrderBody: Encodable, Sendable {
    var amount: Int
    var orderID: String
    var returnURL: String
    var failURL: String
    var tradePointID: String
    var description: String?
    var signature: String

    enum CodingKeys: String, CodingKey {
        case amount
        case orderID = "orderId"
        case returnURL = "returnUrl"
        case failURL = "failUrl"
        case tradePointID = "tradePointId"
        case description
        case signature
    }
}

/// `POST /api/v1/qr/create` request body.
struct CreateQRBody: Encodable, Sendable {
    var amount: Int
    var orderID: String
    var tradePointID: String
    var signature: String

    enum CodingKeys: String, CodingKey {
        case amount
        case orderID = "orderId"
        case tradePointID = "tradePointId"
        case signature
    }
}

/// `POST /api/v1/orders/{orderId}/refund` request body.
struct RefundBody: Encodable, Sendable {
    var amount: Int
    var signature: String
    var transactionID: String?

    enum CodingKeys: String, CodingKey {
        case amount
        case signature
        case transactionID = "transactionId"
    }
}

/// `POST /api/v1/orders/create` response.
struct CreateOrderReply: Decodable, Sendable {
    var paymentURL: String
    var orderID: String?
    var status: PaymentStatus?

    enum CodingKeys: String, CodingKey {
        case paymentURL = "paymentUrl"
        case orderID = "orderId"
        case status
    }
}

/// `GET /api/v1/orders/{orderId}/status` response. Everything but `status` is an extension
/// (ext) a real server may not send; `paymentUrl`, `qrToken` and `qrCode` serve the
/// recovery of a create whose response was lost.
struct OrderStatusReply: Decodable, Sendable {
    var status: PaymentStatus
    var orderID: String?
    var amount: Int?
    var transactionID: String?
    var refundedAmount: Int?
    var paymentURL: String?
    var qrToken: String?
    var qrCode: String?

    enum CodingKeys: String, CodingKey {
        case status
        case orderID = "orderId"
        case amount
        case transactionID = "transactionId"
        case refundedAmount
        case paymentURL = "paymentUrl"
        case qrToken
        case qrCode
    }
}

/// `POST /api/v1/qr/create` response.
struct CreateQRReply: Decodable, Sendable {
    var qrCode: String
    var qrToken: String
}

/// `GET /api/v1/qr/{qrToken}/status` response.
struct QRStatusReply: Decodable, Sendable {
    var status: PaymentStatus
}

/// `POST /api/v1/orders/{orderId}/refund` response.
struct RefundReply: Decodable, Sendable {
    var orderID: String
    var refundID: String
    var amount: Int
    var refundedAmount: Int

    enum CodingKeys: String, CodingKey {
        case orderID = "orderId"
        case refundID = "refundId"
        case amount
        case refundedAmount
    }
}

/// The error body: `{ "code": "...", "message": "..." }`.
struct ErrorReply: Decodable, Sendable {
    var code: String
    var message: String?
}
