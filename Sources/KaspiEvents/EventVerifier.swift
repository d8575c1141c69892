import Crypto
import Foundation

/// Verifies the events a KaspiKit gateway sends to your systems, the Standard Webhooks way:
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`, space-separated when there are several), with the `whsec_…` secret.
///
/// Verify the raw body, before parsing it:
///
/// ```swift
/// let verifier = try EventVerifier(secret: secretFromTheEnvironment)
/// let verified = try verifier.verify(payload: body, headers: headers)
/// switch verified.event {
/// case .orderPaid(let order): ship(order.merchantReference)
/// default: break
/// }
/// ```
///
/// Events arrive at least once: the same `webhook-id` can come again after a timeout. Keep the
/// ids you have handled (a unique column, written in the same transaction as the effect) and
/// acknowledge a repeat without acting twice; see ``VerifiedEvent/id``.
public struct EventVerifier: Sendable {
    private let keys: [SymmetricKey]
    /// How far a `webhook-timestamp` may be from now, either way (five minutes by default, as
    /// Standard Webhooks advises): an older delivery is refused as a possible replay.
    public let tolerance: TimeInterval

    /// A verifier for one secret.
    ///
    /// - Parameters:
    ///   - secret: `whsec_` and base64, as `kaspi gateway secret` prints it (the bare base64 is
    ///     accepted too).
    ///   - tolerance: seconds a timestamp may be from now, either way.
    /// - Throws: ``EventVerificationError/invalidSecret`` when it is not one.
    public init(secret: String, tolerance: TimeInterval = 300) throws(EventVerificationError) {
        try self.init(secrets: [secret], tolerance: tolerance)
    }

    /// A verifier that accepts a signature by any of `secrets`: during a rotation, the new
    /// secret and the old one, until the gateway signs with the new one only.
    ///
    /// - Parameters:
    ///   - secrets: the secrets to accept, each as in ``init(secret:tolerance:)``.
    ///   - tolerance: seconds a timestamp may be from now, either way.
    /// - Throws: ``EventVerificationError/invalidSecret`` when one of them is not a secret, or
    ///   there is none.
    public init(secrets: [String], tolerance: TimeInterval = 300) throws(EventVerificationError) {
        guard !secrets.isEmpty, tolerance.isFinite, tolerance >= 0 else { throw .invalidSecret }
        var keys: [SymmetricKey] = []
        for secret in secrets {
            guard let key = Self.key(secret) else { throw .invalidSecret }
            keys.append(key)
        }
        self.keys = keys
        self.tolerance = tolerance
    }

    /// Verifies a delivery and decodes its event.
    ///
    /// - Parameters:
    ///   - payload: the request body, exactly as received.
    ///   - headers: the request's headers; names are matched without regard to case.
    ///   - now: the time to measure the timestamp against.
    /// - Throws: ``EventVerificationError``; nothing in the payload is trusted until this returns.
    public func verify(
        payload: some Collection<UInt8>, headers: [String: String], now: Date = Date()
    ) throws(EventVerificationError)
        -> VerifiedEvent
    {
        let lowered = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        return try verify(payload: payload, now: now) { lowered[$0] }
    }

    /// Verifies a delivery whose headers are read through `header` (given a lowercase name),
    /// for frameworks with their own header types.
    public func verify(
        payload: some Collection<UInt8>, now: Date = Date(), header: (String) -> String?
    ) throws(EventVerificationError)
        -> VerifiedEvent
    {
        guard let id = header("webhook-id"), !id.isEmpty else { throw .missingHeader("webhook-id") }
        guard let timestampText = header("webhook-timestamp") else { throw .missingHeader("webhook-timestamp") }
        guard let signatures = header("webhook-signature") else { throw .missingHeader("webhook-signature") }
        guard let seconds = Int64(timestampText.trimmingCharacters(in: .whitespaces)) else { throw .invalidTimestamp }
        let sent = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard abs(now.timeIntervalSince(sent)) <= tolerance else { throw .timestampOutOfTolerance }
        let bytes = Array(payload)
        let signed = Array("\(id).\(seconds).".utf8) + bytes
        let candidates = signatures.split(separator: " ").compactMap { entry -> [UInt8]? in
            let parts = entry.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1" else { return nil }
            return Data(base64Encoded: String(parts[1])).map { Array($0) }
        }
        let matches = keys.contains { key in
            let expected = Array(HMAC<SHA256>.authenticationCode(for: signed, using: key))
            return candidates.contains { Self.constantTimeEquals($0, expected) }
        }
        guard matches else { throw .signatureMismatch }
        let event: GatewayEvent
        do { event = try GatewayEvent(json: bytes) } catch { throw .undecodable }
        return VerifiedEvent(id: id, timestamp: sent, event: event, payload: bytes)
    }

