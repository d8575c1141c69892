import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import KaspiPay
import Synchronization

/// A small server that follows the Kaspi Pay contract, for the SDK's and the CLI's tests over
/// loopback until the sandbox replaces it. It keeps orders in memory, validates like the
/// contract says, and can be told to lose responses, fail or stall.
public final class ContractServer: Sendable {
    public struct Order: Sendable {
        public var amount: Int
        public var status: String
        public var refunded: Int = 0
        public var transactionID: String?
        public var qrToken: String?
        public var returnURL: String?
    }

    /// What to do to the next request whose path contains `path`.
    public enum Fault: Sendable {
        /// Answer with this status and a non-contract body, without processing.
        case fail(status: Int)
        /// Process the request, then answer 502 as if the response was lost.
        case loseResponse
        /// Wait this long before processing.
        case stall(Duration)
        /// Answer 429 RATE_LIMITED with Retry-After.
        case rateLimit(retryAfter: Int)
    }

    struct State {
        var orders: [String: Order] = [:]
        var qrTokens: [String: String] = [:]
        var faults: [(path: String, fault: Fault)] = []
        var requests: [(method: String, path: String, body: String, authorization: String?)] = []
        var nextRefund = 0
    }

    public let tradePointID: String
    public let apiKey: String
    public let returnPrefix = "https://shop.example/"
    private let state = Mutex(State())

    public init(tradePointID: String = "TP-TEST-1", apiKey: String = "test_key_" + UUID().uuidString) {
        self.tradePointID = tradePointID
        self.apiKey = apiKey
    }

    /// Adds a fault for the next request whose path contains `path`.
    public func inject(_ fault: Fault, path: String) {
        state.withLock { $0.faults.append((path, fault)) }
    }

    /// Sets an order's status as Kaspi would after the payer acted.
    public func setStatus(_ orderID: String, _ status: String) {
        state.withLock {
            $0.orders[orderID]?.status = status
            if status == "APPROVED" { $0.orders[orderID]?.transactionID = "TX-\(orderID)" }
        }
    }

    public func order(_ id: String) -> Order? { state.withLock { $0.orders[id] } }

    /// Requests received: method, path, body text, Authorization header.
    public var requests: [(method: String, path: String, body: String, authorization: String?)] {
        state.withLock { $0.requests }
    }

