/// The merchant's own order id, as sent to Kaspi: 1 to 64 characters of `[A-Za-z0-9_.:-]`.
public struct OrderID: Sendable, Hashable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The id as sent on the wire.
    public let rawValue: String

    /// The characters an order id may use besides ASCII letters and digits.
    public static let allowedPunctuation: Set<Character> = ["_", ".", ":", "-"]
    /// The longest order id the contract allows.
    public static let maxLength = 64

    /// Creates an order id, checking its charset and length.
    ///
    /// - Throws: ``KaspiError/invalidOrderID(_:reason:)``.
    public init(_ rawValue: String) throws(KaspiError) {
        if let reason = Self.problem(with: rawValue) {
            throw .invalidOrderID(rawValue, reason: reason)
        }
        self.rawValue = rawValue
    }

    /// Creates an order id from a literal; a malformed literal is a programming error.
    public init(stringLiteral value: String) {
        precondition(Self.problem(with: value) == nil, "malformed order id literal")
        self.rawValue = value
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        if let reason = Self.problem(with: text) {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "malformed orderId: \(reason)")
        }
        self.rawValue = text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    /// Why `text` is not a valid order id, or nil when it is.
    static func problem(with text: String) -> String? {
        if text.isEmpty { return "it is empty" }
        if text.count > maxLength { return "it is \(text.count) characters long; at most \(maxLength) are allowed" }
        if let bad = text.first(where: { !(($0.isASCII && ($0.isLetter || $0.isNumber)) || allowedPunctuation.contains($0)) }) {
            return "it contains \(Redaction.quoted(String(bad))); only letters, digits and _ . : - are allowed"
        }
        return nil
    }
}

/// A merchant's trade point id (`TradePointId`), issued by Kaspi.
public struct TradePointID: Sendable, Hashable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The id as sent on the wire.
    public let rawValue: String

    /// Creates a trade point id: 1 to 64 printable characters without spaces or `/`.
    ///
    /// - Throws: ``ConfigurationError/invalidTradePointID(_:reason:)``.
    public init(_ rawValue: String) throws(ConfigurationError) {
        if let reason = Self.problem(with: rawValue) {
            throw .invalidTradePointID(rawValue, reason: reason)
        }
        self.rawValue = rawValue
    }

    /// Creates a trade point id from a literal; a malformed literal is a programming error.
    public init(stringLiteral value: String) {
        precondition(Self.problem(with: value) == nil, "malformed trade point id literal")
        self.rawValue = value
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        if let reason = Self.problem(with: text) {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "malformed tradePointId: \(reason)")
        }
        self.rawValue = text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    static func problem(with text: String) -> String? {
        if text.isEmpty { return "it is empty" }
        if text.count > 64 { return "it is longer than 64 characters" }
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0 == "/" }) {
            return "it contains spaces, control characters or /"
        }
        return nil
    }
}
