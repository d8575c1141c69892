import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import PostgresNIO
import Testing

/// One contract, every store.
@Suite("Gateway store contract")
struct StoreContractTests {
    @Test(arguments: Backend.available)
    func updateFromACopyWritesOnceOrDecidesAgainOnTheStoredOrder(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        let at = order.createdAt.addingTimeInterval(5)
        // A current copy: written as it is.
        let pending = try await store.update(from: order) {
            OrderStateMachine.providerAccepted($0, paymentURL: "https://pay.example/1", qrToken: nil, at: at, firstPollAt: at)
        }
        #expect(pending.state == .pending)
        #expect(try await store.order(id: order.id) == pending)
        // A stale copy (version 1, stored 2): decided again on the stored order, so the
        // payment URL written meanwhile survives.
        let paid = try await store.update(from: order) { OrderStateMachine.apply(.approved, transactionID: "tx-1", source: .webhook, to: $0, at: at) }
        #expect(paid.state == .paid)
        #expect(paid.paymentURL == "https://pay.example/1")
        #expect(paid.version == pending.version + 1)
        let stored = try #require(try await store.order(id: order.id))
        #expect(stored == paid)
        let events = try await store.events(orderID: order.id)
        #expect(events.filter { $0.kind == .transition && $0.toState == .paid }.count == 1)
        #expect(try await store.outboxMessages(orderID: order.id, limit: 10).map(\.type).contains("order.paid"))
        // An order that is not there.
        var ghost = makeOrder()
        ghost.id = "ord_ghost"
        await #expect(throws: StoreError.orderNotFound("ord_ghost")) {
            try await store.update(from: ghost) { OrderStateMachine.apply(.approved, transactionID: nil, source: .webhook, to: $0, at: at) }
        }
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func updateByProviderOrderIDReturnsBeforeAndAfter(_ backend: Backend) async throws {
        struct Refused: Error {}
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        let at = order.createdAt.addingTimeInterval(5)
        await #expect(throws: StoreError.orderNotFound("kp_nope")) {
            try await store.update(provider: "kaspi-pay", providerOrderID: "kp_nope") { _ in nil }
        }
        await #expect(throws: Refused.self) {
            try await store.update(provider: "kaspi-pay", providerOrderID: order.providerOrderID) { _ in throw Refused() }
        }
        #expect(try await store.order(id: order.id) == order)
        let (before, after) = try await store.update(provider: "kaspi-pay", providerOrderID: order.providerOrderID) {
            OrderStateMachine.apply(.approved, transactionID: "tx-9", source: .webhook, to: $0, at: at)
        }
        #expect(before == order)
        #expect(after.state == .paid && after.transactionID == "tx-9")
        #expect(try await store.order(id: order.id) == after)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func bulkInsertStoresAllOrNone(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let orders = (0..<1200).map { makeOrder("bulk-\($0)") }
        try await store.insert(contentsOf: orders)
        #expect(try await store.order(id: orders[1199].id) == orders[1199])
        #expect(try await store.events(orderID: orders[0].id).map(\.kind) == [.created])
        // The second chunk holds a duplicate: the first chunk must not stay either.
        var again = (0..<1100).map { makeOrder("again-\($0)") }
        again[1050].providerOrderID = orders[5].providerOrderID
        await #expect(throws: StoreError.self) { try await store.insert(contentsOf: again) }
        #expect(try await store.order(id: again[0].id) == nil)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func providerStateTravelsWithEveryWrite(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        var order = makeOrder("with-state")
        order.providerState = #"{"paymentId":"12000000001"}"#
        try await store.insert(order)
        #expect(try await store.order(id: order.id)?.providerState == order.providerState)
        // Both update paths write it: the locked one and the one from a copy just read.
        let waited = try await store.update(orderID: order.id) { current in
            var next = current
            next.providerState = #"{"paymentId":"12000000001","firstWaitAt":1}"#
            next.version += 1
            return OrderChange(order: next, events: [OrderEvent(orderID: current.id, at: Date(), kind: .poll, detail: "Wait")])
        }
        #expect(try await store.order(id: order.id)?.providerState == waited.providerState)
        let paid = try await store.update(from: waited) { current in
            OrderStateMachine.apply(.approved, transactionID: "tx", source: .poll, to: current, at: Date())
        }
        #expect(try await store.order(id: order.id)?.providerState == #"{"paymentId":"12000000001","firstWaitAt":1}"#)
        #expect(paid.state == .paid)
        // The provider's payment id, set when the provider accepts the order, finds it.
        var accepted = makeOrder("with-payment-id")
        try await store.insert(accepted)
        accepted = try await store.update(from: accepted) {
            OrderStateMachine.providerAccepted($0, paymentURL: nil, qrToken: nil, at: Date(), firstPollAt: Date(), providerPaymentID: "12000000042")
        }
        #expect(try await store.order(provider: accepted.provider, providerPaymentID: "12000000042")?.id == accepted.id)
        #expect(try await store.order(provider: accepted.provider, providerPaymentID: "1") == nil)
        var bulk = (0..<3).map { makeOrder("bulk-state-\($0)") }
        bulk[1].providerState = "{}"
        try await store.insert(contentsOf: bulk)
        #expect(try await store.order(id: bulk[1].id)?.providerState == "{}")
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func devicesAreStoredWithOneDefault(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let first = ProviderDevice(
            id: "dev_1", provider: "kaspi-qr", organizationBin: "123456789012", tradePointID: 19, deviceID: "gw-1", token: "secret-token-1",
            isDefault: true, createdAt: now)
        var second = ProviderDevice(
            id: "dev_2", provider: "kaspi-qr", organizationBin: "123456789012", tradePointID: 104039, deviceID: "gw-2", token: "secret-token-2",
            isDefault: false, referencePrefix: "B2-", createdAt: now.addingTimeInterval(1))
        try await store.save(first)
        try await store.save(second)
        #expect(try await store.devices(provider: "kaspi-qr") == [first, second])
        #expect(try await store.devices(provider: "kaspi-pay").isEmpty)
        second.isDefault = true
        try await store.save(second)
        let devices = try await store.devices(provider: "kaspi-qr")
        #expect(devices.map(\.isDefault) == [false, true])
        #expect(try await store.deleteDevice(id: "dev_2", at: now.addingTimeInterval(5)))
        #expect(try await !store.deleteDevice(id: "dev_2", at: now.addingTimeInterval(6)))
        #expect(try await store.devices(provider: "kaspi-qr").map(\.id) == ["dev_1"])
        #expect(!"\(first)".contains("secret-token-1"))
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func migrationsAreVersionedAndIdempotent(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        #expect(try await store.schemaVersion() == 10)
        #expect(try await store.migrate() == [])
        #expect(try await store.schemaVersion() == 10)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func ordersAreStoredWithTheirCreatedEvent(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        #expect(try await store.order(id: order.id) == order)
        #expect(try await store.order(provider: "kaspi-pay", providerOrderID: order.providerOrderID) == order)
        #expect(try await store.order(id: "ord_missing") == nil)
        let events = try await store.events(orderID: order.id)
        #expect(events.map(\.kind) == [.created])
        var duplicate = makeOrder()
        duplicate.providerOrderID = order.providerOrderID
        await #expect(throws: StoreError.duplicateOrder(order.providerOrderID)) { try await store.insert(duplicate) }
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func transitionsWriteOrderEventsAndOutboxTogether(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        let now = order.createdAt.addingTimeInterval(5)
        let pending = try await store.update(orderID: order.id) {
            OrderStateMachine.providerAccepted(
                $0, paymentURL: "https://pay.example/p/1", qrToken: nil, at: now, firstPollAt: now.addingTimeInterval(60))
        }
        #expect(pending.state == .pending && pending.paymentURL == "https://pay.example/p/1" && pending.version == 2)
        let paid = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.approved, transactionID: "TX-1", source: .webhook, to: $0, at: now)
        }
        #expect(paid.state == .paid && paid.transactionID == "TX-1" && paid.nextPollAt == nil)
        #expect(try await store.order(id: order.id) == paid)
        // A duplicate webhook changes nothing and writes nothing.
        let again = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.approved, transactionID: "TX-1", source: .webhook, to: $0, at: now)
        }
        #expect(again == paid)
        let events = try await store.events(orderID: order.id)
        #expect(events.map(\.kind) == [.created, .transition, .transition])
        #expect(events.last?.fromState == .pending && events.last?.toState == .paid)
        let outbox = try await store.outboxMessages(orderID: order.id, limit: 10)
        #expect(outbox.map(\.type) == ["order.paid"])
        #expect(outbox[0].payload.contains(#""transactionId":"TX-1""#))
        // A failing decision writes nothing at all.
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await store.update(orderID: order.id) { _ in throw Boom() } }
        await #expect(throws: StoreError.orderNotFound("ord_nope")) { try await store.update(orderID: "ord_nope") { _ in nil } }
        #expect(try await store.events(orderID: order.id).count == 3)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func approvedWinsAndConflictsAreFlagged(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        let now = order.createdAt
        _ = try await store.update(orderID: order.id) { OrderStateMachine.apply(.cancelled, transactionID: nil, source: .webhook, to: $0, at: now) }
        let paid = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.approved, transactionID: "TX-9", source: .poll, to: $0, at: now)
        }
        #expect(paid.state == .paid && paid.needsReview)
        let late = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.declined, transactionID: nil, source: .webhook, to: $0, at: now)
        }
        #expect(late.state == .paid)
        let kinds = try await store.events(orderID: order.id).map(\.kind)
        #expect(kinds == [.created, .transition, .conflict, .transition])
        #expect(try await store.outboxMessages(orderID: order.id, limit: 10).map(\.type).sorted() == ["order.cancelled", "order.paid"])

        let other = makeOrder("cart-2")
        try await store.insert(other)
        _ = try await store.update(orderID: other.id) { OrderStateMachine.apply(.approved, transactionID: "TX-2", source: .webhook, to: $0, at: now) }
        let declinedLate = try await store.update(orderID: other.id) {
            OrderStateMachine.apply(.declined, transactionID: nil, source: .webhook, to: $0, at: now)
        }
        #expect(declinedLate.state == .paid && declinedLate.needsReview)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func concurrentUpdatesOfOneOrderAreSerialized(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    _ = try await store.update(orderID: order.id) { current in
                        var next = current
                        next.pollAttempts += 1
                        next.version += 1
                        return OrderChange(
                            order: next, events: [OrderEvent(orderID: current.id, at: current.createdAt, kind: .poll, detail: "poll \(i)")])
                    }
                }
            }
            try await group.waitForAll()
        }
        let final = try #require(try await store.order(id: order.id))
        #expect(final.pollAttempts == 20 && final.version == 21)
        #expect(try await store.events(orderID: order.id).filter { $0.kind == .poll }.count == 20)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func concurrentRefundsNeverExceedThePaidAmount(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder(amount: 10000)
        try await store.insert(order)
        await #expect(throws: StoreError.notRefundable(orderID: order.id, state: .created)) {
            _ = try await store.recordRefund(orderID: order.id, amount: 100, refundID: "rf_0", at: Date())
        }
        _ = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.approved, transactionID: "TX", source: .webhook, to: $0, at: Date())
        }
        // 25 refunds of 1000 race for 10000.
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<25 {
                group.addTask {
                    do {
                        _ = try await store.recordRefund(orderID: order.id, amount: 1000, refundID: "rf_\(i)", at: Date())
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { $0 }.count == 10)
        let final = try #require(try await store.order(id: order.id))
        #expect(final.refundedAmount == 10000)
        #expect(try await store.events(orderID: order.id).filter { $0.kind == .refund }.count == 10)
        await #expect(throws: StoreError.refundExceedsPaid(orderID: order.id)) {
            _ = try await store.recordRefund(orderID: order.id, amount: 1, refundID: "rf_x", at: Date())
        }
        await #expect(throws: StoreError.orderNotFound("ord_nope")) {
            _ = try await store.recordRefund(orderID: "ord_nope", amount: 1, refundID: "rf_y", at: Date())
        }
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func listingFiltersAndPagesWithACursor(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        var ids: [String] = []
        for i in 0..<7 {
            let order = makeOrder("cart-\(i)", at: base.addingTimeInterval(Double(i)))
            try await store.insert(order)
            ids.append(order.id)
            if i % 2 == 0 {
                _ = try await store.update(orderID: order.id) {
                    OrderStateMachine.apply(.approved, transactionID: "T\(i)", source: .webhook, to: $0, at: base)
                }
            }
        }
        let first = try await store.orders(OrderQuery(limit: 3))
        #expect(first.orders.map(\.id) == Array(ids.reversed().prefix(3)))
        let second = try await store.orders(OrderQuery(limit: 3, after: first.next))
        #expect(second.orders.map(\.id) == Array(ids.reversed().dropFirst(3).prefix(3)))
        let third = try await store.orders(OrderQuery(limit: 3, after: second.next))
        #expect(third.orders.map(\.id) == [ids[0]] && third.next == nil)
        #expect(try await store.orders(OrderQuery(states: [.paid])).orders.count == 4)
        #expect(try await store.orders(OrderQuery(states: [.paid, .created])).orders.count == 7)
        #expect(try await store.orders(OrderQuery(createdFrom: base.addingTimeInterval(5))).orders.count == 2)
        #expect(try await store.orders(OrderQuery(createdBefore: base.addingTimeInterval(2))).orders.count == 2)
        #expect(try await store.orders(OrderQuery(search: "cart-3")).orders.map(\.id) == [ids[3]])
        let cursor = try #require(first.next)
        #expect(OrderCursor(token: cursor.token) == cursor)
        #expect(OrderCursor(token: "garbage") == nil)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func pollingIsClaimedWithLeases(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        let due = makeOrder("due", at: base)
        let later = makeOrder("later", at: base.addingTimeInterval(1000))
        try await store.insert(due)
        try await store.insert(later)
        let now = base.addingTimeInterval(61)
        let a = try await store.claimOrdersToPoll(now: now, limit: 10, owner: "instance-a", lease: 30)
        #expect(a.map(\.id) == [due.id])
        // Claimed: another instance gets nothing until the lease ends.
        #expect(try await store.claimOrdersToPoll(now: now, limit: 10, owner: "instance-b", lease: 30).isEmpty)
        let b = try await store.claimOrdersToPoll(now: now.addingTimeInterval(31), limit: 10, owner: "instance-b", lease: 30)
        #expect(b.map(\.id) == [due.id])
        // The owner reschedules and releases it; a paid order is never polled again.
        try await store.schedulePoll(orderID: due.id, at: now.addingTimeInterval(100), attempts: 1, owner: "instance-b", polledAt: now)
        #expect(try await store.order(id: due.id)?.pollAttempts == 1)
        // The answered poll's time is kept; a failed poll's schedule keeps it.
        #expect(try await store.order(id: due.id)?.lastPolledAt == now)
        try await store.schedulePoll(orderID: due.id, at: now.addingTimeInterval(100), attempts: 2, owner: "instance-b", polledAt: nil)
        #expect(try await store.order(id: due.id)?.lastPolledAt == now)
        #expect(try await store.claimOrdersToPoll(now: now.addingTimeInterval(99), limit: 10, owner: "a", lease: 30).isEmpty)
        _ = try await store.update(orderID: due.id) { OrderStateMachine.apply(.approved, transactionID: "T", source: .webhook, to: $0, at: now) }
        #expect(try await store.claimOrdersToPoll(now: now.addingTimeInterval(10_000), limit: 10, owner: "a", lease: 30).map(\.id) == [later.id])
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func aPollsChangeAndItsScheduleAreWrittenTogether(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        let order = makeOrder("poll", at: base)
        try await store.insert(order)
        let accepted = try await store.update(orderID: order.id) {
            OrderStateMachine.providerAccepted($0, paymentURL: nil, qrToken: nil, at: base, firstPollAt: base.addingTimeInterval(60))
        }
        let now = base.addingTimeInterval(61)
        // Nothing to change (most polls): the schedule alone; the version stays, the lease is released.
        let first = try #require(try await store.claimOrdersToPoll(now: now, limit: 10, owner: "a", lease: 60).first)
        let unchanged = try await store.finishPoll(from: first, owner: "a", polledAt: now, { _ in nil }) { _ in
            PollSchedule(at: now.addingTimeInterval(5), attempts: 1)
        }
        #expect(unchanged.version == accepted.version && unchanged.state == .pending)
        #expect(unchanged.nextPollAt == now.addingTimeInterval(5) && unchanged.pollAttempts == 1 && unchanged.lastPolledAt == now)
        #expect(try await store.order(id: order.id) == unchanged)
        #expect(try await store.claimOrdersToPoll(now: now.addingTimeInterval(4), limit: 10, owner: "b", lease: 60).isEmpty)
        let second = try #require(try await store.claimOrdersToPoll(now: now.addingTimeInterval(5), limit: 10, owner: "b", lease: 60).first)
        // The claimed copy goes stale (the provider's state recorded meanwhile): the change is
        // decided again on the stored order, and the schedule follows the order after it.
        let seen = try await store.update(orderID: order.id) { OrderStateMachine.recordProviderState($0, #"{"s":1}"#, at: now, detail: "seen") }
        let paidAt = now.addingTimeInterval(5)
        let paid = try await store.finishPoll(
            from: second, owner: "b", polledAt: paidAt,
            { OrderStateMachine.apply(.approved, transactionID: "T-1", source: .poll, to: $0, at: paidAt) }
        ) { after in
            PollSchedule(at: after.state == .paid ? paidAt.addingTimeInterval(3600) : paidAt.addingTimeInterval(5), attempts: 2)
        }
        #expect(paid.state == .paid && paid.providerState == #"{"s":1}"# && paid.version == seen.version + 1)
        #expect(paid.nextPollAt == nil && paid.pollAttempts == 2 && paid.lastPolledAt == paidAt)
        #expect(try await store.order(id: order.id) == paid)
        let events = try await store.events(orderID: order.id)
        let paidTransitions = events.count { $0.kind == .transition && $0.toState == .paid }
        #expect(paidTransitions == 1)
        let messages = try await store.outboxMessages(orderID: order.id, limit: 10).map(\.type)
        #expect(messages == ["order.paid"])
        #expect(try await store.claimOrdersToPoll(now: paidAt.addingTimeInterval(100_000), limit: 10, owner: "a", lease: 60).isEmpty)
        // A copy with nothing to decide, of an order paid meanwhile (a webhook): the poll's
        // schedule does not make a paid order due again.
        let other = makeOrder("poll-2", at: base)
        try await store.insert(other)
        _ = try await store.update(orderID: other.id) {
            OrderStateMachine.providerAccepted($0, paymentURL: nil, qrToken: nil, at: base, firstPollAt: base.addingTimeInterval(60))
        }
        let copy = try #require(try await store.claimOrdersToPoll(now: now, limit: 10, owner: "a", lease: 60).first)
        _ = try await store.update(orderID: other.id) { OrderStateMachine.apply(.approved, transactionID: "T-2", source: .webhook, to: $0, at: now) }
        let after = try await store.finishPoll(
            from: copy, owner: "a", polledAt: now, { OrderStateMachine.apply(.pending, transactionID: nil, source: .poll, to: $0, at: now) }
        ) { _ in PollSchedule(at: now.addingTimeInterval(5), attempts: 1) }
        #expect(after.state == .paid && after.nextPollAt == nil)
        #expect(try await store.order(id: other.id)?.nextPollAt == nil)
        #expect(try await store.claimOrdersToPoll(now: now.addingTimeInterval(100_000), limit: 10, owner: "a", lease: 60).isEmpty)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func outboxDeliveryIsClaimedRetriedAndLogged(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let order = makeOrder()
        try await store.insert(order)
        let now = order.createdAt
        _ = try await store.update(orderID: order.id) { OrderStateMachine.apply(.approved, transactionID: "T", source: .webhook, to: $0, at: now) }
        let claimed = try await store.claimOutbox(now: now, limit: 10, owner: "a", lease: 30)
        #expect(claimed.map(\.type) == ["order.paid"])
        #expect(try await store.claimOutbox(now: now, limit: 10, owner: "b", lease: 30).isEmpty)
        let message = claimed[0]
        try await store.recordDelivery(
            DeliveryAttempt(messageID: message.id, at: now, statusCode: 500, latencyMs: 12, error: nil), delivered: false,
            retryAt: now.addingTimeInterval(10), owner: "a")
        #expect(try await store.claimOutbox(now: now.addingTimeInterval(5), limit: 10, owner: "b", lease: 30).isEmpty)
        let retry = try await store.claimOutbox(now: now.addingTimeInterval(10), limit: 10, owner: "b", lease: 30)
        #expect(retry.map(\.id) == [message.id] && retry[0].attempts == 1 && retry[0].lastStatus == 500)
        try await store.recordDelivery(
            DeliveryAttempt(messageID: message.id, at: now.addingTimeInterval(10), statusCode: 204, latencyMs: 8, error: nil), delivered: true,
            retryAt: nil, owner: "b")
        let delivered = try await store.outboxMessages(orderID: order.id, limit: 10)[0]
        #expect(delivered.state == .delivered && delivered.attempts == 2 && delivered.deliveredAt != nil)
        #expect(try await store.deliveryAttempts(messageID: message.id).map(\.statusCode) == [500, 204])
        // A manual re-send makes it due again.
        try await store.requeue(messageID: message.id, now: now.addingTimeInterval(20))
        #expect(try await store.claimOutbox(now: now.addingTimeInterval(20), limit: 10, owner: "c", lease: 30).map(\.id) == [message.id])
        // Giving up marks it failed.
        try await store.recordDelivery(
            DeliveryAttempt(
                messageID: message.id, at: now.addingTimeInterval(21), statusCode: nil, latencyMs: 10_000, error: "timeout", manual: true),
            delivered: false, retryAt: nil, owner: "c")
        #expect(try await store.outboxMessages(orderID: order.id, limit: 10)[0].state == .failed)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func outboxLeasesArePerMessageAndOnlyTheirHolderRecords(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var ids: [String] = []
        for i in 0..<3 {
            let order = makeOrder("cart-\(i)", at: t0.addingTimeInterval(Double(i)))
            try await store.insert(order)
            _ = try await store.update(orderID: order.id) {
                OrderStateMachine.apply(.approved, transactionID: "T\(i)", source: .webhook, to: $0, at: t0.addingTimeInterval(Double(i)))
            }
            ids.append(order.id)
        }
        let at = t0.addingTimeInterval(10)
        let first = try await store.claimOutbox(now: at, limit: 10, owner: "a", lease: 10)
        #expect(first.count == 3)
        // Staggered leases: 10 s, 20 s and 30 s. At 15 s only the first has lapsed.
        let taken = try await store.claimOutbox(now: at.addingTimeInterval(15), limit: 10, owner: "b", lease: 10)
        #expect(taken.map(\.id) == [first[0].id])
        // "a" finishes its late delivery of the first: refused, since "b" holds it now.
        let late = try await store.recordDelivery(
            DeliveryAttempt(messageID: first[0].id, at: at.addingTimeInterval(16), statusCode: 204, latencyMs: 9_000, error: nil), delivered: true,
            retryAt: nil, owner: "a")
        #expect(!late)
        #expect(try await store.deliveryAttempts(messageID: first[0].id).isEmpty)
        #expect(
            try await store.recordDelivery(
                DeliveryAttempt(messageID: first[0].id, at: at.addingTimeInterval(17), statusCode: 204, latencyMs: 5, error: nil), delivered: true,
                retryAt: nil, owner: "b"))
        let message = try #require(try await store.outboxMessages(orderID: ids[0], limit: 10).first)
        #expect(message.attempts == 1 && message.state == .delivered)
        // A restarted "a" releases its own leases: the other two are due at once.
        #expect(try await store.releaseLeases(owner: "a") == 2)
        #expect(try await store.claimOutbox(now: at.addingTimeInterval(16), limit: 10, owner: "a", lease: 10).count == 2)
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func idempotencyKeysReplayAndConflict(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let now = Date()
        let old = now.addingTimeInterval(-86400)
        func reservation(_ scope: String, _ hash: String, owner: String, at: Date = now) -> IdempotencyReservation {
            IdempotencyReservation(scope: scope, key: "abc", requestHash: hash, owner: owner, at: at, expiredBefore: at.addingTimeInterval(-86400))
        }
        #expect(try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h1", expiredBefore: old) == nil)
        try await store.saveIdempotentResponse(
            reservation("key_1", "h1", owner: "r1"), response: IdempotentResponse(status: 201, body: "{}"), reservedOnly: false)
        #expect(
            try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h1", expiredBefore: old)
                == .done(IdempotentResponse(status: 201, body: "{}")))
        await #expect(throws: StoreError.idempotencyConflict(key: "abc")) {
            _ = try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h2", expiredBefore: old)
        }
        // Another scope (another API key) has its own keys; a final answer is never replaced.
        #expect(try await store.idempotencyRecord(scope: "key_2", key: "abc", requestHash: "h2", expiredBefore: old) == nil)
        try await store.saveIdempotentResponse(
            reservation("key_1", "h1", owner: "r2"), response: IdempotentResponse(status: 500, body: "x"), reservedOnly: false)
        try await store.saveIdempotentResponse(
            reservation("key_1", "h1", owner: "r1"), response: IdempotentResponse(status: 500, body: "x"), reservedOnly: true)
        #expect(
            try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h1", expiredBefore: old)
                == .done(IdempotentResponse(status: 201, body: "{}")))
        // An error answer is stored only for a key that a write reserved.
        try await store.saveIdempotentResponse(
            reservation("key_3", "h1", owner: "r3"), response: IdempotentResponse(status: 400, body: "bad"), reservedOnly: true)
        #expect(try await store.idempotencyRecord(scope: "key_3", key: "abc", requestHash: "h1", expiredBefore: old) == nil)
        // Keys expire: an old key is absent to lookups and deleted by the pass.
        #expect(try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h1", expiredBefore: now.addingTimeInterval(1)) == nil)
        #expect(try await store.deleteIdempotencyKeys(createdBefore: now.addingTimeInterval(1)) == 1)
        #expect(try await store.idempotencyRecord(scope: "key_1", key: "abc", requestHash: "h1", expiredBefore: old) == nil)
        try await handle.close()
    }

    /// A checkout's answer is stored in the commit of its last write, on every update path,
    /// and only by the request holding the key.
    @Test(arguments: Backend.available)
    func anAnswerIsStoredWithTheChangeItReports(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let now = Date()
        let old = now.addingTimeInterval(-86400)
        let at = Date(timeIntervalSince1970: 1_800_000_010)
        func record(_ key: String) async throws -> IdempotencyRecord? {
            try await store.idempotencyRecord(scope: "s", key: key, requestHash: "h", expiredBefore: old)
        }
        func accepted(_ key: IdempotencyReservation, _ body: String) -> @Sendable (GatewayOrder) -> OrderChange? {
            { current in
                guard
                    var change = OrderStateMachine.providerAccepted(
                        current, paymentURL: "https://pay.example/x", qrToken: nil, at: at, firstPollAt: at)
                else { return nil }
                change.answer = IdempotentAnswer(reservation: key, response: IdempotentResponse(status: 201, body: body))
                return change
            }
        }
        // The one-statement path (a current copy), the locked path (a stale copy) and update(orderID:).
        for (index, path) in ["current", "stale", "locked"].enumerated() {
            let key = IdempotencyReservation(scope: "s", key: "k-\(path)", requestHash: "h", owner: "req_\(index)", at: now, expiredBefore: old)
            let order = makeOrder("answer-\(path)")
            try await store.insert(order, reserving: key)
            let body = #"{"id":"\#(order.id)","path":"\#(path)"}"#
            switch path {
            case "current":
                _ = try await store.update(from: order, accepted(key, body))
            case "stale":
                var stale = order
                stale.version -= 1
                _ = try await store.update(from: stale, accepted(key, body))
            default:
                _ = try await store.update(orderID: order.id, accepted(key, body))
            }
            #expect(try await store.order(id: order.id)?.paymentURL == "https://pay.example/x")
            #expect(try await record("k-\(path)") == .done(IdempotentResponse(status: 201, body: body)), "\(path)")
        }
        // Another request's answer for the key is not stored, though its change is.
        let key = IdempotencyReservation(scope: "s", key: "k-theirs", requestHash: "h", owner: "req_a", at: now, expiredBefore: old)
        let order = makeOrder("answer-theirs")
        try await store.insert(order, reserving: key)
        var intruder = key
        intruder.owner = "req_b"
        _ = try await store.update(from: order, accepted(intruder, "theirs"))
        guard case .inProgress? = try await record("k-theirs") else {
            Issue.record("another request's answer was stored")
            try await handle.close()
            return
        }
        try await handle.close()
    }

    @Test(arguments: Backend.available)
    func idempotencyKeysAreReservedWithTheWorkTheyGuard(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let now = Date()
        let old = now.addingTimeInterval(-86400)
        let first = IdempotencyReservation(scope: "s", key: "k", requestHash: "h", owner: "req_1", at: now, expiredBefore: old)
        let order = makeOrder()
        try await store.insert(order, reserving: first)
        #expect(
            try await store.idempotencyRecord(scope: "s", key: "k", requestHash: "h", expiredBefore: old)
                == .inProgress(
                    since: Date(timeIntervalSince1970: (now.timeIntervalSince1970 * 1000).rounded() / 1000), resource: order.id, owner: "req_1"))
        // A second request with the key: its write is refused and rolled back whole.
        var second = first
        second.owner = "req_2"
        let other = makeOrder()
        await #expect(throws: StoreError.idempotencyInProgress(key: "k")) { try await store.insert(other, reserving: second) }
        #expect(try await store.order(id: other.id) == nil)
        // A request whose holder is gone takes the key over, once, from the holder it saw.
        let takenAt = Date(timeIntervalSince1970: ((now.timeIntervalSince1970 + 5) * 1000).rounded() / 1000)
        #expect(try await !store.takeOverIdempotencyKey(scope: "s", key: "k", from: "req_9", to: "req_3", at: takenAt))
        #expect(try await store.takeOverIdempotencyKey(scope: "s", key: "k", from: "req_1", to: "req_3", at: takenAt))
        #expect(try await !store.takeOverIdempotencyKey(scope: "s", key: "k", from: "req_1", to: "req_4", at: takenAt))
        #expect(
            try await store.idempotencyRecord(scope: "s", key: "k", requestHash: "h", expiredBefore: old)
                == .inProgress(since: takenAt, resource: order.id, owner: "req_3"))
        // The old holder can no longer answer; the new one can (and hands it back here).
        try await store.saveIdempotentResponse(first, response: IdempotentResponse(status: 201, body: "stale"), reservedOnly: true)
        #expect(try await store.takeOverIdempotencyKey(scope: "s", key: "k", from: "req_3", to: "req_1", at: now))
        // Only the holder writes the final answer.
        try await store.saveIdempotentResponse(second, response: IdempotentResponse(status: 201, body: "theirs"), reservedOnly: false)
        try await store.saveIdempotentResponse(first, response: IdempotentResponse(status: 201, body: "mine"), reservedOnly: true)
        #expect(
            try await store.idempotencyRecord(scope: "s", key: "k", requestHash: "h", expiredBefore: old)
                == .done(IdempotentResponse(status: 201, body: "mine")))
        // Refunds and links reserve theirs the same way; an expired key is taken over.
        let paid = try await store.update(orderID: order.id) {
            OrderStateMachine.apply(.approved, transactionID: "tx", source: .poll, to: $0, at: now)
        }
        #expect(paid.state == .paid)
        let refundKey = IdempotencyReservation(scope: "s", key: "r", requestHash: "h", owner: "req_3", at: now, expiredBefore: old)
        _ = try await store.recordRefund(orderID: order.id, amount: 100, refundID: "rf_1", at: now, reserving: refundKey)
        var again = refundKey
        again.owner = "req_4"
        await #expect(throws: StoreError.idempotencyInProgress(key: "r")) {
            _ = try await store.recordRefund(orderID: order.id, amount: 100, refundID: "rf_2", at: now, reserving: again)
        }
        #expect(try await store.order(id: order.id)?.refundedAmount == 100)
        var later = again
        later.at = now.addingTimeInterval(90000)
        later.expiredBefore = now.addingTimeInterval(1)
        _ = try await store.recordRefund(orderID: order.id, amount: 100, refundID: "rf_3", at: later.at, reserving: later)
        #expect(try await store.order(id: order.id)?.refundedAmount == 200)
        let link = PaymentLink(id: "lnk\(UUID().uuidString.prefix(6))", amount: 500, createdAt: now)
        try await store.insert(
            link, reserving: IdempotencyReservation(scope: "s", key: "l", requestHash: "h", owner: "req_5", at: now, expiredBefore: old))
        let duplicate = PaymentLink(id: "lnk\(UUID().uuidString.prefix(6))", amount: 500, createdAt: now)
        await #expect(throws: StoreError.idempotencyInProgress(key: "l")) {
            try await store.insert(
                duplicate, reserving: IdempotencyReservation(scope: "s", key: "l", requestHash: "h", owner: "req_6", at: now, expiredBefore: old))
        }
        #expect(try await store.paymentLink(id: duplicate.id) == nil)
        try await handle.close()
    }
}