    /// Runs `body` with the server listening on a free loopback port.
    public func run<T: Sendable>(_ body: @Sendable @escaping (URL) async throws -> T) async throws -> T {
        let app = Application(router: router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let box = Mutex<T?>(nil)
        try await app.test(.live) { client in
            let url = URL(string: "http://127.0.0.1:\(client.port!)")!
            let value = try await body(url)
            box.withLock { $0 = value }
        }
        return box.withLock { $0! }
    }

    private func sign(_ parts: String...) -> String {
        SHA256.hash(data: Data(parts.joined().utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private func json(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func error(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(status, ["code": code, "message": message])
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/api/v1/orders/create") { request, context in
            try await self.handle(request, context) { body in self.create(body, qr: false) }
        }
        router.post("/api/v1/qr/create") { request, context in
            try await self.handle(request, context) { body in self.create(body, qr: true) }
        }
        router.get("/api/v1/orders/:orderId/status") { request, context in
            try await self.handle(request, context, requireBearer: true) { _ in
                let id = context.parameters.get("orderId") ?? ""
                guard let order = self.order(id) else { return self.error(.notFound, "ORDER_NOT_FOUND", "no order \(id)") }
                var reply: [String: Any] = [
                    "status": order.status, "orderId": id, "amount": order.amount, "refundedAmount": order.refunded,
                    "paymentUrl": "http://pay.test/pay/\(id)",
                ]
                if let tx = order.transactionID { reply["transactionId"] = tx }
                if let token = order.qrToken {
                    reply["qrToken"] = token
                    reply["qrCode"] = Data([0x89, 0x50, 0x4E, 0x47]).base64EncodedString()
                }
                return self.json(.ok, reply)
            }
        }
        router.get("/api/v1/qr/:token/status") { request, context in
            try await self.handle(request, context, requireBearer: true) { _ in
                let token = context.parameters.get("token") ?? ""
                let status: String? = self.state.withLock { state in
                    state.qrTokens[token].flatMap { state.orders[$0]?.status }
                }
                guard let status else { return self.error(.notFound, "ORDER_NOT_FOUND", "no QR \(token)") }
                return self.json(.ok, ["status": status])
            }
        }
        router.post("/api/v1/orders/:orderId/refund") { request, context in
            try await self.handle(request, context) { body in
                let id = context.parameters.get("orderId") ?? ""
                guard let amount = body["amount"] as? Int, let signature = body["signature"] as? String, amount > 0 else {
                    return self.error(.badRequest, "INVALID_REQUEST", "amount and signature are required")
                }
                guard signature == self.sign("\(amount)", id, self.apiKey) else {
                    return self.error(.badRequest, "INVALID_SIGNATURE", "signature mismatch")
                }
                return self.state.withLock { state -> Response in
                    guard var order = state.orders[id] else { return self.error(.notFound, "ORDER_NOT_FOUND", "no order") }
                    guard order.status == "APPROVED", order.refunded + amount <= order.amount else {
                        return self.error(.conflict, "REFUND_NOT_ALLOWED", "not approved or too much")
                    }
                    order.refunded += amount
                    state.orders[id] = order
                    state.nextRefund += 1
                    return self.json(
                        .ok,
                        [
                            "orderId": id, "refundId": "RF-\(state.nextRefund)", "amount": amount,
                            "refundedAmount": order.refunded,
                        ])
                }
            }
        }
        return router
    }

    private func create(_ body: [String: Any], qr: Bool) -> Response {
        guard let amount = body["amount"] as? Int, let orderID = body["orderId"] as? String,
            let tradePoint = body["tradePointId"] as? String, let signature = body["signature"] as? String
        else { return error(.badRequest, "INVALID_REQUEST", "missing or mistyped fields") }
        guard tradePoint == tradePointID else { return error(.notFound, "TRADE_POINT_NOT_FOUND", "unknown trade point") }
        guard signature == sign("\(amount)", orderID, apiKey) else {
            return error(.badRequest, "INVALID_SIGNATURE", "signature mismatch")
        }
        guard amount >= 100 else { return error(.badRequest, "AMOUNT_TOO_SMALL", "at least 100") }
        if !qr {
            for field in ["returnUrl", "failUrl"] {
                guard let url = body[field] as? String, url.hasPrefix(returnPrefix) else {
                    return error(.badRequest, "INVALID_RETURN_URL", "\(field) is not registered")
                }
            }
        }
        return state.withLock { state -> Response in
            guard state.orders[orderID] == nil else {
                return error(.conflict, "ORDER_ALREADY_EXISTS", "orderId \(orderID) exists")
            }
            var order = Order(amount: amount, status: "PENDING")
            if qr {
                let token = "qr_" + orderID
                order.qrToken = token
                state.qrTokens[token] = orderID
                state.orders[orderID] = order
                return json(.ok, ["qrCode": Data([0x89, 0x50, 0x4E, 0x47]).base64EncodedString(), "qrToken": token])
            }
            order.returnURL = body["returnUrl"] as? String
            state.orders[orderID] = order
            return json(.ok, ["paymentUrl": "http://pay.test/pay/\(orderID)", "orderId": orderID, "status": "PENDING"])
        }
    }

    private func handle(
        _ request: Request, _ context: BasicRequestContext, requireBearer: Bool = false,
        _ body: ([String: Any]) async throws -> Response
    ) async throws -> Response {
        let raw = try await request.body.collect(upTo: 1 << 16)
        let text = String(buffer: raw)
        let path = request.uri.path
        let authorization = request.headers[.authorization]
        state.withLock {
            $0.requests.append((request.method.rawValue, path, text, authorization))
        }
        let fault: Fault? = state.withLock { state in
            guard let index = state.faults.firstIndex(where: { path.contains($0.path) }) else { return nil }
            return state.faults.remove(at: index).fault
        }
        switch fault {
        case .fail(let status)?:
            return Response(
                status: .init(code: status), headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<html>upstream error</html>")))
        case .rateLimit(let seconds)?:
            return error(.tooManyRequests, "RATE_LIMITED", "slow down").withRetryAfter(seconds)
        case .stall(let duration)?:
            try await Task.sleep(for: duration)
        default:
            break
        }
        if requireBearer, authorization != "Bearer \(apiKey)" {
            return error(.unauthorized, "UNAUTHORIZED", "missing or wrong bearer key")
        }
        var parsed: [String: Any] = [:]
        if request.method == .post {
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: raw)) as? [String: Any] else {
                return error(.badRequest, "INVALID_REQUEST", "malformed JSON")
            }
            parsed = object
        }
        let response = try await body(parsed)
        if case .loseResponse? = fault {
            return Response(status: .badGateway, body: .init(byteBuffer: ByteBuffer(string: "bad gateway")))
        }
        return response
    }
}

extension Response {
    func withRetryAfter(_ seconds: Int) -> Response {
        var copy = self
        copy.headers[.retryAfter] = "\(seconds)"
        return copy
    }
}
