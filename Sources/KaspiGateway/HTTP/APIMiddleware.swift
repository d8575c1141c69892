import Crypto
import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiSupport
import Logging
import NIOCore
import Synchronization

/// Lets a request through only with one of the merchant's API keys (`Authorization: Bearer`),
/// compared by hash in constant time, within what the key's role allows, and notes the key's
/// scope for idempotency. Wrong keys are counted per client address: 20 in 15 minutes, then
/// that address waits; a right key is never held back by them.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// What a key may do.
    enum Role: Sendable {
        case full, payments, readOnly
    }

    let keys: [(hash: String, role: Role)]
    let failures: FailureThrottle
    let now: @Sendable () -> Date

    init(configuration: GatewayConfiguration, failures: FailureThrottle, now: @escaping @Sendable () -> Date) {
        keys =
            configuration.apiKeyHashes.map { ($0, Role.full) } + configuration.paymentKeyHashes.map { ($0, Role.payments) }
            + configuration.readOnlyKeyHashes.map { ($0, Role.readOnly) }
        self.failures = failures
        self.now = now
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let hash = request.headers[.authorization].flatMap {
            $0.hasPrefix("Bearer ") ? GatewayConfiguration.hash(apiKey: String($0.dropFirst(7))) : nil
        }
        // Every key is compared, so the time taken says nothing about which one nearly matched.
        var role: Role? = nil
        if let hash {
            for key in keys where Signature.constantTimeEquals(key.hash, hash) { role = role ?? key.role }
        }
        guard let role, let hash else {
            // Only a key that was tried and is wrong counts: a request with none is no guess.
            if hash != nil, let wait = failures.failed(address: context.clientAddress, now: now()) {
                throw GatewayError(
                    .tooSoon, "API_KEY_RATE_LIMITED", "Too many requests with a wrong API key from this address; try again in \(wait) s.",
                    retryAfter: wait)
            }
            throw GatewayError.unauthorized
        }
        guard Self.allows(role, request.method, path: request.uri.path) else {
            throw GatewayError(
                .forbidden, "API_KEY_NOT_ALLOWED",
                role == .readOnly ? "This API key may only read." : "This API key may take payments but not refund them.")
        }
        var context = context
        context.apiKeyScope = String(hash.prefix(16))
        return try await next(request, context)
    }

    /// Whether a key of `role` may make this request.
    static func allows(_ role: Role, _ method: HTTPRequest.Method, path: String) -> Bool {
        switch role {
        case .full: return true
        case .readOnly: return method == .get || method == .head
        case .payments:
            guard method == .post else { return true }
            let refunding = path.hasSuffix("/refunds") || path.hasSuffix("/manual-refunds") || path == "/v1/returns" || path.hasPrefix("/v1/returns/")
            return !refunding
        }
    }
}

/// Failures counted per client address in fixed windows, with a bounded number of addresses
/// remembered; counted first, then judged.
final class FailureThrottle: Sendable {
    let limit: Int
    let window: TimeInterval
    private let windows = Mutex<[String: (start: Date, count: Int)]>([:])

    init(limit: Int = 20, window: TimeInterval = 900) {
        self.limit = limit
        self.window = window
    }

    /// Counts a failure from `address`: the seconds to wait when it is over the limit, else nil.
    func failed(address: String, now: Date) -> Int? {
        windows.withLock { windows in
            if windows.count > 50_000 { windows = windows.filter { now.timeIntervalSince($0.value.start) < window } }
            if windows.count > 50_000 { windows.removeAll() }
            var entry: (start: Date, count: Int) = windows[address].flatMap { now.timeIntervalSince($0.start) < window ? $0 : nil } ?? (now, 0)
            entry.count += 1
            windows[address] = entry
            guard entry.count > limit else { return nil }
            return max(1, Int((window - now.timeIntervalSince(entry.start)).rounded(.up)))
        }
    }
}