extension StoreContractTests {
    @Test(arguments: Backend.available)
    func paymentLinksAttachOneOrderAtATime(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        let link = PaymentLink(
            id: "lnk\(UUID().uuidString.prefix(6))", amount: 3000, description: "Invoice 7", expiresAt: Date(timeIntervalSince1970: 1_900_000_000),
            createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        try await store.insert(link)
        #expect(try await store.paymentLink(id: link.id) == link)
        #expect(try await store.paymentLink(id: "nope") == nil)
        let first = makeOrder("link-1")
        let second = makeOrder("link-2")
        try await store.insert(first)
        try await store.insert(second)
        #expect(try await store.attach(orderID: first.id, toLink: link.id, replacing: nil))
        #expect(try await !store.attach(orderID: second.id, toLink: link.id, replacing: nil))
        #expect(try await store.attach(orderID: second.id, toLink: link.id, replacing: first.id))
        #expect(try await store.paymentLink(id: link.id)?.orderID == second.id)
        #expect(try await store.paymentLinks(limit: 10).map(\.id) == [link.id])
        // Settings: the first writer wins.
        #expect(try await store.setting("admin.secret", orInsert: "one") == "one")
        #expect(try await store.setting("admin.secret", orInsert: "two") == "one")
        try await handle.close()
    }
}

@Suite("PostgreSQL URLs")
struct PostgresURLTests {
    @Test func poolSizeComesFromTheURL() throws {
        #expect(try PostgresGatewayStore.configuration(url: "postgres://u:p@127.0.0.1:5432/db").options.maximumConnections == 20)
        #expect(try PostgresGatewayStore.configuration(url: "postgres://u:p@127.0.0.1:5432/db?pool_max=5").options.maximumConnections == 5)
        for bad in ["0", "501", "many"] {
            do {
                _ = try PostgresGatewayStore.configuration(url: "postgres://u:secret@127.0.0.1:5432/db?pool_max=\(bad)")
                Issue.record("pool_max=\(bad) was accepted")
            } catch let error as StoreError {
                #expect(error.code == "DATABASE_ERROR")
                #expect(error.description.contains("pool_max") && !error.description.contains("secret"))
            }
        }
    }

