import Foundation

/// Why a store refused or failed.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No such order.
    case orderNotFound(String)
    /// An order with this id or provider order id exists.
    case duplicateOrder(String)
    /// A refund would exceed what remains of the paid amount (enforced by the database).
    case refundExceedsPaid(orderID: String)
    /// The order is not paid, so it cannot be refunded.
    case notRefundable(orderID: String, state: OrderState)
    /// The same idempotency key was used with another request body.
    case idempotencyConflict(key: String)
    /// Another request with the same idempotency key reserved it first and is still at work.
    case idempotencyInProgress(key: String)
    /// The refund was settled already (by another instance, or a person).
    case refundAlreadyResolved(String)
    /// The database is newer than this program.
    case schemaTooNew(found: Int, known: Int)
    /// The database failed; the message is safe to log.
    case database(String)

    /// A stable machine code, such as `REFUND_EXCEEDS_PAID`.
    public var code: String {
        switch self {
        case .orderNotFound: "ORDER_NOT_FOUND"
        case .duplicateOrder: "DUPLICATE_ORDER"
        case .refundExceedsPaid: "REFUND_EXCEEDS_PAID"
        case .notRefundable: "NOT_REFUNDABLE"
        case .idempotencyConflict: "IDEMPOTENCY_CONFLICT"
        case .idempotencyInProgress: "IDEMPOTENCY_IN_PROGRESS"
        case .refundAlreadyResolved: "REFUND_ALREADY_RESOLVED"
        case .schemaTooNew: "SCHEMA_TOO_NEW"
        case .database: "DATABASE_ERROR"
        }
    }

    public var description: String {
        switch self {
        case .orderNotFound(let id): "\(code): no order \(id)."
        case .duplicateOrder(let id): "\(code): an order \(id) already exists."
        case .refundExceedsPaid(let id): "\(code): the refund would exceed what remains of order \(id)'s paid amount."
        case .notRefundable(let id, let state): "\(code): order \(id) is \(state.rawValue); only a paid order can be refunded."
        case .idempotencyConflict(let key): "\(code): the Idempotency-Key \(key) was used with a different request; use a new key."
        case .idempotencyInProgress(let key): "\(code): a request with the Idempotency-Key \(key) is still being processed."
        case .refundAlreadyResolved(let id): "\(code): refund \(id) was settled already."
        case .schemaTooNew(let found, let known):
            "\(code): the database has schema version \(found) but this program knows only up to \(known); upgrade KaspiKit."
        case .database(let message): "\(code): \(message)"
        }
    }
}

/// A filter and page for listing orders, newest first.
public struct OrderQuery: Sendable, Hashable {
    /// Only orders in these states; all when empty.
    public var states: Set<OrderState>
    /// Only orders created at or after this time.
    public var createdFrom: Date?
    /// Only orders created before this time.
    public var createdBefore: Date?
    /// Matches the order id, the provider order id or the merchant reference exactly.
    public var search: String?
    /// How many orders a page holds at most.
    public var limit: Int
    /// The cursor from the previous page.
    public var after: OrderCursor?

    /// Creates a query: newest first, 50 a page by default.
    public init(
        states: Set<OrderState> = [], createdFrom: Date? = nil, createdBefore: Date? = nil, search: String? = nil, limit: Int = 50,
        after: OrderCursor? = nil
    ) {
        self.states = states
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
        self.search = search
        self.limit = min(max(limit, 1), 200)
        self.after = after
    }
}

/// A position in the newest-first order list: the last order's creation time and id.
public struct OrderCursor: Sendable, Hashable {
    /// The last order's creation time, in milliseconds since 1970.
    public var createdAtMs: Int64
    /// The last order's id, which breaks ties between equal times.
    public var id: String

    /// Creates a cursor after the given order.
    public init(createdAtMs: Int64, id: String) {
        self.createdAtMs = createdAtMs
        self.id = id
    }

    /// A cursor after an outgoing event, for ``GatewayStore/outboxMessages(after:orderID:limit:)``.
    public init(after message: OutboxMessage) { self.init(createdAtMs: message.createdAt.ms, id: message.id) }

    /// A string for APIs: `<milliseconds>_<order id>`, which any position in the listing
    /// makes, so that every string of that shape (`^[0-9]{1,15}_[A-Za-z0-9_-]{1,128}$`) is a
    /// cursor the listing can continue from.
    public var token: String { "\(createdAtMs)_\(id)" }

