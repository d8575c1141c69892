import Foundation

/// Where a gateway order stands.
///
/// `created`: stored, the provider not yet called (a crash here is recovered); `pending`: the
/// provider has the order; `paid`, `declined`, `cancelled`: as the provider reported;
/// `expired`: never paid in time. Refunds are tracked beside the state (`refundedAmount`).
public enum OrderState: String, Sendable, Codable, CaseIterable, Hashable {
    case created, pending, paid, declined, cancelled, expired

    /// Whether the state is final. A final state changes only when the provider later reports
    /// the money as taken: paid wins, and the conflict is flagged.
    public var isFinal: Bool { self == .paid || self == .declined || self == .cancelled || self == .expired }
}

/// How the payer pays.
public enum OrderKind: String, Sendable, Codable, Hashable {
    /// Redirect to the provider's payment page.
    case redirect
    /// A QR code the payer scans; the gateway polls for the outcome.
    case qr
    /// Through a payment link.
    case link
    /// A remote invoice billed to the payer's phone (the Kaspi QR API's r3): read on a user
    /// action, never on a timer.
    case remote
}

/// An order as the gateway keeps it.
public struct GatewayOrder: Sendable, Codable, Hashable {
    /// The gateway's id, e.g. `ord_…`.
    public var id: String
    /// The provider this order goes through, e.g. `kaspi-pay`.
    public var provider: String
    /// The id the provider knows the order by (the guide's `orderId`).
    public var providerOrderID: String
    /// How the payer pays: a redirect, a QR code, a payment link or a remote invoice.
    public var kind: OrderKind
    /// The amount, in whole tenge.
    public var amount: Int
    /// What is paid for, shown to the payer.
    public var description: String?
    /// The merchant's own reference (its cart or invoice number).
    public var merchantReference: String?
    /// Merchant metadata, a JSON object as text.
    public var metadata: String?
    /// Where a mobile app wants the payer back, e.g. `yourapp://payment`.
    public var mobileReturnURL: String?
    /// Where the order stands; only the state machine changes it.
    public var state: OrderState
    /// How much of the amount was refunded (reserved refunds included), in tenge.
    public var refundedAmount: Int
    /// The provider's transaction id, once paid.
    public var transactionID: String?
    /// Where to send the payer, once the provider has the order.
    public var paymentURL: String?
    /// The QR token, for QR orders.
    public var qrToken: String?
    /// The payment link this order pays, if any.
    public var paymentLinkID: String?
    /// A cancel or decline and a payment were both reported: a person should look.
    public var needsReview: Bool
    /// When the order was stored.
    public var createdAt: Date
    /// When the order last changed.
    public var updatedAt: Date
    /// When reconciliation should next ask the provider.
    public var nextPollAt: Date?
    /// How many times reconciliation has asked the provider about it.
    public var pollAttempts: Int
    /// Bumped by every change; an update that read an older version is refused.
    public var version: Int
    /// What the provider needs to follow the order, as the provider wrote it (JSON text): for
    /// the Kaspi QR API, Kaspi's payment id, the device, the polling interval and deadlines.
    public var providerState: String?
    /// The provider's own id for the payment, once it gave one (the Kaspi QR API's payment id).
    public var providerPaymentID: String?
    /// When the last poll that got an answer asked the provider (written with the poll's
    /// schedule, ``GatewayStore/schedulePoll(orderID:at:attempts:owner:polledAt:)``): the
    /// polling policy bounds deadlines that run from an event between two polls with it.
    public var lastPolledAt: Date? = nil
    /// The payer's language (`kk`, `ru` or `en`) when the checkout said it: the payer's pages
    /// speak it, and the merchant's events carry it.
    public var locale: String? = nil

    /// Creates an order; with the defaults, a new one: `created`, nothing refunded, never polled.
    public init(
        id: String, provider: String, providerOrderID: String, kind: OrderKind, amount: Int, description: String? = nil,
        merchantReference: String? = nil, metadata: String? = nil, mobileReturnURL: String? = nil,
        state: OrderState = .created, refundedAmount: Int = 0, transactionID: String? = nil, paymentURL: String? = nil,
        qrToken: String? = nil, paymentLinkID: String? = nil, needsReview: Bool = false, createdAt: Date, updatedAt: Date? = nil,
        nextPollAt: Date? = nil, pollAttempts: Int = 0, version: Int = 1, providerState: String? = nil, providerPaymentID: String? = nil
    ) {
        self.id = id
        self.provider = provider
        self.providerOrderID = providerOrderID
        self.kind = kind
        self.amount = amount
        self.description = description
        self.merchantReference = merchantReference
        self.metadata = metadata
        self.mobileReturnURL = mobileReturnURL
        self.state = state
        self.refundedAmount = refundedAmount
        self.transactionID = transactionID
        self.paymentURL = paymentURL
        self.qrToken = qrToken
        self.paymentLinkID = paymentLinkID
        self.needsReview = needsReview
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.nextPollAt = nextPollAt
        self.pollAttempts = pollAttempts
        self.version = version
        self.providerState = providerState
        self.providerPaymentID = providerPaymentID
    }

