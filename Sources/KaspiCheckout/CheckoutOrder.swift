import Foundation
import KaspiPay

/// An order as the payer's app sees it: the gateway's client endpoint
/// (`GET /client/v1/orders/{id}`), read with the order's client secret.
public struct CheckoutOrder: Sendable, Hashable {
    /// Where an order stands, as the gateway says.
    public enum State: Sendable, Hashable, CustomStringConvertible {
        /// Stored; Kaspi not asked yet.
        case created
        /// Kaspi has it; the payer has not paid.
        case pending
        /// Paid: Kaspi confirmed it to the gateway.
        case paid
        /// The payer or Kaspi declined it.
        case declined
        /// Cancelled.
        case cancelled
        /// Never paid in time.
        case expired
        /// A state this version does not know; treated as not final.
        case other(String)

        init(_ raw: String) {
            switch raw {
            case "created": self = .created
            case "pending": self = .pending
            case "paid": self = .paid
            case "declined": self = .declined
            case "cancelled": self = .cancelled
            case "expired": self = .expired
            default: self = .other(raw)
            }
        }

        /// The gateway's word for it.
        public var description: String {
            switch self {
            case .created: "created"
            case .pending: "pending"
            case .paid: "paid"
            case .declined: "declined"
            case .cancelled: "cancelled"
            case .expired: "expired"
            case .other(let raw): raw
            }
        }

        /// Whether the state will not change any more.
        public var isFinal: Bool {
            switch self {
            case .paid, .declined, .cancelled, .expired: true
            case .created, .pending, .other: false
            }
        }
    }

    /// The gateway's order id.
    public var id: String
    /// Where the order stands.
    public var state: State
    /// How the payer pays: `redirect`, `qr`, `link` or `remote`.
    public var kind: String
    /// The amount.
    public var amount: Amount
    /// Where to send the payer (Kaspi's page or link); nil for QR orders and once final.
    public var paymentURL: URL?
    /// The QR token to draw, for QR orders; nil once final.
    public var qrToken: String?
    /// When the running phase ends without a payment, by the gateway's clock; nil once final.
    public var expiresAt: Date?
    /// The same deadline in seconds from the moment of the answer; the session follows this
    /// one, since a device's clock may be wrong.
    public var expiresIn: Int?
    /// When to ask again, in seconds.
    public var pollAfter: Int

    /// An order, as a test or a preview would make one.
    public init(
        id: String, state: State, kind: String = "redirect", amount: Amount, paymentURL: URL? = nil, qrToken: String? = nil,
        expiresAt: Date? = nil, expiresIn: Int? = nil, pollAfter: Int = 3
    ) {
        self.id = id
        self.state = state
        self.kind = kind
        self.amount = amount
        self.paymentURL = paymentURL
        self.qrToken = qrToken
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
        self.pollAfter = pollAfter
    }
}

extension CheckoutOrder: Decodable {
    enum CodingKeys: String, CodingKey {
        case id, state, kind, amount, qrToken, expiresAt, expiresIn, pollAfter
        case paymentURL = "paymentUrl"
    }

    /// Decodes the client endpoint's answer. Unknown fields are ignored and an unknown state
    /// is kept as ``State/other(_:)``; a payment URL must be http(s).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        state = State(try container.decode(String.self, forKey: .state))
        kind = try container.decodeIfPresent(String.self, forKey: .kind) ?? "redirect"
        let tenge = try container.decode(Int.self, forKey: .amount)
        do {
            amount = try Amount(tenge: tenge)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .amount, in: container, debugDescription: "not a payable amount: \(tenge)")
        }
        paymentURL = try container.decodeIfPresent(String.self, forKey: .paymentURL).flatMap { text in
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http" else { return nil }
            return url
        }
        qrToken = try container.decodeIfPresent(String.self, forKey: .qrToken)
        expiresAt = try container.decodeIfPresent(String.self, forKey: .expiresAt).flatMap(Self.parseDate)
        expiresIn = try container.decodeIfPresent(Int.self, forKey: .expiresIn).map { max(0, $0) }
        pollAfter = min(30, max(1, try container.decodeIfPresent(Int.self, forKey: .pollAfter) ?? 3))
    }

    static func parseDate(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return withFraction.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
