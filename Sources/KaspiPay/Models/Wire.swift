// The JSON bodies of the contract (openapi/kaspi-pay.yaml), exactly as sent and received.

/// `POST /api/v1/orders/create` request body.
struct CreateOrderBody: Encodable, Sendable {
    var amount: Int
    var orderId: String
    var returnUrl: String
    var failUrl: String
    var tradePointId: String
    var description: String?
    var signature: String
}

/// `POST /api/v1/qr/create` request body.
struct CreateQRBody: Encodable, Sendable {
    var amount: Int
    var orderId: String
    var tradePointId: String
    var signature: String
}

/// `POST /api/v1/orders/{orderId}/refund` request body.
struct RefundBody: Encodable, Sendable {
    var amount: Int
    var signature: String
    var transactionId: String?
}

/// `POST /api/v1/orders/create` response.
struct CreateOrderReply: Decodable, Sendable {
    var paymentUrl: String
    var orderId: String?
    var status: PaymentStatus?
}

/// `GET /api/v1/orders/{orderId}/status` response. Everything but `status` is an extension
/// (ext) a real server may not send; `paymentUrl`, `qrToken` and `qrCode` serve the
/// recovery of a create whose response was lost.
struct OrderStatusReply: Decodable, Sendable {
    var status: PaymentStatus
    var orderId: String?
    var amount: Int?
    var transactionId: String?
    var refundedAmount: Int?
    var paymentUrl: String?
    var qrToken: String?
    var qrCode: String?
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
    var orderId: String
    var refundId: String
    var amount: Int
    var refundedAmount: Int
}

/// The error body: `{ "code": "...", "message": "..." }`.
struct ErrorReply: Decodable, Sendable {
    var code: String
    var message: String?
}
