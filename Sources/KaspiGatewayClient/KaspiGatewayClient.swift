public import Foundation
public import HTTPTypes
public import OpenAPIRuntime

/// A typed client of a KaspiKit gateway's merchant API (`/v1`), generated from
/// `openapi/gateway.yaml` and wrapped for use:
///
/// - every creating call carries an `Idempotency-Key` (yours, or one made for the call), and its
///   retries reuse it, so a retry never creates twice;
/// - reads and keyed creates are retried after a network error, a 5xx, or a 429 (waiting as
///   `Retry-After` says);
/// - a refusal is a ``GatewayClientError`` with the gateway's stable `code`;
/// - ``Orders/list(status:createdFrom:createdBefore:search:pageSize:)`` follows `nextCursor`.
///
/// ```swift
/// let gateway = KaspiGatewayClient(baseURL: URL(string: "http://127.0.0.1:8282")!, apiKey: key, transport: transport)
/// let order = try await gateway.checkouts.create(.init(amount: 5000, merchantReference: "cart-42"))
/// for try await order in gateway.orders.list(status: "paid") { print(order.id) }
/// ```
public struct KaspiGatewayClient: Sendable {
    /// An order, as the gateway answers it.
    public typealias Order = Components.Schemas.Order
    /// What a checkout asks for.
    public typealias CheckoutRequest = Components.Schemas.CheckoutRequest
    /// A QR checkout's order, with its QR code.
    public typealias QROrder = Components.Schemas.QROrder
    /// An order's timeline.
    public typealias Timeline = Components.Schemas.EventList
    /// An order's refunds.
    public typealias RefundList = Components.Schemas.RefundList
    /// Outgoing events.
    public typealias EventList = Components.Schemas.OutboxList
    /// A payment link.
    public typealias PaymentLink = Components.Schemas.PaymentLink

    let client: Client

    /// A client of the gateway at `baseURL` (its root, e.g. `https://pay.example.kz`).
    ///
    /// - Parameters:
    ///   - baseURL: the gateway's root (a trailing `/v1` is taken off).
    ///   - apiKey: a merchant API key (`kaspi gateway key`).
    ///   - transport: how requests travel: `AsyncHTTPClientTransport` (swift-openapi-async-http-client)
    ///     on servers, `URLSessionTransport` (swift-openapi-urlsession) elsewhere.
    ///   - retries: how often and how long to retry what is safe to retry.
    public init(baseURL: URL, apiKey: String, transport: any ClientTransport, retries: RetryPolicy = RetryPolicy()) {
        // The document's paths carry /v1: the server URL is the gateway's root.
        var root = baseURL.absoluteString
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/v1") { root.removeLast(3) }
        client = Client(
            serverURL: URL(string: root) ?? baseURL,
            configuration: Configuration(dateTranscoder: .iso8601WithFractionalSeconds),
            transport: transport,
            middlewares: [RetryMiddleware(policy: retries), ErrorMiddleware(), AuthorizationMiddleware(apiKey: apiKey)])
    }

    /// Redirect checkouts: a payment page for phones and the web.
    public var checkouts: Checkouts { Checkouts(client: client) }
    /// QR checkouts: a QR for a screen or a till.
    public var qrCheckouts: QRCheckouts { QRCheckouts(client: client) }
    /// Orders: read, list, follow, refresh, cancel.
    public var orders: Orders { Orders(client: client) }
    /// Refunds through Kaspi.
    public var refunds: Refunds { Refunds(client: client) }
    /// Refunds made in the Kaspi Pay app, recorded (the Kaspi QR API's r1).
    public var manualRefunds: ManualRefunds { ManualRefunds(client: client) }
    /// Payment links.
    public var paymentLinks: PaymentLinks { PaymentLinks(client: client) }
    /// The events sent to your systems.
    public var events: Events { Events(client: client) }

    /// A new idempotency key, for a creating call the caller gave none.
    static func newKey() -> String { "kgc_" + UUID().uuidString.lowercased() }
}

extension KaspiGatewayClient {
    /// How the client retries what is safe to retry: reads, and creates carrying an
    /// `Idempotency-Key`.
    public struct RetryPolicy: Sendable, Hashable {
        /// Attempts in all, the first included.
        public var maxAttempts: Int
        /// The first pause; each next one doubles, with jitter.
        public var initialDelay: Duration
        /// The longest pause, `Retry-After` included.
        public var maxDelay: Duration

        /// Three attempts, 0.5 s then 1 s, at most 10 s for a `Retry-After`.
        public init(maxAttempts: Int = 3, initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(10)) {
            self.maxAttempts = max(1, maxAttempts)
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
        }

        /// One attempt only.
        public static let none = RetryPolicy(maxAttempts: 1)
    }
}

/// Why a call to the gateway failed.
public enum GatewayClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The gateway refused it: its HTTP status, its stable `code` (`ORDER_NOT_FOUND`,
    /// `IDEMPOTENCY_CONFLICT`, `PROVIDER_UNAVAILABLE`, …) and message.
    case refused(status: Int, code: String, message: String)
    /// No answer: the connection failed or timed out, after the retries that were safe.
    case transport(String)
    /// An answer the API does not describe.
    case unexpectedResponse(status: Int)

    /// The gateway's code, when it answered with one.
    public var code: String? {
        if case .refused(_, let code, _) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case .refused(let status, let code, let message): "\(code) (HTTP \(status)): \(message)"
        case .transport(let reason): "the gateway could not be reached: \(reason)"
        case .unexpectedResponse(let status): "the gateway answered HTTP \(status), which its API does not describe"
        }
    }
}

/// Runs a generated call, turning every failure into a ``GatewayClientError``.
func call<T>(_ body: () async throws -> T) async throws(GatewayClientError) -> T {
    do {
        return try await body()
    } catch let error as GatewayClientError {
        throw error
    } catch let error as ClientError {
        if let inner = error.underlyingError as? GatewayClientError { throw inner }
        if let status = error.response?.status.code { throw .unexpectedResponse(status: status) }
        throw .transport(String(String(describing: error.underlyingError).prefix(200)))
    } catch {
        throw .transport(String(String(describing: error).prefix(200)))
    }
}

/// The answer was not the documented success: the error middleware throws for refusals, so
/// this is a status the document does not list (the generated `undocumented` case).
func unexpected(_ output: Any) -> GatewayClientError {
    let mirror = Mirror(reflecting: output)
    if let child = mirror.children.first, child.label == "undocumented", let status = Mirror(reflecting: child.value).children.first?.value as? Int {
        return .unexpectedResponse(status: status)
    }
    return .unexpectedResponse(status: 0)
}

extension Components.Schemas.QROrder {
    /// The order.
    public var order: Components.Schemas.Order { value1 }
    /// The QR code to show, as PNG.
    public var qrCode: [UInt8] { Array(value2.qrCode.data) }
    /// What the QR code encodes.
    public var qrToken: String { value2.qrToken }
}
