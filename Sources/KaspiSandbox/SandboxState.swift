import Foundation
import KaspiPay
import KaspiSupport
import Logging

/// An error the sandbox answers with, in the contract's shape.
struct SandboxAPIError: Error, Sendable {
    var code: String
    var status: Int
    var message: String
    var retryAfter: Int? = nil

    static func invalidRequest(_ message: String) -> Self { .init(code: "INVALID_REQUEST", status: 400, message: message) }
    static func notFound(_ message: String) -> Self { .init(code: "ORDER_NOT_FOUND", status: 404, message: message) }
    static let unauthorized = Self(code: "UNAUTHORIZED", status: 401, message: "Send Authorization: Bearer <your API key>.")
}

/// Where the sandbox keeps its state across restarts.
protocol SandboxPersistence: Sendable {
    func load() async throws -> (orders: [SandboxOrder], deliveries: [WebhookDelivery], clockOffset: Double)
    func save(order: SandboxOrder) async throws
    func save(delivery: WebhookDelivery) async throws
    func save(clockOffset: Double) async throws
    func deleteAll() async throws
    func close() async throws
    func loadQRRecords() async throws -> (devices: [SandboxQRDevice], purchases: [SandboxQRPurchase], returns: [SandboxQRReturn])
    func save(qrDevice: SandboxQRDevice) async throws
    func save(qrPurchase: SandboxQRPurchase) async throws
    func save(qrReturn: SandboxQRReturn) async throws
    func deleteQRRecords() async throws
}

