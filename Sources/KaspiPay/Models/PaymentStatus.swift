/// The status of an order or QR payment, as Kaspi reports it.
///
/// Decoding is tolerant: a status this SDK does not know is kept as ``unknown(_:)`` rather
/// than failing the whole response.
public enum PaymentStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Waiting for the payer.
    case pending
    /// Paid: the money is taken. Wins over any cancel or decline seen before or after.
    case approved
    /// The payment was declined.
    case declined
    /// The payer cancelled, or the QR expired.
    case cancelled
    /// A status this version does not know, as sent.
    case unknown(String)

    /// Creates a status from its wire form (`APPROVED`, `PENDING`, `DECLINED`, `CANCELLED`).
    public init(rawValue: String) {
        switch rawValue {
        case "PENDING": self = .pending
        case "APPROVED": self = .approved
        case "DECLINED": self = .declined
        case "CANCELLED": self = .cancelled
        default: self = .unknown(rawValue)
        }
    }

    /// The wire form.
    public var rawValue: String {
        switch self {
        case .pending: "PENDING"
        case .approved: "APPROVED"
        case .declined: "DECLINED"
        case .cancelled: "CANCELLED"
        case .unknown(let raw): raw
        }
    }

    /// Whether Kaspi will not change this status any more (approved, declined, cancelled).
    public var isFinal: Bool {
        switch self {
        case .approved, .declined, .cancelled: true
        case .pending, .unknown: false
        }
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
