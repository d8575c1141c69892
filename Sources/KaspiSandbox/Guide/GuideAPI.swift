import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiPay
import KaspiSupport
import KaspiWeb
import Logging
import NIOCore
import QRCodeEncoder
import ServiceLifecycle
import Synchronization

/// The integration guide's API: create, status and refund, with the sandbox's faults.
extension Sandbox {
    // MARK: The API

    private func api(_ body: () async throws(SandboxAPIError) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            var headers = HTTPFields()
            if let retryAfter = error.retryAfter { headers[.retryAfter] = "\(retryAfter)" }
            var response = Self.json(.init(code: error.status), encoding: ErrorBody(code: error.code, message: error.message))
            response.headers.append(contentsOf: headers)
            return response
        }
    }

    /// `{"code": …, "message": …}`, the sandbox's errors.
    struct ErrorBody: Encodable {
        var code: String
        var message: String
    }

    /// Reads a JSON body into `type`, as strictly as the guide's API: an integer is never a
    /// string or a fraction, and a string never a number.
    private func readJSON<T: Decodable>(_ request: Request, as type: T.Type) async throws(SandboxAPIError) -> T {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: 64 * 1024) } catch {
            throw .invalidRequest("The body is larger than 64 KiB.")
        }
        do {
            return try Self.decoder.decode(T.self, from: buffer)
        } catch let error as SandboxAPIError {
            throw error
        } catch {
            throw .invalidRequest("The body must be a JSON object.")
        }
    }

    /// Holds the answer to a write that took effect, when a fault says so.
    private func holdAnswer(_ tradePoint: String) async {
        let delay = await state.answerDelay(tradePoint)
        if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
    }

    /// Rate limit, then injected faults, for a request of a known trade point.
    private func admit(_ tradePoint: String) async throws(SandboxAPIError) {
        if let wait = await state.takeRateLimitSlot(tradePoint) {
            throw SandboxAPIError(
                code: "RATE_LIMITED", status: 429,
                message: "Over \(configuration.rateLimitPerMinute ?? 0) requests a minute for this trade point; retry after \(wait) s.",
                retryAfter: wait)
        }
        let (latency, outcome) = await state.injectedAPIFault(tradePoint)
        if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
        switch outcome {
        case .none: break
        case .fail:
            throw SandboxAPIError(code: "SANDBOX_INJECTED_FAILURE", status: 503, message: "Injected failure (sandbox fault injection).")
        case .timeout(let seconds):
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            throw SandboxAPIError(code: "SANDBOX_INJECTED_TIMEOUT", status: 504, message: "Injected timeout (sandbox fault injection).")
        }
    }

    private func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return "" }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    /// The payment page's absolute URL: under `publicUrl` when configured, else under the
    /// address the server is bound to (never a request's `Host` header, which the caller
    /// chooses).
    func paymentURL(token: String) -> String {
        var base: String
        if let publicURL = configuration.publicURL {
            base = publicURL
        } else {
            let port = boundPort.load(ordering: .relaxed)
            let host = ["0.0.0.0", "::", ""].contains(configuration.host) ? "127.0.0.1" : configuration.host
            base = "http://\(URLHost.authority(host)):\(port == 0 ? configuration.port : port)"
        }
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/pay/\(token)"
    }

    func createOrder(_ request: Request, kind: SandboxOrder.Kind) async -> Response {
        await api { () throws(SandboxAPIError) in
            var fields = try await readJSON(request, as: CreateFields.self)
            try fields.validate(kind: kind)
            guard let point = await state.tradePoint(id: fields.tradePointID) else {
                throw SandboxAPIError(code: "TRADE_POINT_NOT_FOUND", status: 404, message: "No trade point \(fields.tradePointID).")
            }
            try await admit(point.id)
            guard let key = try? APIKey(point.apiKey),
                Signature.isValid(
                    fields.signature, kind: kind == .qr ? .createQR : .createOrder, amount: fields.amount, orderID: fields.orderID, apiKey: key)
            else {
                throw SandboxAPIError(
                    code: "INVALID_SIGNATURE", status: 400, message: "The signature must be sha256(amount + orderId + apiKey) in lowercase hex.")
            }
            if let bearer = bearer(request), !Signature.constantTimeEquals(bearer, point.apiKey) { throw .unauthorized }
            guard fields.amount >= 100 else {
                throw SandboxAPIError(code: "AMOUNT_TOO_SMALL", status: 400, message: "The minimum is 100 tenge.")
            }
            for (name, url) in [("returnUrl", fields.returnURL), ("failUrl", fields.failURL)] {
                guard let url else { continue }
                if !point.returnURLPrefixes.isEmpty, !point.returnURLPrefixes.contains(where: { url.hasPrefix($0) }) {
                    throw SandboxAPIError(
                        code: "INVALID_RETURN_URL", status: 400,
                        message: "\(name) does not start with a prefix registered for this trade point.")
                }
            }
            let order = try await state.create(
                tradePoint: point.id, orderID: fields.orderID, amount: fields.amount, description: fields.description,
                returnURL: fields.returnURL, failURL: fields.failURL, kind: kind)
            do { try await state.waitForWrites() } catch {
                throw SandboxAPIError(code: "SANDBOX_STORAGE_ERROR", status: 500, message: "Could not store the order.")
            }
            if await state.takeLostResponse(point.id) { throw Self.lostResponse }
            await holdAnswer(point.id)
            let url = paymentURL(token: order.paymentToken)
            if kind == .qr {
                let png = (try? QRCode(encoding: url).png(scale: 4)) ?? []
                return Self.json(.ok, encoding: QRCreated(qrCode: Data(png).base64EncodedString(), qrToken: order.qrToken ?? ""))
            }
            return Self.json(.ok, encoding: OrderCreated(orderID: order.orderID, paymentURL: url, status: order.status))
        }
    }

    private func authenticatedTradePoint(_ request: Request) async throws(SandboxAPIError) -> SandboxTradePoint {
        guard let key = bearer(request), !key.isEmpty, let point = await state.tradePoint(apiKey: key) else { throw .unauthorized }
        return point
    }

    func orderStatus(_ request: Request, orderID: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let point = try await authenticatedTradePoint(request)
            try await admit(point.id)
            guard let order = await state.order(tradePoint: point.id, orderID: orderID) else {
                throw .notFound("No order \(orderID) for this trade point.")
            }
            try? await state.waitForWrites()
            var answer = OrderStatusAnswer(
                status: order.status, orderID: order.orderID, amount: order.amount, refundedAmount: order.refundedAmount,
                paymentURL: paymentURL(token: order.paymentToken), transactionID: order.transactionID)
            if let token = order.qrToken {
                let png = (try? QRCode(encoding: paymentURL(token: order.paymentToken)).png(scale: 4)) ?? []
                (answer.qrToken, answer.qrCode) = (token, Data(png).base64EncodedString())
            }
            return Self.json(.ok, encoding: answer)
        }
    }

    func qrStatus(_ request: Request, token: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let point = try await authenticatedTradePoint(request)
            try await admit(point.id)
            guard let order = await state.order(qrToken: token, tradePoint: point.id) else {
                throw .notFound("No QR payment \(token) for this trade point.")
            }
            try? await state.waitForWrites()
            return Self.json(.ok, encoding: ["status": order.status])
        }
    }

    func refund(_ request: Request, orderID: String) async -> Response {
        await api { () throws(SandboxAPIError) in
            let body = try await readJSON(request, as: RefundFields.self)
            guard let amount = body.amount, amount >= 1, amount <= Int(Int32.max) else {
                throw .invalidRequest("amount must be a positive integer number of tenge.")
            }
            guard let signature = body.signature else { throw .invalidRequest("signature must be a string.") }
            if let text = body.transactionID, text.isEmpty || text.count > 128 {
                throw .invalidRequest("transactionId must be a string of 1 to 128 characters.")
            }
            let transactionID = body.transactionID
            // The trade point: from the bearer key, else the one whose key signed this order's refund.
            var candidates: [SandboxTradePoint] = []
            if let key = bearer(request), !key.isEmpty {
                guard let point = await state.tradePoint(apiKey: key) else { throw .unauthorized }
                candidates = [point]
            } else {
                for id in await state.tradePoints(havingOrder: orderID) {
                    if let point = await state.tradePoint(id: id) { candidates.append(point) }
                }
            }
            let owners = await state.tradePoints(havingOrder: orderID)
            candidates = candidates.filter { owners.contains($0.id) }
            guard !candidates.isEmpty else { throw .notFound("No order \(orderID).") }
            guard
                let point = candidates.first(where: { point in
                    guard let key = try? APIKey(point.apiKey) else { return false }
                    return Signature.isValid(signature, kind: .refund, amount: amount, orderID: orderID, apiKey: key)
                })
            else {
                throw SandboxAPIError(
                    code: "INVALID_SIGNATURE", status: 400, message: "The signature must be sha256(amount + orderId + apiKey) in lowercase hex.")
            }
            try await admit(point.id)
            let (order, refund) = try await state.refund(tradePoint: point.id, orderID: orderID, amount: amount, transactionID: transactionID)
            do { try await state.waitForWrites() } catch {
                throw SandboxAPIError(code: "SANDBOX_STORAGE_ERROR", status: 500, message: "Could not store the refund.")
            }
            if await state.takeLostResponse(point.id) { throw Self.lostResponse }
            await holdAnswer(point.id)
            return Self.json(
                .ok,
                encoding: RefundAnswer(orderID: order.orderID, refundID: refund.refundID, amount: refund.amount, refundedAmount: order.refundedAmount)
            )
        }
    }

    static let lostResponse = SandboxAPIError(
        code: "SANDBOX_LOST_RESPONSE", status: 502, message: "Injected lost response: the request took effect (sandbox fault injection).")

    private static let decoder = JSONDecoder()

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // Sorted keys: the same answer is the same bytes (Foundation's key order is not stable).
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    private static let readableEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// A JSON answer, never cached. The helpers' answers, read by people, are indented.
    static func json(_ status: HTTPResponse.Status, encoding value: some Encodable, readable: Bool = false) -> Response {
        let data = (try? (readable ? readableEncoder : encoder).encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

// The guide's API bodies, read and written as the guide's Node.js code sends and reads them.

/// `POST /api/v1/orders/create` and `POST /api/v1/qr/create`.
struct CreateFields: Decodable {
    var amount: Int
    var orderID: String
    var tradePointID: String
    var signature: String
    var returnURL: String?
    var failURL: String?
    var description: String?

    enum CodingKeys: String, CodingKey {
        case amount
        case orderID = "orderId"
        case tradePointID = "tradePointId"
        case signature
        case returnURL = "returnUrl"
        case failURL = "failUrl"
        case description
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ problem: String) throws -> T {
            do { return try container.decode(T.self, forKey: key) } catch { throw SandboxAPIError.invalidRequest(problem) }
        }
        func optional<T: Decodable>(_ key: CodingKeys, _ type: T.Type, _ problem: String) throws -> T? {
            do { return try container.decodeIfPresent(T.self, forKey: key) } catch { throw SandboxAPIError.invalidRequest(problem) }
        }
        amount = try field(.amount, Int.self, "amount must be an integer number of tenge.")
        orderID = try field(.orderID, String.self, "orderId must be a string.")
        tradePointID = try field(.tradePointID, String.self, "tradePointId must be a string of 1 to 64 characters.")
        signature = try field(.signature, String.self, "signature must be a string.")
        returnURL = try optional(.returnURL, String.self, "returnUrl must be a string.")
        failURL = try optional(.failURL, String.self, "failUrl must be a string.")
        description = try optional(.description, String.self, "description must be a string of at most 256 characters.")
    }

    /// The guide's rules for the fields, per kind (a QR payment has no URLs or description).
    mutating func validate(kind: SandboxOrder.Kind) throws(SandboxAPIError) {
        guard abs(amount) <= Int(Int32.max) else { throw .invalidRequest("amount must be an integer number of tenge.") }
        guard (try? OrderID(orderID)) != nil else {
            throw .invalidRequest("orderId must be 1 to 64 characters of A-Z a-z 0-9 _ . : -.")
        }
        guard !tradePointID.isEmpty, tradePointID.count <= 64 else {
            throw .invalidRequest("tradePointId must be a string of 1 to 64 characters.")
        }
        guard kind == .redirect else {
            (returnURL, failURL, description) = (nil, nil, nil)
            return
        }
        for (name, url) in [("returnUrl", returnURL), ("failUrl", failURL)] {
            guard let url else { throw .invalidRequest("\(name) must be a string.") }
            guard (try? KaspiEnvironment.custom(parsing: url)) != nil, url.utf8.count <= 2048 else {
                throw .invalidRequest("\(name) must be an absolute http(s) URL of at most 2048 bytes.")
            }
        }
        if let description, description.count > 256 { throw .invalidRequest("description must be a string of at most 256 characters.") }
    }
}

/// `POST /api/v1/orders/{orderId}/refund`.
struct RefundFields: Decodable {
    var amount: Int?
    var signature: String?
    var transactionID: String?

    enum CodingKeys: String, CodingKey {
        case amount, signature
        case transactionID = "transactionId"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do { amount = try container.decodeIfPresent(Int.self, forKey: .amount) } catch {
            throw SandboxAPIError.invalidRequest("amount must be a positive integer number of tenge.")
        }
        do { signature = try container.decodeIfPresent(String.self, forKey: .signature) } catch {
            throw SandboxAPIError.invalidRequest("signature must be a string.")
        }
        do { transactionID = try container.decodeIfPresent(String.self, forKey: .transactionID) } catch {
            throw SandboxAPIError.invalidRequest("transactionId must be a string of 1 to 128 characters.")
        }
    }
}

struct OrderCreated: Encodable {
    var orderID: String
    var paymentURL: String
    var status: PaymentStatus

    enum CodingKeys: String, CodingKey {
        case orderID = "orderId"
        case paymentURL = "paymentUrl"
        case status
    }
}

struct QRCreated: Encodable {
    var qrCode: String
    var qrToken: String
}

struct OrderStatusAnswer: Encodable {
    var status: PaymentStatus
    var orderID: String
    var amount: Int
    var refundedAmount: Int
    var paymentURL: String
    var transactionID: String?
    var qrToken: String?
    var qrCode: String?

    enum CodingKeys: String, CodingKey {
        case status
        case orderID = "orderId"
        case amount
        case refundedAmount
        case paymentURL = "paymentUrl"
        case transactionID = "transactionId"
        case qrToken
        case qrCode
    }
}

struct RefundAnswer: Encodable {
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