/// All of the sandbox's mutable state. Every change happens inside this actor, so two
/// requests can never both create the same order; writes to the persistence are queued in
/// order and awaited before a response is sent.
actor SandboxState {
    let configuration: SandboxConfiguration
    let clock: SandboxClock
    let logger: Logger
    private(set) var tradePoints: [String: SandboxTradePoint] = [:]
    private var tradePointsByKey: [String: String] = [:]
    private var orders: [String: SandboxOrder] = [:]
    private var orderSequence: [String] = []
    /// Trade points by order id, for refunds that carry no trade point.
    private var ownersByOrderID: [String: [String]] = [:]
    /// Pending orders with a timer (QR expiry, scenario amount): the only ones a sweep visits.
    private var timedKeys: Set<String> = []
    /// Deliveries still to be sent (scheduled or held): the only ones the dispatcher visits.
    private var openDeliveries: Set<String> = []
    private var paymentTokens: [String: String] = [:]
    private var qrTokens: [String: String] = [:]
    private var deliveries: [String: WebhookDelivery] = [:]
    private var deliverySequence: [String] = []
    private var faults: [String: SandboxFaults] = [:]
    private var rateWindows: [String: [Date]] = [:]
    private let persistence: (any SandboxPersistence)?
    private var writeChain: Task<Void, any Error>? = nil
    private var random = SystemRandomNumberGenerator()

    init(configuration: SandboxConfiguration, clock: SandboxClock, persistence: (any SandboxPersistence)?, logger: Logger) {
        self.configuration = configuration
        self.clock = clock
        self.persistence = persistence
        self.logger = logger
        for point in configuration.tradePoints {
            tradePoints[point.id] = point
            tradePointsByKey[point.apiKey] = point.id
            if let configured = point.faults { faults[point.id] = configured }
        }
    }

    /// Loads persisted state.
    func restore() async throws {
        guard let persistence else { return }
        let (orders, deliveries, offset) = try await persistence.load()
        for order in orders.sorted(by: { $0.createdAt < $1.createdAt }) { index(order) }
        for delivery in deliveries.sorted(by: { $0.createdAt < $1.createdAt }) {
            self.deliveries[delivery.id] = delivery
            deliverySequence.append(delivery.id)
            if delivery.state == .pending {
                // An attempt in flight when the sandbox stopped is due again.
                var due = delivery
                if due.nextAttemptAt == nil, !due.heldForReorder { due.nextAttemptAt = clock.now }
                self.deliveries[delivery.id] = due
                openDeliveries.insert(delivery.id)
            }
        }
        if offset > clock.currentOffset { clock.advance(by: offset - clock.currentOffset) }
    }

    private static func key(_ tradePoint: String, _ orderID: String) -> String { tradePoint + "\u{0}" + orderID }

    private func index(_ order: SandboxOrder) {
        let key = Self.key(order.tradePointID, order.orderID)
        if orders[key] == nil {
            orderSequence.append(key)
            ownersByOrderID[order.orderID, default: []].append(order.tradePointID)
        }
        orders[key] = order
        if order.status == .pending, order.settleAt != nil || order.qrExpiresAt != nil {
            timedKeys.insert(key)
        } else {
            timedKeys.remove(key)
        }
        paymentTokens[order.paymentToken] = key
        if let token = order.qrToken { qrTokens[token] = key }
    }

    // MARK: Persistence

    private func persist(_ work: @escaping @Sendable (any SandboxPersistence) async throws -> Void) {
        guard let persistence else { return }
        let previous = writeChain
        writeChain = Task {
            _ = await previous?.result
            try await work(persistence)
        }
    }

    private func persist(_ order: SandboxOrder) { persist { try await $0.save(order: order) } }
    private func persist(_ delivery: WebhookDelivery) { persist { try await $0.save(delivery: delivery) } }

    /// Waits until every change so far is durably stored.
    func waitForWrites() async throws {
        try await writeChain?.value
    }

    // MARK: Trade points and limits

    func tradePoint(id: String) -> SandboxTradePoint? { tradePoints[id] }
    func tradePoint(apiKey: String) -> SandboxTradePoint? { tradePointsByKey[apiKey].flatMap { tradePoints[$0] } }

    /// Counts a request against the trade point's limit.
    ///
    /// - Returns: seconds to wait when over the limit, nil when allowed.
    func takeRateLimitSlot(_ tradePoint: String) -> Int? {
        guard let limit = configuration.rateLimitPerMinute, limit > 0 else { return nil }
        let now = clock.now
        let length = configuration.rateLimitWindowSeconds
        var window = rateWindows[tradePoint, default: []].filter { now.timeIntervalSince($0) < length }
        defer { rateWindows[tradePoint] = window }
        if window.count >= limit, let oldest = window.first {
            rateLimited += 1
            return max(1, Int((length - now.timeIntervalSince(oldest)).rounded(.up)))
        }
        window.append(now)
        return nil
    }

    /// How many requests the rate limit refused since the start.
    private(set) var rateLimited = 0

    func faults(for tradePoint: String) -> SandboxFaults { faults[tradePoint] ?? SandboxFaults() }

    func setFaults(_ value: SandboxFaults, for tradePoint: String) { faults[tradePoint] = value }

    /// Decides whether an API call of the trade point fails by injection.
    func injectedAPIFault(_ tradePoint: String) -> (latencyMs: Int, outcome: InjectedOutcome) {
        var current = faults(for: tradePoint)
        var outcome = InjectedOutcome.none
        if current.apiFailNext > 0 {
            current.apiFailNext -= 1
            faults[tradePoint] = current
            outcome = .fail
        } else if current.apiFailureRate > 0, Double.random(in: 0..<1, using: &random) < current.apiFailureRate {
            outcome = .fail
        } else if current.apiTimeoutRate > 0, Double.random(in: 0..<1, using: &random) < current.apiTimeoutRate {
            outcome = .timeout(current.apiTimeoutSeconds)
        }
        return (current.apiLatencyMs, outcome)
    }

    enum InjectedOutcome: Sendable {
        case none, fail
        case timeout(Double)
    }

    /// Whether the response to a write that just took effect is to be lost.
    func takeLostResponse(_ tradePoint: String) -> Bool {
        var current = faults(for: tradePoint)
        guard current.apiLoseResponseNext > 0 else { return false }
        current.apiLoseResponseNext -= 1
        faults[tradePoint] = current
        return true
    }

    // MARK: Orders

    func order(tradePoint: String, orderID: String) -> SandboxOrder? {
        sweep()
        return orders[Self.key(tradePoint, orderID)]
    }

    func order(paymentToken: String) -> SandboxOrder? {
        sweep()
        return paymentTokens[paymentToken].flatMap { orders[$0] }
    }

    func order(qrToken: String, tradePoint: String) -> SandboxOrder? {
        sweep()
        guard let order = qrTokens[qrToken].flatMap({ orders[$0] }), order.tradePointID == tradePoint else { return nil }
        return order
    }

    /// Every trade point that has an order with this id.
    func tradePoints(havingOrder orderID: String) -> [String] {
        ownersByOrderID[orderID] ?? []
    }

    func allOrders(tradePoint: String? = nil) -> [SandboxOrder] {
        sweep()
        return orderSequence.compactMap { orders[$0] }.filter { tradePoint == nil || $0.tradePointID == tradePoint }
    }

    /// Creates an order, or fails with `ORDER_ALREADY_EXISTS`.
    func create(
        tradePoint: String, orderID: String, amount: Int, description: String?, returnURL: String?, failURL: String?,
        kind: SandboxOrder.Kind
    ) throws(SandboxAPIError) -> SandboxOrder {
        let key = Self.key(tradePoint, orderID)
        guard orders[key] == nil else {
            throw SandboxAPIError(code: "ORDER_ALREADY_EXISTS", status: 409, message: "orderId \(orderID) is already used for this trade point.")
        }
        let now = clock.now
        var order = SandboxOrder(
            tradePointID: tradePoint, orderID: orderID, kind: kind, amount: amount, description: description,
            returnURL: returnURL, failURL: failURL, status: .pending, createdAt: now, updatedAt: now,
            paymentToken: randomHex(12))
        if kind == .qr {
            order.qrToken = "qr_" + randomHex(12)
            order.qrExpiresAt = now.addingTimeInterval(configuration.qrLifetimeSeconds)
        }
        if let scenario = ScenarioAmount.outcome(for: amount) {
            order.settleAt = now.addingTimeInterval(scenario.afterSeconds)
            order.settleStatus = scenario.status
        }
        index(order)
        persist(order)
        logger.info(
            "Order created", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "amount": "\(amount)", "kind": "\(kind.rawValue)"])
        sweep()
        return orders[key] ?? order
    }

    /// Moves a pending order to a final status and queues its webhook. A final order does
    /// not change.
    ///
    /// - Returns: the order after the change, or nil when there is no such order.
    @discardableResult
    func settle(tradePoint: String, orderID: String, to status: PaymentStatus, via: String) -> SandboxOrder? {
        let key = Self.key(tradePoint, orderID)
        guard var order = orders[key] else { return nil }
        guard order.status == .pending else { return order }
        order.status = status
        order.updatedAt = clock.now
        order.settleAt = nil
        order.settleStatus = nil
        if status == .approved { order.transactionID = String(UInt64.random(in: 100_000_000_000...999_999_999_999, using: &random)) }
        orders[key] = order
        timedKeys.remove(key)
        persist(order)
        logger.info("Order settled", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "status": "\(status)", "via": "\(via)"])
        queueWebhook(for: order)
        return order
    }

    /// Expires QR codes and settles scenario amounts whose time has come.
    func sweep() {
        let now = clock.now
        for key in timedKeys {
            guard let order = orders[key], order.status == .pending else { continue }
            if let at = order.settleAt, let status = order.settleStatus, at <= now {
                settle(tradePoint: order.tradePointID, orderID: order.orderID, to: status, via: "scenario")
            } else if let expires = order.qrExpiresAt, expires <= now {
                settle(tradePoint: order.tradePointID, orderID: order.orderID, to: .cancelled, via: "qr-expired")
            }
        }
        // Webhooks held for reordering are released after 30 s at the latest.
        for id in openDeliveries {
            guard var delivery = deliveries[id], delivery.heldForReorder, now.timeIntervalSince(delivery.createdAt) >= 30 else { continue }
            delivery.heldForReorder = false
            delivery.nextAttemptAt = now
            deliveries[id] = delivery
        }
    }

    /// Refunds part or all of an approved order.
    func refund(tradePoint: String, orderID: String, amount: Int, transactionID: String?) throws(SandboxAPIError) -> (SandboxOrder, SandboxRefund) {
        sweep()
        let key = Self.key(tradePoint, orderID)
        guard var order = orders[key] else { throw .notFound("No order \(orderID) for this trade point.") }
        guard order.status == .approved else {
            throw SandboxAPIError(
                code: "REFUND_NOT_ALLOWED", status: 409, message: "Order \(orderID) is \(order.status); only an APPROVED order can be refunded.")
        }
        if let transactionID, transactionID != order.transactionID {
            throw SandboxAPIError(code: "REFUND_NOT_ALLOWED", status: 409, message: "transactionId does not match the order's payment.")
        }
        guard order.refundedAmount + amount <= order.amount else {
            throw SandboxAPIError(
                code: "REFUND_NOT_ALLOWED", status: 409,
                message: "Refunding \(amount) would exceed the paid amount: \(order.amount - order.refundedAmount) remains.")
        }
        let refund = SandboxRefund(refundID: "RF-" + randomHex(8), amount: amount, at: clock.now)
        order.refundedAmount += amount
        order.refunds.append(refund)
        order.updatedAt = clock.now
        orders[key] = order
        persist(order)
        logger.info("Order refunded", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "amount": "\(amount)"])
        return (order, refund)
    }

    /// Forgets every order and webhook (and the trade point's faults), for a clean test.
    func reset(tradePoint: String? = nil) {
        let keep = orderSequence.filter { key in tradePoint.map { orders[key]?.tradePointID != $0 } ?? false }
        let removed = Set(orderSequence).subtracting(keep)
        for key in removed {
            if let order = orders[key] {
                paymentTokens[order.paymentToken] = nil
                if let token = order.qrToken { qrTokens[token] = nil }
            }
            orders[key] = nil
        }
        orderSequence = keep
        ownersByOrderID = [:]
        timedKeys = []
        for key in keep {
            guard let order = orders[key] else { continue }
            ownersByOrderID[order.orderID, default: []].append(order.tradePointID)
            if order.status == .pending, order.settleAt != nil || order.qrExpiresAt != nil { timedKeys.insert(key) }
        }
        deliverySequence = deliverySequence.filter { id in
            guard let delivery = deliveries[id] else { return false }
            if tradePoint == nil || delivery.tradePointID == tradePoint {
                deliveries[id] = nil
                openDeliveries.remove(id)
                return false
            }
            return true
        }
        if let tradePoint {
            faults[tradePoint] = nil
            rateWindows[tradePoint] = nil
        } else {
            faults = [:]
            rateWindows = [:]
        }
        let remainingOrders = orderSequence.compactMap { orders[$0] }
        let remainingDeliveries = deliverySequence.compactMap { deliveries[$0] }
        persist { persistence in
            try await persistence.deleteAll()
            for order in remainingOrders { try await persistence.save(order: order) }
            for delivery in remainingDeliveries { try await persistence.save(delivery: delivery) }
        }
    }

    func saveClock() {
        let offset = clock.currentOffset
        persist { try await $0.save(clockOffset: offset) }
    }

    // MARK: Webhooks

    private func queueWebhook(for order: SandboxOrder) {
        guard let point = tradePoints[order.tradePointID], let url = point.webhookURL, let key = try? APIKey(point.apiKey) else { return }
        let signature = Signature.webhook(orderID: order.orderID, amount: order.amount, apiKey: key)
        let body = WebhookBody(
            orderID: order.orderID, amount: order.amount, status: order.status, transactionID: order.transactionID, signature: signature
        ).json
        let now = clock.now
        let fault = faults(for: order.tradePointID)
        var delivery = WebhookDelivery(
            id: "wh_" + randomHex(8), tradePointID: order.tradePointID, orderID: order.orderID, status: order.status,
            url: url, body: body, createdAt: now, state: .pending, nextAttemptAt: now.addingTimeInterval(fault.webhookDelaySeconds))
        if fault.webhookDropRate > 0, Double.random(in: 0..<1, using: &random) < fault.webhookDropRate {
            delivery.state = .dropped
            delivery.nextAttemptAt = nil
        } else {
            if fault.webhookDuplicateRate > 0, Double.random(in: 0..<1, using: &random) < fault.webhookDuplicateRate {
                delivery.duplicate = true
            }
            if fault.webhookReorder {
                delivery.heldForReorder = true
                delivery.nextAttemptAt = nil
            }
        }
        deliveries[delivery.id] = delivery
        deliverySequence.append(delivery.id)
        if delivery.state == .pending { openDeliveries.insert(delivery.id) }
        persist(delivery)
    }

    /// Deliveries whose next attempt is due, marked as taken so that they are sent once.
    func takeDueDeliveries() -> [WebhookDelivery] {
        sweep()
        let now = clock.now
        var due: [WebhookDelivery] = []
        let open = openDeliveries.compactMap { deliveries[$0] }.sorted { $0.createdAt < $1.createdAt }
        for candidate in open {
            let id = candidate.id
            guard var delivery = deliveries[id], delivery.state == .pending, let at = delivery.nextAttemptAt, at <= now else { continue }
            delivery.nextAttemptAt = nil
            deliveries[id] = delivery
            due.append(delivery)
        }
        return due
    }

    /// Records an attempt and schedules the next one when it failed.
    func record(_ attempt: WebhookDelivery.Attempt, for id: String) {
        guard var delivery = deliveries[id] else { return }
        delivery.attempts.append(attempt)
        let acknowledged = attempt.responseCode.map { (200..<300).contains($0) } ?? false
        if acknowledged {
            delivery.state = .delivered
            delivery.nextAttemptAt = nil
        } else if !attempt.manual {
            let automatic = delivery.attempts.filter { !$0.manual }.count
            let schedule = configuration.webhookRetrySeconds
            if automatic <= schedule.count {
                delivery.nextAttemptAt = clock.now.addingTimeInterval(schedule[automatic - 1])
            } else {
                delivery.state = .failed
                delivery.nextAttemptAt = nil
            }
        } else if delivery.state == .pending, delivery.nextAttemptAt == nil, !delivery.heldForReorder {
            delivery.state = .failed
        }
        deliveries[id] = delivery
        if delivery.state == .pending { openDeliveries.insert(id) } else { openDeliveries.remove(id) }
        persist(delivery)
        // A sent webhook releases those held back for reordering.
        if !attempt.manual {
            for other in openDeliveries where other != id {
                guard var held = deliveries[other], held.heldForReorder, held.tradePointID == delivery.tradePointID else { continue }
                held.heldForReorder = false
                held.nextAttemptAt = clock.now
                deliveries[other] = held
            }
        }
    }

    func delivery(id: String) -> WebhookDelivery? { deliveries[id] }

    func allDeliveries(tradePoint: String? = nil, orderID: String? = nil) -> [WebhookDelivery] {
        deliverySequence.compactMap { deliveries[$0] }.filter {
            (tradePoint == nil || $0.tradePointID == tradePoint) && (orderID == nil || $0.orderID == orderID)
        }
    }

    /// Whether any delivery is waiting to be released for reordering or to be sent.
    var hasHeldDeliveries: Bool { deliveries.values.contains { $0.heldForReorder } }
}
