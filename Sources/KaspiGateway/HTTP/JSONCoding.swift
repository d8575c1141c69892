import Foundation
import HTTPTypes
import Hummingbird
import KaspiSupport
import NIOCore

/// The gateway's JSON, both ways: times as ISO 8601 with milliseconds
/// (`2026-11-29T07:54:55.123Z`), keys sorted, slashes unescaped, and an answer that is never
/// cached.
public struct GatewayJSON: ResponseEncoder {
    /// Creates the encoder.
    public init() {}

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // Sorted keys: the same answer is the same bytes (Foundation's key order is not
        // stable otherwise), so a replayed answer equals the first.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(GatewayJSON.iso(date))
        }
        return encoder
    }()

    /// Encodes `value` as a `200 OK` answer; wrap it in `EditedResponse` for another status.
    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        Self.response(.ok, try Self.encode(value))
    }

    /// The JSON bytes of `value`.
    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        ByteBuffer(data: try encoder.encode(value))
    }

    /// A JSON answer from its bytes.
    static func response(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: body))
    }

    private static let isoStyle = Date.ISO8601FormatStyle()

    /// `2026-11-29T07:54:55.123Z`: the millisecond the store keeps (rounded to the nearest,
    /// as it rounds), so that the answer to a create and every later read say the same time.
    /// The format style is pure Swift; an ISO8601DateFormatter per call would set up an ICU
    /// formatter each time.
    static func iso(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = (ms.floorDividedBy1000, ms - ms.floorDividedBy1000 * 1000)
        var text = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(isoStyle)
        guard text.hasSuffix("Z") else { return text }
        text.removeLast()
        let digits = String(fraction)
        return text + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Parses an ISO 8601 time with or without fractional seconds.
    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    private static let decoder = JSONDecoder()

    /// Decodes a request body. An empty body reads as `{}`, so that bodies whose every field
    /// is optional may be left out.
    ///
    /// - Throws: ``GatewayError`` (`INVALID_REQUEST`) naming the field at fault.
    static func decode<T: StrictBody>(_ type: T.Type, from buffer: ByteBuffer) throws(GatewayError) -> T {
        let bytes = buffer.readableBytes == 0 ? ByteBuffer(string: "{}") : buffer
        do {
            return try decoder.decode(Strict<T>.self, from: bytes).value
        } catch let error as GatewayError {
            throw error
        } catch let error as DecodingError {
            throw .invalid(describe(error))
        } catch {
            throw .invalid("The body must be a JSON object.")
        }
    }

    /// A decoding failure in words, naming the field.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        func expected(_ type: Any.Type) -> String {
            switch type {
            case is Int.Type, is Int64.Type: "an integer"
            case is String.Type: "a string"
            case is Bool.Type: "true or false"
            default: "a JSON object"
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is required."
        case .valueNotFound(_, let context) where !context.codingPath.isEmpty:
            return "\(path(context.codingPath)) is required."
        case .typeMismatch(let type, let context) where !context.codingPath.isEmpty:
            return "\(path(context.codingPath)) must be \(expected(type))."
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            return "\(path(context.codingPath)) is out of range or of the wrong type."
        default:
            return "The body must be a JSON object."
        }
    }
}

/// Decodes a ``StrictBody`` after checking that the object has no field besides its own.
private struct Strict<T: StrictBody>: Decodable {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let value: T

    init(from decoder: any Decoder) throws {
        // Not an object: the body's own decoding says so, in its words.
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            let known = Set(T.CodingKeys.allCases.map(\.stringValue))
            if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
                throw GatewayError(
                    .invalidRequest, "UNKNOWN_FIELD",
                    "\(JSONText.string(String(unknown.prefix(64)))) is not a field of this request; the fields are \(known.sorted().joined(separator: ", "))."
                )
            }
            // A field is given or left out: null is neither, and no field here takes it.
            for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where (try? container.decodeNil(forKey: key)) == true {
                throw GatewayError.invalid("\(key.stringValue) must not be null; leave the field out instead.")
            }
        }
        value = try T(from: decoder)
    }
}

extension Request {
    /// Reads the body as JSON into `type`, within the context's size limit.
    ///
    /// - Throws: ``GatewayError`` for a body that is too large, unreadable or not the type.
    func decodeJSON<T: StrictBody>(as type: T.Type, context: GatewayRequestContext) async throws(GatewayError) -> T {
        let buffer: ByteBuffer
        do { buffer = try await body.collect(upTo: context.maxUploadSize) } catch {
            throw GatewayError.bodyUnreadable(error, limit: context.maxUploadSize)
        }
        return try GatewayJSON.decode(type, from: buffer)
    }
}

extension GatewayError {
    /// A body that could not be read: too large, or the connection failed.
    static func bodyUnreadable(_ error: any Error, limit: Int) -> Self {
        // NIO's too-many-bytes error, or Hummingbird's 413: both say contentTooLarge.
        if (error as? any HTTPResponseError)?.status == .contentTooLarge {
            return .init(.tooLarge, "BODY_TOO_LARGE", "A request body is at most \(limit / 1024) KiB.")
        }
        return .init(.invalidRequest, "BODY_UNREADABLE", "The request body could not be read.")
    }
}

extension Int64 {
    /// `self / 1000`, rounded toward negative infinity.
    fileprivate var floorDividedBy1000: Int64 { self >= 0 ? self / 1000 : -((-self + 999) / 1000) }
}