/// Makes a POST safe to retry with an `Idempotency-Key`: a finished request's answer is
/// replayed (`Idempotent-Replayed: true`), a key reused with another request is refused, and
/// a request still running is reported. The key is reserved by the work's own first write,
/// in the same transaction (``GatewayRequestContext/idempotency``), so that either both
/// commit or neither does; the final answer, success or error, is stored after.
///
/// A retry whose key is held by a request that is gone (this instance restarted since, or the
/// holder's lease, ``GatewayConfiguration/idempotencyInterruptedAfter``, ran out) takes the
/// key over and resumes the work from what that request stored
/// (``GatewayRequestContext/resuming``): a crash never leaves a key stuck.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let store: any GatewayStore
    let configuration: GatewayConfiguration
    let now: @Sendable () -> Date
    let logger: Logger
    /// This run of the gateway (``Gateway/runID``): keys held by an earlier run of the same
    /// instance are known to be abandoned.
    let runID: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key = request.headers[.idempotencyKey], let scope = context.apiKeyScope else { return try await next(request, context) }
        guard !key.isEmpty, key.count <= 255 else { throw GatewayError.invalid("Idempotency-Key must be 1 to 255 characters.") }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: context.maxUploadSize) } catch {
            throw GatewayError.bodyUnreadable(error, limit: context.maxUploadSize)
        }
        let requestHash = Hex.encode(Array(SHA256.hash(data: Data(request.uri.path.utf8) + Data(body.readableBytesView))))
        let at = now()
        let expiredBefore = at.addingTimeInterval(-configuration.idempotencyKeyLifetime)
        let record: IdempotencyRecord?
        do {
            record = try await store.idempotencyRecord(scope: scope, key: key, requestHash: requestHash, expiredBefore: expiredBefore)
        } catch {
            throw GatewayError.storage(error)
        }
        switch record {
        case .done(let stored)?:
            var response = GatewayJSON.response(.init(code: stored.status), ByteBuffer(string: stored.body))
            response.headers[.idempotentReplayed] = "true"
            return response
        case .inProgress(let since, let resource, let owner)?:
            let reservation = reservation(scope: scope, key: key, requestHash: requestHash, at: at, expiredBefore: expiredBefore)
            let leaseEnds = since.addingTimeInterval(configuration.idempotencyInterruptedAfter)
            if let owner, let resource, IdempotencyOwner.isGone(owner, instance: configuration.instanceID, run: runID, leaseEnds: leaseEnds, now: at)
            {
                let taken: Bool
                do {
                    taken = try await store.takeOverIdempotencyKey(scope: scope, key: key, from: owner, to: reservation.owner, at: at)
                } catch {
                    throw GatewayError.storage(error)
                }
                if taken {
                    logger.notice("Resuming a request whose Idempotency-Key holder is gone", metadata: ["resource": "\(resource)"])
                    return try await proceed(request, context, reservation: reservation, resuming: resource, next: next)
                }
            }
            throw GatewayError.from(StoreError.idempotencyInProgress(key: key))
        case nil:
            break
        }
        return try await proceed(
            request, context, reservation: reservation(scope: scope, key: key, requestHash: requestHash, at: at, expiredBefore: expiredBefore),
            resuming: nil, next: next)
    }

    /// A reservation for this request, owned by this run of this instance.
    private func reservation(scope: String, key: String, requestHash: String, at: Date, expiredBefore: Date) -> IdempotencyReservation {
        IdempotencyReservation(
            scope: scope, key: key, requestHash: requestHash, owner: IdempotencyOwner.token(instance: configuration.instanceID, run: runID),
            at: at, expiredBefore: expiredBefore)
    }

    /// Runs the request under its reservation and stores its final answer.
    private func proceed(
        _ request: Request, _ context: Context, reservation: IdempotencyReservation, resuming: String?,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var reserved = context
        reserved.idempotency = reservation
        reserved.resuming = resuming
        let answerFlag = StoredAnswerFlag()
        reserved.idempotencyAnswer = answerFlag
        do {
            let response = try await next(request, reserved)
            // Stored already, with the work's last write.
            if answerFlag.isStored { return response }
            // Answers are single buffers; collected once to be stored and sent alike.
            let collector = CollectingWriter()
            try await response.body.write(collector.erased)
            let bytes = collector.buffer.value
            do {
                try await store.saveIdempotentResponse(
                    reservation, response: IdempotentResponse(status: Int(response.status.code), body: String(buffer: bytes)), reservedOnly: false)
            } catch {
                logger.error(
                    "Could not store an idempotent answer; its key stays reserved",
                    metadata: ["error.code": "\((error as? StoreError)?.code ?? "UNKNOWN")"])
            }
            return Response(status: response.status, headers: response.headers, body: .init(byteBuffer: bytes))
        } catch let failure as GatewayError where resuming != nil && failure.code == "IDEMPOTENCY_IN_PROGRESS" {
            // Resumed work that must wait (a refund that may still reach Kaspi): the key is
            // handed back unanswered, and the next retry resumes it again.
            _ = try? await store.takeOverIdempotencyKey(
                scope: reservation.scope, key: reservation.key, from: reservation.owner, to: IdempotencyOwner.released, at: reservation.at)
            return failure.jsonResponse(body: failure.jsonBody)
        } catch {
            // An error after the key was reserved is the final answer (an effect may have
            // happened); before that, nothing happened and nothing is stored (only the
            // request whose write reserved the key can write its answer).
            let failure = GatewayError.answering(error, logger: logger)
            let body = failure.jsonBody
            try? await store.saveIdempotentResponse(
                reservation, response: IdempotentResponse(status: Int(failure.status.code), body: String(buffer: body)), reservedOnly: true)
            return failure.jsonResponse(body: body)
        }
    }
}

/// Collects a response body into one buffer.
private struct CollectingWriter {
    final class Box: @unchecked Sendable {
        var value = ByteBuffer()
    }
    let buffer = Box()

    var erased: any ResponseBodyWriter { Writer(box: buffer) }

    struct Writer: ResponseBodyWriter {
        let box: Box
        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            box.value.writeBuffer(&buffer)
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}

/// Who holds an Idempotency-Key: a request of one run of one gateway instance, written
/// `run@instance`, so that a restarted instance knows the keys its earlier runs left.
enum IdempotencyOwner {
    /// The owner of a key handed back unanswered: anyone may take it over.
    static let released = "released"

    /// A new request's token.
    static func token(instance: String, run: String) -> String { "\(run).\(GatewayID.make("req"))@\(instance)" }

    /// Whether the holder of a key can no longer answer it: the key was handed back, its
    /// instance restarted since (another run of the same instance id), or its lease ended.
    static func isGone(_ owner: String, instance: String, run: String, leaseEnds: Date, now: Date) -> Bool {
        if owner == released || now >= leaseEnds { return true }
        guard let at = owner.firstIndex(of: "@") else { return false }
        let ownerInstance = owner[owner.index(after: at)...]
        let ownerRun = owner[..<at].split(separator: ".", maxSplits: 1).first.map(String.init)
        return ownerInstance == instance && ownerRun != run
    }
}