    /// Parses ``token`` (or the base64 form earlier versions gave); nil when it is malformed.
    public init?(token: String) {
        let parts = token.split(separator: "_", maxSplits: 1)
        if parts.count == 2, parts[0].count <= 15, parts[0].allSatisfy(\.isASCII), let ms = Int64(parts[0]), ms >= 0,
            (1...128).contains(parts[1].count),
            parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        {
            self.createdAtMs = ms
            self.id = String(parts[1])
            return
        }
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8) else { return nil }
        let legacy = text.split(separator: ":", maxSplits: 1)
        guard legacy.count == 2, let ms = Int64(legacy[0]), !legacy[1].isEmpty else { return nil }
        self.createdAtMs = ms
        self.id = String(legacy[1])
    }
}

/// A stored response for an idempotency key.
public struct IdempotentResponse: Sendable, Hashable {
    /// The answer's HTTP status.
    public var status: Int
    /// The answer's body, as sent.
    public var body: String
    /// Creates a stored answer.
    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// An Idempotency-Key reserved in the same transaction as the first write of the work it
/// guards (storing the order, reserving the refund, storing the link): either both commit or
/// neither does, so a crash can never leave work done under a key that is not reserved, nor a
/// key reserved for work that never started.
public struct IdempotencyReservation: Sendable, Hashable {
    /// Whose key it is (derived from the API key).
    public var scope: String
    /// The merchant's `Idempotency-Key`.
    public var key: String
    /// The SHA-256 of the request's path and body.
    public var requestHash: String
    /// This request's own token: only it may write the key's final answer.
    public var owner: String
    /// When the request reserved it.
    public var at: Date
    /// A key stored before this has expired and may be reserved again.
    public var expiredBefore: Date

    /// Creates a reservation for one request.
    public init(scope: String, key: String, requestHash: String, owner: String, at: Date, expiredBefore: Date) {
        self.scope = scope
        self.key = key
        self.requestHash = requestHash
        self.owner = owner
        self.at = at
        self.expiredBefore = expiredBefore
    }
}

/// What is stored for an idempotency key.
public enum IdempotencyRecord: Sendable, Hashable {
    /// Reserved by a request that has not written its final answer (still at work, or
    /// interrupted by a crash) since `since`; `resource` is what its work created (an order,
    /// a refund), `owner` the request's token (``IdempotencyReservation/owner``).
    case inProgress(since: Date, resource: String?, owner: String?)
    /// The final answer, to be replayed.
    case done(IdempotentResponse)
}

/// One attempt to deliver an outbox message.
public struct DeliveryAttempt: Sendable, Hashable, Codable {
    /// The event delivered.
    public var messageID: String
    /// When the attempt was made.
    public var at: Date
    /// The merchant's HTTP status, when there was an answer.
    public var statusCode: Int?
    /// How long the attempt took, in milliseconds.
    public var latencyMs: Int
    /// Why there was no answer (`timeout`, `connection failed`), when there was none.
    public var error: String?
    /// Whether a person asked for it (a re-send from the dashboard or the API).
    public var manual: Bool

    /// Creates a record of one attempt.
    public init(messageID: String, at: Date, statusCode: Int?, latencyMs: Int, error: String?, manual: Bool = false) {
        self.messageID = messageID
        self.at = at
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
        self.manual = manual
    }

    enum CodingKeys: String, CodingKey {
        case messageID = "messageId"
        case at
        case statusCode
        case latencyMs
        case error
        case manual
    }
}

/// The gateway's storage, in the domain's words. Two implementations share one contract
/// test suite: ``SQLiteGatewayStore`` (the default) and ``PostgresGatewayStore`` (several
/// gateway instances on one database).
///
/// Every write that changes money or state runs in one transaction: the order, its audit
/// events and its outbox messages are written together or not at all. Background work is
/// claimed with leases that expire, so that no two instances do the same work at once and a
/// crashed instance's work is taken over.
public protocol GatewayStore: Sendable {
    /// Applies pending migrations.
    ///
    /// - Returns: the versions applied now (empty when up to date).
    func migrate() async throws -> [Int]

    /// The schema version in force.
    func schemaVersion() async throws -> Int

    /// Stores a new order with its `created` event, before the provider is called, and
    /// reserves `reserving` in the same transaction.
    ///
    /// - Throws: ``StoreError/duplicateOrder(_:)``, ``StoreError/idempotencyInProgress(key:)``
    ///   (nothing is stored then).
    func insert(_ order: GatewayOrder, reserving: IdempotencyReservation?) async throws

    func order(id: String) async throws -> GatewayOrder?
    func order(provider: String, providerOrderID: String) async throws -> GatewayOrder?
    /// The order the provider knows by its own payment id (the Kaspi QR API's).
    func order(provider: String, providerPaymentID: String) async throws -> GatewayOrder?
    func orders(_ query: OrderQuery) async throws -> (orders: [GatewayOrder], next: OrderCursor?)
    func events(orderID: String) async throws -> [OrderEvent]

