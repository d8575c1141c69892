import Foundation
import KaspiPay
import KaspiSupport
import Logging
import Synchronization

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
    /// Forgets the webhooks of one trade point, or all.
    func deleteWebhooks(tradePoint: String?) async throws
    /// The file, which the order archive reads.
    var path: String { get }
    func close() async throws
    /// The QR API's devices and return QRs (purchases are read through ``QRPurchaseArchive``).
    func loadQRRecords() async throws -> (devices: [SandboxQRDevice], returns: [SandboxQRReturn])
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
    /// The orders in memory: the recent ones, the live ones with a timer, and those not yet
    /// on disk. Every other order is in the archive and is read back when asked for.
    private var orders: [String: Resident] = [:]
    /// The order in which resident orders were taken in, oldest first (entries whose stamp no
    /// longer matches are stale); `evictionHead` is the next to look at.
    private var evictionQueue: [(key: String, stamp: Int)] = []
    private var evictionHead = 0
    private var nextStamp = 0
    /// The orders on disk.
    private let archive: SandboxOrderArchive
    /// How many orders memory holds at most, live ones and those not yet written aside.
    let residentLimit: Int
    /// Writes queued to the persistence, numbered; `writeProgress` has the last one done.
    private var writeCount = 0
    private let writeProgress = WriteProgress()
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

    /// An order in memory, with where its last version stands (see ``Resident/write``) and its
    /// place in the eviction queue.
    private struct Resident {
        var order: SandboxOrder
        /// 0: the archive holds this version; n > 0: the persistence's write number n holds
        /// it once done; ``Resident/unwritten``: only memory holds it (no data file: it is
        /// written to the archive when it leaves memory).
        var write: Int
        var stamp: Int
        /// Whether the archive has a row for this order (of this version or an older one).
        var inArchive: Bool
        static let unwritten = -1
    }

    init(
        configuration: SandboxConfiguration, clock: SandboxClock, persistence: (any SandboxPersistence)?, archive: SandboxOrderArchive,
        residentLimit: Int = 5_000, logger: Logger
    ) {
        self.configuration = configuration
        self.clock = clock
        self.persistence = persistence
        self.archive = archive
        self.residentLimit = max(1, residentLimit)
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
        // Only the orders with a timer; the others are read from the archive when asked for.
        for order in orders.sorted(by: { $0.createdAt < $1.createdAt }) { take(order, write: 0, inArchive: true) }
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
        trimDeliveries()
        if offset > clock.currentOffset { clock.advance(by: offset - clock.currentOffset) }
    }

    private static func key(_ tradePoint: String, _ orderID: String) -> String { tradePoint + "\u{0}" + orderID }

    private static func key(_ order: SandboxOrder) -> String { key(order.tradePointID, order.orderID) }

    /// Puts an order in memory (or updates it there) with its last write's number; `inArchive`
    /// when it was read from the archive.
    private func take(_ order: SandboxOrder, write: Int, inArchive: Bool = false) {
        let key = Self.key(order)
        if var resident = orders[key] {
            resident.order = order
            resident.write = write
            resident.inArchive = resident.inArchive || inArchive
            orders[key] = resident
        } else {
            nextStamp += 1
            orders[key] = Resident(order: order, write: write, stamp: nextStamp, inArchive: inArchive)
            evictionQueue.append((key, nextStamp))
        }
        if SandboxOrderArchive.isTimed(order) {
            timedKeys.insert(key)
        } else {
            timedKeys.remove(key)
        }
        paymentTokens[order.paymentToken] = key
        if let token = order.qrToken { qrTokens[token] = key }
        evict()
    }

    /// Stores a new or changed order: in memory now, and on disk through the persistence
    /// (queued, awaited before the answer); with no data file, in the archive when it leaves
    /// memory (many at once, in one transaction).
    private func store(_ order: SandboxOrder) {
        var write = Resident.unwritten
        if persistence != nil {
            writeCount += 1
            write = writeCount
            persist(order, number: write)
        }
        take(order, write: write)
    }

    /// Whether the archive holds this version of the order.
    private func archived(_ resident: Resident, done: Int) -> Bool {
        resident.write == 0 || (resident.write > 0 && resident.write <= done)
    }

    /// Whether the archive cannot take orders any more (a write failed): nothing leaves memory.
    private var archiveBroken = false

    /// Lets go of the oldest orders beyond the limit that have no timer and are on disk (or,
    /// with no data file, are written to the archive now, together).
    private func evict() {
        // After a failed write nothing queued later is ever marked done: do not look.
        guard orders.count > residentLimit, !archiveBroken, !writeProgress.stopped else { return }
        let done = writeProgress.done
        // Down to a little below the limit, so that orders leave (and are written) in groups
        // rather than one with every new order.
        let target = residentLimit - min(256, residentLimit / 8)
        var leaving: [(key: String, order: SandboxOrder, unwritten: Bool)] = []
        var looked = 0
        while orders.count - leaving.count > target, evictionHead < evictionQueue.count, looked < 1024 {
            looked += 1
            let (key, stamp) = evictionQueue[evictionHead]
            evictionHead += 1
            guard let resident = orders[key], resident.stamp == stamp else { continue }
            let unwritten = resident.write == Resident.unwritten
            guard unwritten || archived(resident, done: done), !timedKeys.contains(key) else {
                // Not on disk yet, or live: look again later.
                nextStamp += 1
                orders[key]?.stamp = nextStamp
                evictionQueue.append((key, nextStamp))
                continue
            }
            leaving.append((key, resident.order, unwritten))
        }
        let unwritten = leaving.filter(\.unwritten).map(\.order)
        if !unwritten.isEmpty {
            do {
                try archive.save(unwritten)
            } catch {
                // They stay in memory for good, and so does everything after them.
                logger.error("The sandbox could not write orders aside; they stay in memory", metadata: ["error": "\(error)"])
                archiveBroken = true
                for (key, _, _) in leaving {
                    nextStamp += 1
                    orders[key]?.stamp = nextStamp
                    evictionQueue.append((key, nextStamp))
                }
                return
            }
        }
        for (key, order, _) in leaving {
            orders[key] = nil
            paymentTokens[order.paymentToken] = nil
            if let token = order.qrToken { qrTokens[token] = nil }
        }
        if evictionHead > 4096, evictionHead * 2 > evictionQueue.count {
            evictionQueue.removeFirst(evictionHead)
            evictionHead = 0
        }
    }

    /// An order from memory, or from the archive (then kept in memory a while).
    private func lookup(_ key: String, _ read: (SandboxOrderArchive) throws -> SandboxOrder?) -> SandboxOrder? {
        if let resident = orders[key] { return resident.order }
        return fromArchive(read)
    }

    private func fromArchive(_ read: (SandboxOrderArchive) throws -> SandboxOrder?) -> SandboxOrder? {
        let found: SandboxOrder?
        do {
            found = try read(archive)
        } catch {
            logger.error("The sandbox could not read its order archive", metadata: ["error": "\(error)"])
            return nil
        }
        guard let found else { return nil }
        if let resident = orders[Self.key(found)] { return resident.order }
        take(found, write: 0, inArchive: true)
        return found
    }

    /// How many orders are in memory now (the rest are in the archive).
    var residentCount: Int { orders.count }

    /// How many orders there are: the archive's and those only memory holds (an order read
    /// back from the archive and changed since is counted once).
    func orderCount() -> Int {
        guard let stored = try? archive.count() else { return -1 }
        let done = writeProgress.done
        return stored + orders.values.count { !$0.inArchive && !archived($0, done: done) }
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

    /// Queues an order's write; its number is marked done once it is on disk.
    private func persist(_ order: SandboxOrder, number: Int) {
        let progress = writeProgress
        persist { persistence in
            do {
                try await persistence.save(order: order)
                progress.finished(number)
            } catch {
                progress.failed(number)
                throw error
            }
        }
    }
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

    /// How long the answer to a write that just took effect is held, in milliseconds.
    func answerDelay(_ tradePoint: String) -> Int { faults(for: tradePoint).apiAnswerDelayMs }

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
        return lookup(Self.key(tradePoint, orderID)) { try $0.order(tradePoint: tradePoint, orderID: orderID) }
    }

    func order(paymentToken: String) -> SandboxOrder? {
        sweep()
        if let key = paymentTokens[paymentToken] { return orders[key]?.order }
        return fromArchive { try $0.order(paymentToken: paymentToken) }
    }

    func order(qrToken: String, tradePoint: String) -> SandboxOrder? {
        sweep()
        let order = qrTokens[qrToken].flatMap { orders[$0]?.order } ?? fromArchive { try $0.order(qrToken: qrToken) }
        guard let order, order.tradePointID == tradePoint else { return nil }
        return order
    }

    /// Every trade point that has an order with this id.
    func tradePoints(havingOrder orderID: String) -> [String] {
        var points = (try? archive.tradePoints(havingOrder: orderID)) ?? []
        // Orders only memory holds (a queued write, or no data file).
        for resident in orders.values where resident.order.orderID == orderID && !points.contains(resident.order.tradePointID) {
            points.append(resident.order.tradePointID)
        }
        return points
    }

    /// Orders oldest first (the last `limit` when given): the archive's, with the newer
    /// copies memory holds and the orders only memory holds.
    func allOrders(tradePoint: String? = nil, last limit: Int? = nil) -> [SandboxOrder] {
        sweep()
        var listed: [SandboxOrder]
        do {
            listed = try archive.orders(tradePoint: tradePoint, last: limit)
        } catch {
            logger.error("The sandbox could not read its order archive", metadata: ["error": "\(error)"])
            listed = []
        }
        var seen = Set<String>()
        for index in listed.indices {
            let key = Self.key(listed[index])
            seen.insert(key)
            if let resident = orders[key] { listed[index] = resident.order }
        }
        listed += orders.values.filter { !seen.contains(Self.key($0.order)) && (tradePoint == nil || $0.order.tradePointID == tradePoint) }
            .map(\.order)
        // Creation order (the archive keeps the order in which orders left memory).
        listed = listed.enumerated().sorted { ($0.element.createdAt, $0.offset) < ($1.element.createdAt, $1.offset) }.map(\.element)
        if let limit, listed.count > limit { listed.removeFirst(listed.count - limit) }
        return listed
    }

    /// Creates an order, or fails with `ORDER_ALREADY_EXISTS`.
    func create(
        tradePoint: String, orderID: String, amount: Int, description: String?, returnURL: String?, failURL: String?,
        kind: SandboxOrder.Kind
    ) throws(SandboxAPIError) -> SandboxOrder {
        let key = Self.key(tradePoint, orderID)
        guard lookup(key, { try $0.order(tradePoint: tradePoint, orderID: orderID) }) == nil else {
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
        store(order)
        logger.info(
            "Order created", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "amount": "\(amount)", "kind": "\(kind.rawValue)"])
        sweep()
        return orders[key]?.order ?? order
    }

    /// Moves a pending order to a final status and queues its webhook. A final order does
    /// not change.
    ///
    /// - Returns: the order after the change, or nil when there is no such order.
    @discardableResult
    func settle(tradePoint: String, orderID: String, to status: PaymentStatus, via: String) -> SandboxOrder? {
        let key = Self.key(tradePoint, orderID)
        guard var order = lookup(key, { try $0.order(tradePoint: tradePoint, orderID: orderID) }) else { return nil }
        guard order.status == .pending else { return order }
        order.status = status
        order.updatedAt = clock.now
        order.settleAt = nil
        order.settleStatus = nil
        if status == .approved { order.transactionID = String(UInt64.random(in: 100_000_000_000...999_999_999_999, using: &random)) }
        store(order)
        logger.info("Order settled", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "status": "\(status)", "via": "\(via)"])
        queueWebhook(for: order)
        return order
    }

    /// Expires QR codes and settles scenario amounts whose time has come.
    func sweep() {
        let now = clock.now
        for key in timedKeys {
            guard let order = orders[key]?.order, order.status == .pending else { continue }
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
        guard var order = lookup(key, { try $0.order(tradePoint: tradePoint, orderID: orderID) }) else {
            throw .notFound("No order \(orderID) for this trade point.")
        }
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
        store(order)
        logger.info("Order refunded", metadata: ["tradePoint": "\(tradePoint)", "orderId": "\(orderID)", "amount": "\(amount)"])
        return (order, refund)
    }

    /// Forgets every order and webhook (and the trade point's faults), for a clean test.
    func reset(tradePoint: String? = nil) async {
        // Writes queued before the reset land first, so none brings a forgotten order back.
        _ = await writeChain?.result
        for (key, resident) in orders where tradePoint == nil || resident.order.tradePointID == tradePoint {
            paymentTokens[resident.order.paymentToken] = nil
            if let token = resident.order.qrToken { qrTokens[token] = nil }
            orders[key] = nil
            timedKeys.remove(key)
        }
        do {
            try archive.delete(tradePoint: tradePoint)
        } catch {
            logger.error("The sandbox could not clear its order archive", metadata: ["error": "\(error)"])
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
        // On disk too: the log in memory is only the recent part of it.
        persist { try await $0.deleteWebhooks(tradePoint: tradePoint) }
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
        trimDeliveries()
    }

    /// Lets go of the oldest finished deliveries beyond the memory limit (`memoryOrderLimit`):
    /// the webhook log in memory keeps the recent ones and every one still to be sent; with a
    /// data file, every delivery stays in it. Trimmed in groups, so the cost per webhook is flat.
    private func trimDeliveries() {
        guard deliverySequence.count > residentLimit + max(64, residentLimit / 8) else { return }
        var excess = deliverySequence.count - residentLimit
        var kept: [String] = []
        kept.reserveCapacity(residentLimit)
        for id in deliverySequence {
            if excess > 0, let delivery = deliveries[id], delivery.state != .pending, !delivery.heldForReorder {
                deliveries[id] = nil
                excess -= 1
                continue
            }
            kept.append(id)
        }
        deliverySequence = kept
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

/// How far the queued writes have got: every write numbered up to `done` is on disk. A write
/// that failed stops it there, so no order whose write failed is ever let go of.
final class WriteProgress: Sendable {
    private let state = Mutex((done: 0, failed: false))

    var done: Int { state.withLock { $0.done } }

    /// Whether a write failed, so that `done` no longer moves.
    var stopped: Bool { state.withLock { $0.failed } }

    func finished(_ number: Int) {
        state.withLock { if !$0.failed { $0.done = max($0.done, number) } }
    }

    func failed(_ number: Int) {
        state.withLock { $0.failed = true }
    }
}