    /// Every connection release would start a keep-alive timer, held until its deadline even
    /// when the connection is leased again at once; idle connections are closed soon instead.
    @Test func thePoolPingsNothingAndClosesIdleConnectionsSoon() throws {
        let options = try PostgresGatewayStore.configuration(url: "postgres://u:p@127.0.0.1:5432/db").options
        #expect(options.keepAliveBehavior == nil)
        #expect(options.connectionIdleTimeout == .seconds(10))
        #expect(options.minimumConnections == 0)
    }
}

@Suite("SQLite store specifics")
struct SQLiteStoreTests {
    /// Many concurrent writes share commits; each caller gets its own outcome, and a job that
    /// fails (even after writing) is rolled back alone.
    @Test func groupCommitIsolatesEachWrite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLiteGatewayStore.open(path: path)
        _ = try await store.migrate()
        let orders = (0..<300).map { makeOrder("group-\($0)") }
        try await store.insert(contentsOf: orders)
        let existing = orders[0]
        let before = store.commitStatistics
        let at = Date(timeIntervalSince1970: 1_800_000_100)
        let outcomes = await withTaskGroup(of: (Int, String).self) { group in
            for (index, order) in orders.enumerated() {
                group.addTask {
                    do {
                        switch index % 10 {
                        case 3:
                            // Fails before writing.
                            var ghost = order
                            ghost.id = "ord_ghost_\(index)"
                            _ = try await store.update(from: ghost) {
                                OrderStateMachine.apply(.approved, transactionID: nil, source: .webhook, to: $0, at: at)
                            }
                        case 7:
                            // Writes a first chunk, then fails on a duplicate: rolled back alone.
                            var batch = (0..<600).map { makeOrder("dup-\(index)-\($0)") }
                            batch[550].providerOrderID = existing.providerOrderID
                            try await store.insert(contentsOf: batch)
                        default:
                            _ = try await store.update(from: order) {
                                OrderStateMachine.apply(.approved, transactionID: "tx-\(index)", source: .webhook, to: $0, at: at)
                            }
                        }
                        return (index, "ok")
                    } catch let error as StoreError {
                        return (index, error.code)
                    } catch {
                        return (index, "\(error)")
                    }
                }
            }
            var all: [Int: String] = [:]
            for await (index, outcome) in group { all[index] = outcome }
            return all
        }
        for (index, outcome) in outcomes {
            switch index % 10 {
            case 3: #expect(outcome == "ORDER_NOT_FOUND")
            case 7: #expect(outcome == "DUPLICATE_ORDER")
            default: #expect(outcome == "ok")
            }
        }
        for (index, order) in orders.enumerated() {
            let stored = try #require(try await store.order(id: order.id))
            #expect(stored.state == (index % 10 == 3 || index % 10 == 7 ? .created : .paid))
            if index % 10 == 7 { #expect(try await store.order(provider: "kaspi-pay", providerOrderID: "never") == nil) }
        }
        let after = store.commitStatistics
        #expect(after.jobs - before.jobs == 300)
        // Shared commits: fewer commits than jobs (300 writers queued at once).
        #expect(after.commits - before.commits < 300)
        try await store.close()
        // What was acknowledged is on disk.
        let reopened = try await SQLiteGatewayStore.open(path: path)
        #expect(try await reopened.order(id: orders[1].id)?.state == .paid)
        #expect(try await reopened.orders(OrderQuery(search: "dup-7-0")).orders.isEmpty)
        try await reopened.close()
    }

