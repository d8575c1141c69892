/// An amount of money in whole tenge (KZT), the unit the Kaspi Pay API uses.
///
/// Negative amounts cannot be represented. Kaspi's minimum for a payment (100 tenge) is a
/// business rule checked by the client before it sends a request (``minimumPayment``), not
/// by this type, because refunds may be smaller.
public struct Amount: Sendable, Hashable, Comparable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The amount in whole tenge.
    public let tenge: Int

    /// The smallest amount Kaspi accepts for an order or QR payment: 100 tenge.
    public static let minimumPayment = Amount(uncheckedTenge: 100)

    /// Creates an amount.
    ///
    /// - Throws: ``KaspiError/negativeAmount(_:)`` when `tenge` is below zero.
    public init(tenge: Int) throws(KaspiError) {
        guard tenge >= 0 else { throw .negativeAmount(tenge) }
        self.tenge = tenge
    }

    /// Creates an amount from a literal, such as `let fee: Amount = 500`. It never traps: a
    /// negative literal becomes zero. For values known only at run time use ``init(tenge:)``,
    /// which refuses negatives, or ``formatted(tenge:)`` to show one.
    public init(integerLiteral value: Int) {
        self.tenge = max(0, value)
    }

    init(uncheckedTenge: Int) { self.tenge = uncheckedTenge }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(Int.self)
        guard value >= 0 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "negative amount")
        }
        self.tenge = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(tenge)
    }

    public static func < (lhs: Amount, rhs: Amount) -> Bool { lhs.tenge < rhs.tenge }

    /// The amount as the contract writes it in signatures: a decimal integer.
    public var description: String { String(tenge) }

    /// The amount for people, for example `5 000 ₸`.
    public var formatted: String { Self.formatted(tenge: tenge) }

    /// Any whole number of tenge for people, for example `5 000 ₸` (a negative one with a
    /// leading minus sign). For amounts read from storage or a request, which may not be
    /// valid ``Amount``s.
    public static func formatted(tenge: Int) -> String {
        let digits = String(tenge.magnitude)
        var out = tenge < 0 ? "\u{2212}" : ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append("\u{202F}") }
            out.append(character)
        }
        return out + "\u{00A0}₸"
    }
}
