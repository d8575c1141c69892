import Foundation
import Hummingbird
import KaspiGatewayStore
import NIOCore
import Synchronization

/// The gateway's request context: Hummingbird's basic one, the client's address (the TCP
/// peer's, or the one a trusted proxy names: never a forwarded header from anyone else, who
/// can write what they like), and what the merchant API's middleware learned about the request.
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's storage for the request's basic context.
    public var coreContext: CoreRequestContextStorage
    /// The address the connection came from.
    public let remoteAddress: SocketAddress?
    /// The merchant API key's scope, once ``APIKeyMiddleware`` accepted the key.
    var apiKeyScope: String?
    /// The request's Idempotency-Key, once ``IdempotencyMiddleware`` reserved it: the work's
    /// first write stores it in the same transaction.
    var idempotency: IdempotencyReservation?
    /// Set with ``idempotency``: the handler marks it when it stored its answer itself, in
    /// the commit of its last write, so the middleware does not store it again.
    var idempotencyAnswer: StoredAnswerFlag?
    /// Set when ``IdempotencyMiddleware`` took the key over from a request that is gone: what
    /// that request created (an order, a refund, a link), for the handler to resume from.
    var resuming: String?

    /// Creates the context for a request on a channel.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = remoteAddress?.ipAddress.flatMap { TrustedProxies.canonical($0) } ?? remoteAddress?.ipAddress ?? "unknown"
    }

    /// No request body the gateway reads is larger (webhooks and forms take less).
    public var maxUploadSize: Int { 64 * 1024 }

    /// Answers in the gateway's JSON: ISO 8601 times with milliseconds, slashes unescaped.
    public var responseEncoder: GatewayJSON { GatewayJSON() }

    /// The client's IP address as text (or `unknown`): the TCP peer's, or, when the peer is a
    /// trusted proxy, the one it names (``ClientAddressMiddleware``). Every throttle keys on it.
    var clientAddress: String
}

/// Whether a handler stored its idempotent answer itself (see ``GatewayRequestContext/idempotencyAnswer``).
final class StoredAnswerFlag: Sendable {
    private let stored = Mutex(false)
    func markStored() { stored.withLock { $0 = true } }
    var isStored: Bool { stored.withLock { $0 } }
}

/// Sets each request's client address: the TCP peer's, or, when the peer is one of the
/// configured trusted proxies, the client it names in `X-Forwarded-For` or `Forwarded`.
struct ClientAddressMiddleware: RouterMiddleware {
    let trusted: TrustedProxies

    func handle(
        _ request: Request, context: GatewayRequestContext, next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard !trusted.isEmpty, let peer = context.remoteAddress?.ipAddress else { return try await next(request, context) }
        var context = context
        context.clientAddress = trusted.client(
            peer: peer, forwardedFor: request.headers[values: .xForwardedFor], forwarded: request.headers[values: .forwarded])
        return try await next(request, context)
    }
}