    /// The `webhook-signature` value for a payload: what the gateway sends, for your tests.
    public static func signature(
        id: String, timestamp: Int64, payload: some Collection<UInt8>, secret: String
    ) throws(EventVerificationError)
        -> String
    {
        guard let key = key(secret) else { throw .invalidSecret }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + Array(payload), using: key)
        return "v1," + Data(mac).base64EncodedString()
    }

    static func key(_ secret: String) -> SymmetricKey? {
        var encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        // Unpadded base64 is read as Standard Webhooks' reference implementation reads it.
        while encoded.count % 4 != 0 { encoded += "=" }
        guard let bytes = Data(base64Encoded: encoded), bytes.count >= 16 else { return nil }
        return SymmetricKey(data: bytes)
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A delivery that passed verification.
public struct VerifiedEvent: Sendable {
    /// `webhook-id`: the same for every delivery of one event. Handle each id once: a repeat
    /// after a timeout is normal, and must be acknowledged (2xx) without acting again.
    public let id: String
    /// When the gateway signed this delivery.
    public let timestamp: Date
    /// The event.
    public let event: GatewayEvent
    /// The body as received, for storing or forwarding.
    public let payload: [UInt8]
}

/// Why a delivery was refused. Answer 400 (or 401) and do not act on it.
public enum EventVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A header Standard Webhooks requires is missing.
    case missingHeader(String)
    /// `webhook-timestamp` is not whole seconds since 1970.
    case invalidTimestamp
    /// `webhook-timestamp` is further from now than the tolerance: a replay, or a clock off.
    case timestampOutOfTolerance
    /// No `v1` signature matches the body with any of the secrets.
    case signatureMismatch
    /// A secret is not `whsec_` and base64 of 16 bytes or more.
    case invalidSecret
    /// The signature matched but the body is not a gateway event.
    case undecodable

    /// A stable code: `EVENT_MISSING_HEADER`, `EVENT_INVALID_TIMESTAMP`,
    /// `EVENT_TIMESTAMP_OUT_OF_TOLERANCE`, `EVENT_SIGNATURE_MISMATCH`, `EVENT_INVALID_SECRET`,
    /// `EVENT_UNDECODABLE`.
    public var code: String {
        switch self {
        case .missingHeader: "EVENT_MISSING_HEADER"
        case .invalidTimestamp: "EVENT_INVALID_TIMESTAMP"
        case .timestampOutOfTolerance: "EVENT_TIMESTAMP_OUT_OF_TOLERANCE"
        case .signatureMismatch: "EVENT_SIGNATURE_MISMATCH"
        case .invalidSecret: "EVENT_INVALID_SECRET"
        case .undecodable: "EVENT_UNDECODABLE"
        }
    }

    public var description: String {
        switch self {
        case .missingHeader(let name): "\(code): the \(name) header is missing."
        case .invalidTimestamp: "\(code): webhook-timestamp is not whole seconds since 1970."
        case .timestampOutOfTolerance: "\(code): webhook-timestamp is too far from now (a replay, or a clock off)."
        case .signatureMismatch: "\(code): no signature matches the body with the configured secret."
        case .invalidSecret: "\(code): the secret is not whsec_ and base64 (kaspi gateway secret makes one)."
        case .undecodable: "\(code): the signed body is not a gateway event."
        }
    }
}