    enum CodingKeys: String, CodingKey {
        case id
        case provider
        case providerOrderID = "providerOrderId"
        case kind
        case amount
        case description
        case merchantReference
        case metadata
        case mobileReturnURL
        case locale
        case state
        case refundedAmount
        case transactionID = "transactionId"
        case paymentURL
        case qrToken
        case paymentLinkID = "paymentLinkId"
        case needsReview
        case createdAt
        case updatedAt
        case nextPollAt
        case pollAttempts
        case version
        case providerState
        case providerPaymentID = "providerPaymentId"
    }
}

/// One line of an order's audit trail.
public struct OrderEvent: Sendable, Codable, Hashable {
    /// What kind of line it is.
    public enum Kind: String, Sendable, Codable, Hashable {
        /// The order was stored.
        case created
        /// A call to the provider and its result.
        case providerCall = "provider_call"
        /// A webhook arrived.
        case webhook
        /// A status poll (return page or reconciliation).
        case poll
        /// The state changed.
        case transition
        /// A person acted in the dashboard or API.
        case admin
        /// Paid was reported after, or before, a cancel or decline.
        case conflict
        /// A refund was carried out.
        case refund
    }

    /// The row's id, once stored.
    public var id: Int64?
    /// The order it belongs to.
    public var orderID: String
    /// When it happened.
    public var at: Date
    /// What kind of line it is.
    public var kind: Kind
    /// The state before a transition, when the line records one.
    public var fromState: OrderState?
    /// The state after a transition, when the line records one.
    public var toState: OrderState?
    /// Free text for people: what happened, never a secret.
    public var detail: String

    /// Creates a line of an order's audit trail.
    public init(orderID: String, at: Date, kind: Kind, fromState: OrderState? = nil, toState: OrderState? = nil, detail: String) {
        self.orderID = orderID
        self.at = at
        self.kind = kind
        self.fromState = fromState
        self.toState = toState
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case id
        case orderID = "orderId"
        case at
        case kind
        case fromState
        case toState
        case detail
    }
}

/// An event for the merchant's own systems, written to the outbox in the same transaction as
/// the change that caused it, and delivered at least once.
public struct OutboxMessage: Sendable, Codable, Hashable {
    /// Whether the merchant's systems have the event: not yet, yes, or given up on.
    public enum State: String, Sendable, Codable, Hashable { case pending, delivered, failed }

    /// The Standard Webhooks `webhook-id`, e.g. `msg_…`.
    public var id: String
    /// `order.paid`, `order.declined`, `order.cancelled`, `order.expired`, `refund.succeeded`.
    public var type: String
    /// The order the event is about.
    public var orderID: String
    /// The JSON body to deliver.
    public var payload: String
    /// When the event was written (with the change that caused it).
    public var createdAt: Date
    /// Whether it was delivered.
    public var state: State
    /// How many delivery attempts were made.
    public var attempts: Int
    /// When the next attempt is due.
    public var nextAttemptAt: Date
    /// The HTTP status of the last attempt, when it got one.
    public var lastStatus: Int?
    /// When the merchant's systems accepted it.
    public var deliveredAt: Date?

    /// Creates a pending event, due at once.
    public init(id: String, type: String, orderID: String, payload: String, createdAt: Date) {
        self.id = id
        self.type = type
        self.orderID = orderID
        self.payload = payload
        self.createdAt = createdAt
        self.state = .pending
        self.attempts = 0
        self.nextAttemptAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case type
        case orderID = "orderId"
        case payload
        case createdAt
        case state
        case attempts
        case nextAttemptAt
        case lastStatus
        case deliveredAt
    }
}