    @Test func memoryDatabasesWork() async throws {
        let store = try await SQLiteGatewayStore.open(path: ":memory:")
        _ = try await store.migrate()
        let order = makeOrder()
        try await store.insert(order)
        #expect(try await store.order(id: order.id) == order)
        try await store.close()
    }

    @Test func commitsAreDurable() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try await SQLiteGatewayStore.open(path: path)
        #expect(try await store.synchronousSetting() == 2)
        #expect(try await store.schemaVersion() == 0)
        #expect(try await store.migrate() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        let order = makeOrder()
        try await store.insert(order)
        try await store.close()
        let reopened = try await SQLiteGatewayStore.open(path: path)
        #expect(try await reopened.order(id: order.id) == order)
        #expect(try await reopened.migrate() == [])
        try await reopened.close()
    }
}

@Suite("Order state machine")
struct StateMachineTests {
    @Test func aPollThatSawTheOrderFirstDoesNotLoseThePaymentURL() throws {
        let order = makeOrder()
        let now = order.createdAt
        let polled = try #require(OrderStateMachine.providerAccepted(order, paymentURL: nil, qrToken: nil, at: now, firstPollAt: now)).order
        #expect(polled.state == .pending && polled.paymentURL == nil)
        let completed = try #require(
            OrderStateMachine.providerAccepted(polled, paymentURL: "https://pay.example/p", qrToken: nil, at: now, firstPollAt: now)
        ).order
        #expect(completed.state == .pending && completed.paymentURL == "https://pay.example/p")
        #expect(OrderStateMachine.providerAccepted(completed, paymentURL: "https://pay.example/p", qrToken: nil, at: now, firstPollAt: now) == nil)
    }

    @Test func pendingReportsAndDuplicatesChangeNothing() throws {
        var order = makeOrder()
        #expect(OrderStateMachine.apply(.pending, transactionID: nil, source: .poll, to: order, at: order.createdAt) == nil)
        order.state = .declined
        #expect(OrderStateMachine.apply(.declined, transactionID: nil, source: .webhook, to: order, at: order.createdAt) == nil)
        #expect(OrderStateMachine.apply(.cancelled, transactionID: nil, source: .webhook, to: order, at: order.createdAt) == nil)
        #expect(OrderStateMachine.expire(order, at: order.createdAt, reason: "x") == nil)
    }
}