    /// Reads the order, lets `decide` compute the change, and writes it (order, events,
    /// outbox) in one transaction with the order locked, so that concurrent updates of one
    /// order are applied one after the other.
    ///
    /// - Returns: the order after the change (unchanged when `decide` returned nil).
    /// - Throws: ``StoreError/orderNotFound(_:)``, or what `decide` throws.
    @discardableResult
    func update(orderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder

    /// Like ``update(orderID:_:)``, starting from `current`, a copy of the order read moments
    /// ago: when the stored order still has `current`'s version, the change is written without
    /// reading it again (one statement on PostgreSQL); otherwise the order is read, locked and
    /// `decide` called again, as ``update(orderID:_:)`` does. `decide` must depend only on
    /// its argument.
    @discardableResult
    func update(from current: GatewayOrder, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?) async throws -> GatewayOrder

    /// Finds the order by its provider's id and updates it as ``update(orderID:_:)`` does,
    /// in one write where the store can (SQLite: one job of a group commit).
    ///
    /// - Returns: the order before and after the change.
    /// - Throws: ``StoreError/orderNotFound(_:)`` (with the provider order id), or what `decide` throws.
    func update(
        provider: String, providerOrderID: String, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?
    ) async throws -> (before: GatewayOrder, after: GatewayOrder)

    /// Stores many new orders, each with its `created` event, in one transaction: all or none.
    /// For imports from another system and for benchmarks.
    ///
    /// - Throws: ``StoreError/duplicateOrder(_:)`` when any exists.
    func insert(contentsOf orders: [GatewayOrder]) async throws

    /// Adds a refund to a paid order in one conditional update: the database refuses a total
    /// above the paid amount, whatever runs concurrently.
    ///
    /// - Throws: ``StoreError/refundExceedsPaid(orderID:)``, ``StoreError/notRefundable(orderID:state:)``.
    func recordRefund(orderID: String, amount: Int, refundID: String, at now: Date, reserving: IdempotencyReservation?) async throws -> GatewayOrder

    /// An order's refunds, oldest first.
    func refunds(orderID: String) async throws -> [RefundRecord]

    /// Refunds whose outcome is not known: every `unknown` one, and `pending` ones created
    /// before `pendingBefore` (older than any call still in flight), oldest first.
    func unresolvedRefunds(pendingBefore: Date, limit: Int) async throws -> [RefundRecord]

    /// Claims up to `limit` orders due for a status poll (pending, `nextPollAt` passed), for
    /// `lease`; another claimer skips them until the lease ends.
    func claimOrdersToPoll(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [GatewayOrder]

    /// Sets when an order is polled next, and releases its lease.
    ///
    /// - Parameter polledAt: when the poll that got an answer asked (kept as
    ///   ``GatewayOrder/lastPolledAt``); nil for a poll that failed, which keeps the last one.
    func schedulePoll(orderID: String, at: Date?, attempts: Int, owner: String, polledAt: Date?) async throws

    /// Ends a poll that got an answer in one write where the store can: `decide`'s change,
    /// applied as ``update(from:_:)`` applies it, and the next poll, as
    /// ``schedulePoll(orderID:at:attempts:owner:polledAt:)`` sets it, from `schedule` called
    /// on the order after the change. A poll that changes nothing (most of them) is one
    /// statement on PostgreSQL and one job of the group commit on SQLite, where it was three.
    ///
    /// - Returns: the order after the change, with its schedule.
    /// - Throws: ``StoreError/orderNotFound(_:)``, or what `decide` throws.
    @discardableResult
    func finishPoll(
        from current: GatewayOrder, owner: String, polledAt: Date, _ decide: @escaping @Sendable (GatewayOrder) throws -> OrderChange?,
        schedule: @escaping @Sendable (GatewayOrder) -> PollSchedule
    ) async throws -> GatewayOrder

    /// Claims up to `limit` outbox messages due for delivery, oldest first. Each gets its own
    /// lease, sized for one delivery and staggered by its place in the batch (the first
    /// `lease`, the second `2 × lease`, …), so that a batch delivered one message after the
    /// other never outlives its leases.
    func claimOutbox(now: Date, limit: Int, owner: String, lease: TimeInterval) async throws -> [OutboxMessage]

    /// Records a delivery attempt, only while `owner` still holds the message's lease (another
    /// instance that took over a lapsed lease records its own); when it failed, schedules the
    /// next at `retryAt` (nil gives up).
    ///
    /// - Returns: whether the attempt was recorded.
    @discardableResult
    func recordDelivery(_ attempt: DeliveryAttempt, delivered: Bool, retryAt: Date?, owner: String) async throws -> Bool

    /// Gives up every lease `owner` holds, on orders and outbox messages: a restarted
    /// instance takes back its own claims at once instead of waiting for them to lapse.
    ///
    /// - Returns: how many leases were released.
    @discardableResult
    func releaseLeases(owner: String) async throws -> Int

    func outboxMessages(orderID: String?, limit: Int) async throws -> [OutboxMessage]
    /// Events in the order written (creation time, then id), after `cursor` (from the first
    /// when nil), of one order when given, at most `limit`.
    func outboxMessages(after cursor: OrderCursor?, orderID: String?, limit: Int) async throws -> [OutboxMessage]
    func deliveryAttempts(messageID: String) async throws -> [DeliveryAttempt]

    /// Makes a message due again now (a manual re-send).
    ///
    /// - Returns: false when there is no such message.
    @discardableResult
    func requeue(messageID: String, now: Date) async throws -> Bool

    /// Looks up what is stored for an idempotency key; a key stored before `expiredBefore`
    /// counts as absent.
    ///
    /// - Throws: ``StoreError/idempotencyConflict(key:)`` when the key was used with another request.
    func idempotencyRecord(scope: String, key: String, requestHash: String, expiredBefore: Date) async throws -> IdempotencyRecord?

    /// Stores the final answer for a reserved key, only if `reservation`'s request holds it.
    /// With `reservedOnly` false a key that no write reserved is stored now (work that wrote
    /// nothing); with true (an error answer) it is not, since nothing happened.
    func saveIdempotentResponse(_ reservation: IdempotencyReservation, response: IdempotentResponse, reservedOnly: Bool) async throws

    /// Takes over a key whose request is gone (its instance restarted, or its lease ran out),
    /// to resume its work: the key's owner becomes `newOwner` and its time `at`, only if
    /// `oldOwner` still holds it without an answer. Of several requests taking it over, one
    /// wins.
    ///
    /// - Returns: whether this call took it over.
    func takeOverIdempotencyKey(scope: String, key: String, from oldOwner: String, to newOwner: String, at: Date) async throws -> Bool

    /// Deletes the idempotency keys stored before `cutoff`.
    ///
    /// - Returns: how many were deleted.
    @discardableResult
    func deleteIdempotencyKeys(createdBefore cutoff: Date) async throws -> Int

    /// Stores a new payment link, reserving `reserving` in the same transaction.
    func insert(_ link: PaymentLink, reserving: IdempotencyReservation?) async throws
    func paymentLink(id: String) async throws -> PaymentLink?

    /// Points a link at the order that pays it, only if it still points at `expected` (so that
    /// two payers opening the link at once start one order).
    ///
    /// - Returns: whether the link now points at `orderId`.
    func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool

    /// The newest payment links first.
    func paymentLinks(limit: Int) async throws -> [PaymentLink]

    /// Reads a setting, or stores `value` when there is none yet; either way returns what is
    /// stored (the first writer wins, across instances).
    func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String

    /// Reads a setting.
    func setting(_ key: String) async throws -> String?

    /// Takes one slot of a sliding window shared by every instance on this database: at most
    /// `limit` slots of `key` within any `window`. Atomic across instances.
    ///
    /// - Returns: nil when the slot was taken; otherwise how many seconds to wait before the
    ///   oldest slot in the window frees (nothing was taken).
    func takeRateSlot(key: String, limit: Int, window: TimeInterval, now: Date) async throws -> TimeInterval?

    /// Stores a device, replacing the one with its id. With `isDefault`, every other device of
    /// the provider stops being the default in the same transaction.
    func save(_ device: ProviderDevice) async throws

    /// The provider's devices that are not deleted, oldest first.
    func devices(provider: String) async throws -> [ProviderDevice]

    /// Marks a device deleted.
    ///
    /// - Returns: false when there is no such live device.
    func deleteDevice(id: String, at: Date) async throws -> Bool

    /// Releases connections and files.
    func close() async throws
}

extension GatewayStore {
    /// Stores a new order with no idempotency key.
    public func insert(_ order: GatewayOrder) async throws { try await insert(order, reserving: nil) }

    /// Stores a new payment link with no idempotency key.
    public func insert(_ link: PaymentLink) async throws { try await insert(link, reserving: nil) }

    /// Reserves a refund with no idempotency key.
    public func recordRefund(orderID: String, amount: Int, refundID: String, at now: Date) async throws -> GatewayOrder {
        try await recordRefund(orderID: orderID, amount: amount, refundID: refundID, at: now, reserving: nil)
    }
}