/// What an update of an order writes, all in one transaction: the new order, the audit
/// events, the outbox messages and, for a refund's outcome, the refund's new status.
public struct OrderChange: Sendable {
    /// The order after the change.
    public var order: GatewayOrder
    /// The lines the change adds to the order's audit trail.
    public var events: [OrderEvent]
    /// The events the change sends to the merchant's systems.
    public var outbox: [OutboxMessage]
    /// A refund's outcome. Written only while the refund is still unresolved (pending or
    /// unknown); otherwise the whole change is refused with
    /// ``StoreError/refundAlreadyResolved(_:)``, so no refund is settled twice.
    public var refund: RefundUpdate?
    /// The answer of the idempotent request that makes this change, stored in the same
    /// commit (its key was reserved by the request's first write), so that no second commit
    /// is needed to remember it.
    public var answer: IdempotentAnswer?

    /// Creates a change to write in one transaction.
    public init(
        order: GatewayOrder, events: [OrderEvent], outbox: [OutboxMessage] = [], refund: RefundUpdate? = nil, answer: IdempotentAnswer? = nil
    ) {
        self.order = order
        self.events = events
        self.outbox = outbox
        self.refund = refund
        self.answer = answer
    }
}

/// When an order is asked about next, as the end of a poll sets it
/// (``GatewayStore/finishPoll(from:owner:polledAt:_:schedule:)``).
public struct PollSchedule: Sendable, Hashable {
    /// The next poll; ignored (no poll) once the order is paid, declined or cancelled.
    public var at: Date?
    /// How many polls have been made, this one included.
    public var attempts: Int

    /// Creates a schedule.
    public init(at: Date?, attempts: Int) {
        self.at = at
        self.attempts = attempts
    }

    /// `order` as the schedule leaves it.
    public func applied(to order: GatewayOrder, polledAt: Date) -> GatewayOrder {
        var scheduled = order
        scheduled.nextPollAt = [.created, .pending, .expired].contains(order.state) ? at : nil
        scheduled.pollAttempts = attempts
        scheduled.lastPolledAt = polledAt
        return scheduled
    }
}

/// An idempotent request's answer, written with the change it reports.
public struct IdempotentAnswer: Sendable, Hashable {
    /// The key, reserved earlier by the same request.
    public var reservation: IdempotencyReservation
    public var response: IdempotentResponse
    /// Creates an answer to store.
    public init(reservation: IdempotencyReservation, response: IdempotentResponse) {
        self.reservation = reservation
        self.response = response
    }
}

/// Where a refund stands. `pending`: reserved, Kaspi being asked; `succeeded`: Kaspi refunded
/// it; `failed`: Kaspi refused it (the reservation is released); `unknown`: Kaspi's answer was
/// lost, so reconciliation (or a person) settles it from Kaspi's own record.
public enum RefundStatus: String, Sendable, Codable, Hashable, CaseIterable {
    case pending, succeeded, failed, unknown

    /// Whether the outcome is known.
    public var isResolved: Bool { self == .succeeded || self == .failed }
}

/// A refund as the gateway keeps it.
public struct RefundRecord: Sendable, Codable, Hashable {
    /// The gateway's id, e.g. `rf_…`.
    public var id: String
    /// The order refunded.
    public var orderID: String
    /// The amount refunded, in tenge.
    public var amount: Int
    /// Whether Kaspi confirmed it, refused it, or its outcome is not known yet.
    public var status: RefundStatus
    /// Why it stands where it does, for people.
    public var detail: String?
    /// When it was reserved.
    public var createdAt: Date
    /// When its status last changed.
    public var updatedAt: Date

    /// Creates a refund record.
    public init(id: String, orderID: String, amount: Int, status: RefundStatus, detail: String? = nil, createdAt: Date, updatedAt: Date? = nil) {
        self.id = id
        self.orderID = orderID
        self.amount = amount
        self.status = status
        self.detail = detail
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case orderID = "orderId"
        case amount
        case status
        case detail
        case createdAt
        case updatedAt
    }
}

/// A refund's new status, written with the order change that settles it.
public struct RefundUpdate: Sendable, Hashable {
    /// The refund whose record changes.
    public var refundID: String
    /// Its new status.
    public var status: RefundStatus
    /// How it was settled, for people.
    public var detail: String

    /// Creates a change to a refund's record.
    public init(refundID: String, status: RefundStatus, detail: String) {
        self.refundID = refundID
        self.status = status
        self.detail = detail
    }
}

/// Makes ids: a prefix and 20 random base-32 characters (100 bits).
public enum GatewayID {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")

    /// A new random id: `prefix_` and `length` characters of Crockford's base 32, lowercase.
    public static func make(_ prefix: String, length: Int = 20) -> String {
        prefix + "_" + randomCharacters(length)
    }

    /// `length` random characters of the alphabet.
    private static func randomCharacters(_ length: Int) -> String {
        // 5 random bits a character (the alphabet has 32), drawn 64 at a time: one system
        // call per 12 characters instead of one per character.
        var generator = SystemRandomNumberGenerator()
        var characters: [Character] = []
        characters.reserveCapacity(length)
        var pool: UInt64 = generator.next()
        var available = 64
        for _ in 0..<length {
            if available < 5 {
                pool = generator.next()
                available = 64
            }
            characters.append(alphabet[Int(pool & 31)])
            pool >>= 5
            available -= 5
        }
        return String(characters)
    }

    /// A new id that sorts by time: `prefix_`, 10 characters of the millisecond (base 32, so
    /// ids made later sort after), then 10 random ones; 20 characters like ``make(_:length:)``.
    /// Rows keyed by such ids are appended to their index instead of landing on a random
    /// page: the outbox's messages, one per transition, use it.
    public static func sortable(_ prefix: String, at date: Date = Date()) -> String {
        var milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded()))
        var time = [Character](repeating: "0", count: 10)
        for index in (0..<10).reversed() {
            time[index] = alphabet[Int(milliseconds & 31)]
            milliseconds >>= 5
        }
        return prefix + "_" + String(time) + randomCharacters(10)
    }
}

/// An invoice with a short public URL: whoever opens it can pay it once.
public struct PaymentLink: Sendable, Codable, Hashable {
    /// The short id in the public URL, e.g. `k7m2p9x4qz`.
    public var id: String
    /// The amount, in whole tenge.
    public var amount: Int
    /// What is paid for, shown on the link's page.
    public var description: String?
    /// The merchant's own reference, passed on to the orders that pay it.
    public var merchantReference: String?
    /// After this the link cannot be paid.
    public var expiresAt: Date?
    /// When it was created.
    public var createdAt: Date
    /// The order that currently pays this link, if one was started.
    public var orderID: String?

    /// Creates a payment link that no order pays yet.
    public init(
        id: String, amount: Int, description: String? = nil, merchantReference: String? = nil, expiresAt: Date? = nil, createdAt: Date,
        orderID: String? = nil
    ) {
        self.id = id
        self.amount = amount
        self.description = description
        self.merchantReference = merchantReference
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.orderID = orderID
    }

    enum CodingKeys: String, CodingKey {
        case id
        case amount
        case description
        case merchantReference
        case expiresAt
        case createdAt
        case orderID = "orderId"
    }
}

/// A device registered with a provider (the Kaspi QR API's `device/register`): the gateway's
/// till on one trade point of one organization. Its token is a credential: never logged, and
/// redacted wherever it is shown.
public struct ProviderDevice: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The gateway's id, e.g. `dev_…`.
    public var id: String
    /// The provider, e.g. `kaspi-qr`.
    public var provider: String
    /// The organization's BIN (r3; the certificate's or key's organization otherwise).
    public var organizationBin: String?
    /// The trade point the device belongs to, as Kaspi numbers it.
    public var tradePointID: Int64
    /// The id the device was registered under (Latin letters, digits, `-`, `_`).
    public var deviceID: String
    /// The provider's token for the device (secret).
    public var token: String
    /// Checkouts without a trade point of their own use the default device.
    public var isDefault: Bool
    /// Checkouts whose merchant reference starts with this use this device.
    public var referencePrefix: String?
    /// When it was registered.
    public var createdAt: Date
    /// When it was deleted at Kaspi; a deleted device takes no new payment.
    public var deletedAt: Date?

    /// Creates a device record.
    public init(
        id: String, provider: String, organizationBin: String?, tradePointID: Int64, deviceID: String, token: String, isDefault: Bool,
        referencePrefix: String? = nil, createdAt: Date, deletedAt: Date? = nil
    ) {
        self.id = id
        self.provider = provider
        self.organizationBin = organizationBin
        self.tradePointID = tradePointID
        self.deviceID = deviceID
        self.token = token
        self.isDefault = isDefault
        self.referencePrefix = referencePrefix
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }

    /// The token shortened to its ends.
    public var redactedToken: String { token.count <= 8 ? "…" : "\(token.prefix(4))…\(token.suffix(4))" }

    public var description: String {
        "ProviderDevice(\(id), trade point \(tradePointID), device \(deviceID), token \(redactedToken))"
    }

    enum CodingKeys: String, CodingKey {
        case id
        case provider
        case organizationBin
        case tradePointID = "tradePointId"
        case deviceID = "deviceId"
        case token
        case isDefault
        case referencePrefix
        case createdAt
        case deletedAt
    }
}
