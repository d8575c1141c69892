import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import PropertyBased
import Synchronization
import Testing

/// One thing that can happen to an order, decoded from a random number so that the generator
/// (and its shrinker) stays a plain array of integers.
enum Happening: CustomStringConvertible {
    case report(PaymentStatus, OrderStateMachine.Source)
    case accepted
    case expire(late: Bool)
    case unconfirmed
    case refund(amount: Int, outcome: Int)
    case settleUnknown(confirm: Bool)

    init(_ n: Int) {
        let parameter = n / 16
        switch n % 16 {
        case 0, 1: self = .report(.approved, parameter % 2 == 0 ? .webhook : .poll)
        case 2: self = .report(.declined, .webhook)
        case 3: self = .report(.cancelled, .webhook)
        case 4: self = .report(.pending, .poll)
        case 5: self = .report(.declined, .poll)
        case 6: self = .report(.approved, .admin)
        case 7, 8: self = .accepted
        case 9: self = .expire(late: parameter % 2 == 0)
        case 10: self = .unconfirmed
        case 11, 12, 13: self = .refund(amount: 1 + parameter * 97 % 3000, outcome: parameter % 3)
        default: self = .settleUnknown(confirm: parameter % 2 == 0)
        }
    }

    var description: String {
        switch self {
        case .report(let r, let s): "\(r.rawValue) via \(s.rawValue)"
        case .accepted: "accepted"
        case .expire(let late): "expire(late: \(late))"
        case .unconfirmed: "unconfirmed"
        case .refund(let amount, let outcome): "refund \(amount) → \(["confirmed", "released", "unknown"][outcome])"
        case .settleUnknown(let confirm): "settle unknown (\(confirm))"
        }
    }
}

/// Checks one change against the rules every change must keep.
func checkChange(_ before: GatewayOrder, _ change: OrderChange) {
    let after = change.order
    #expect(after.version == before.version + 1, "the version rises on every change")
    if before.state == .paid { #expect(after.state == .paid, "paid is never left") }
    #expect(after.refundedAmount >= 0 && after.refundedAmount <= after.amount, "refunded ≤ paid")
    if after.refundedAmount > 0 { #expect(after.state == .paid, "only a paid order has refunds") }
    let transitions = change.events.filter { $0.kind == .transition && $0.fromState != $0.toState && $0.toState != .pending }
    let orderEvents = change.outbox.filter { $0.type.hasPrefix("order.") }
    #expect(transitions.count == orderEvents.count, "exactly one outgoing event per transition")
    #expect(transitions.count <= 1)
    if let transition = transitions.first { #expect(orderEvents.first?.type == "order.\(transition.toState?.rawValue ?? "")") }
    #expect(
        after.state == before.state || transitions.count == 1 || (before.state == .created && after.state == .pending),
        "a state change is a recorded transition")
}

@Suite("Property tests: random interleavings converge")
struct PropertyTests {
    /// The pure state machine, with a model of the refunds beside it.
    @Test func theStateMachineKeepsItsRulesUnderAnyHistory() async {
        await propertyCheck(count: 400, input: Gen.int(in: 0...4095).array(of: 1...40)) { numbers in
            var order = makeOrder(amount: 5000)
            var pending: [(id: String, amount: Int)] = []
            var unknown: [(id: String, amount: Int)] = []
            var paidAt: Date? = nil
            let t0 = order.createdAt
            for (index, number) in numbers.enumerated() {
                let at = t0.addingTimeInterval(Double(index + 1))
                var changes: [OrderChange?] = []
                switch Happening(number) {
                case .report(let report, let source):
                    changes.append(OrderStateMachine.apply(report, transactionID: "tx-\(index)", source: source, to: order, at: at))
                case .accepted:
                    changes.append(
                        OrderStateMachine.providerAccepted(order, paymentURL: "https://pay.example/\(index)", qrToken: nil, at: at, firstPollAt: at))
                case .expire(let late):
                    changes.append(OrderStateMachine.expire(order, at: at, reason: "time", latePollAt: late ? at : nil))
                case .unconfirmed:
                    changes.append(OrderStateMachine.unconfirmed(.approved, confirmed: .declined, source: .webhook, on: order, at: at))
                case .refund(let amount, let outcome):
                    guard let reserved = OrderStateMachine.refund(order, amount: amount, refundID: "rf_\(index)", at: at) else {
                        #expect(order.state != .paid || order.refundedAmount + amount > order.amount, "a refund that fits is reserved")
                        continue
                    }
                    checkChange(order, reserved)
                    order = reserved.order
                    switch outcome {
                    case 0: changes.append(OrderStateMachine.refundConfirmed(order, amount: amount, refundID: "rf_\(index)", at: at))
                    case 1:
                        changes.append(OrderStateMachine.refundReleased(order, amount: amount, refundID: "rf_\(index)", reason: "refused", at: at))
                    default:
                        changes.append(OrderStateMachine.refundUnknown(order, amount: amount, refundID: "rf_\(index)", reason: "lost", at: at))
                        unknown.append(("rf_\(index)", amount))
                    }
                    pending.append(("rf_\(index)", amount))
                case .settleUnknown(let confirm):
                    guard let refund = unknown.popLast() else { continue }
                    changes.append(
                        confirm
                            ? OrderStateMachine.refundConfirmed(order, amount: refund.amount, refundID: refund.id, at: at)
                            : OrderStateMachine.refundReleased(order, amount: refund.amount, refundID: refund.id, reason: "settled", at: at))
                }
                for case let change? in changes {
                    checkChange(order, change)
                    order = change.order
                }
                if order.state == .paid, paidAt == nil { paidAt = at }
                if paidAt != nil { #expect(order.state == .paid) }
            }
            _ = pending
        }
    }

    /// The same histories through each store, several writers at once on one order: what is
    /// stored keeps the rules, and the audit trail and the outbox agree with the order.
    @Test(arguments: Backend.available)
    func theStoresKeepTheRulesUnderConcurrentHistories(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        await propertyCheck(count: 25, input: Gen.int(in: 0...4095).array(of: 1...24)) { numbers in
            let order = makeOrder("prop-\(UUID().uuidString.prefix(8))", amount: 5000)
            do { try await store.insert(order) } catch {
                Issue.record("insert failed: \(error)")
                return
            }
            let lanes = 3
            let changes = Counter()
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<lanes {
                    let mine = numbers.enumerated().filter { $0.offset % lanes == lane }.map(\.element)
                    group.addTask {
                        for number in mine {
                            await Self.happen(Happening(number), to: order.id, in: store, changes: changes)
                        }
                    }
                }
            }
            do {
                let stored = try #require(try await store.order(id: order.id))
                let events = try await store.events(orderID: order.id)
                let outbox = try await store.outboxMessages(orderID: order.id, limit: 500)
                let refunds = try await store.refunds(orderID: order.id)
                #expect(stored.version == 1 + changes.value, "the version rose once per change")
                #expect(stored.refundedAmount <= stored.amount)
                let reserved = refunds.filter { $0.status != .failed }.reduce(0) { $0 + $1.amount }
                #expect(stored.refundedAmount == reserved, "the refunded total is what the refunds hold")
                let transitions = events.filter { $0.kind == .transition && $0.toState != .pending }
                #expect(transitions.count == outbox.filter { $0.type.hasPrefix("order.") }.count, "one outgoing event per transition")
                #expect(refunds.filter { $0.status == .succeeded }.count == outbox.filter { $0.type == "refund.succeeded" }.count)
                if events.contains(where: { $0.toState == .paid }) { #expect(stored.state == .paid, "paid is never left") }
            } catch {
                Issue.record("reading back failed: \(error)")
            }
        }
        try await handle.close()
    }

    /// Counts the changes that were written.
    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    static func happen(_ happening: Happening, to id: String, in store: any GatewayStore, changes: Counter) async {
        let at = Date()
        func update(_ decide: @escaping @Sendable (GatewayOrder) -> OrderChange?) async {
            let wrote = Mutex(false)
            do {
                try await store.update(orderID: id) { current in
                    guard let change = decide(current) else {
                        wrote.withLock { $0 = false }
                        return nil
                    }
                    checkChange(current, change)
                    wrote.withLock { $0 = true }
                    return change
                }
                // Counted after the commit, and only when something was written.
                if wrote.withLock({ $0 }) { changes.add() }
            } catch StoreError.refundAlreadyResolved {
                return
            } catch {
                Issue.record("update failed: \(error)")
                return
            }
        }
        switch happening {
        case .report(let report, let source):
            await update { OrderStateMachine.apply(report, transactionID: "tx", source: source, to: $0, at: at) }
        case .accepted:
            await update { OrderStateMachine.providerAccepted($0, paymentURL: "https://pay.example/x", qrToken: nil, at: at, firstPollAt: at) }
        case .expire(let late):
            await update { OrderStateMachine.expire($0, at: at, reason: "time", latePollAt: late ? at : nil) }
        case .unconfirmed:
            await update { OrderStateMachine.unconfirmed(.approved, confirmed: .declined, source: .webhook, on: $0, at: at) }
        case .refund(let amount, let outcome):
            let refundID = GatewayID.make("rf")
            do {
                _ = try await store.recordRefund(orderID: id, amount: amount, refundID: refundID, at: at)
            } catch {
                return
            }
            changes.add()
            switch outcome {
            case 0: await update { OrderStateMachine.refundConfirmed($0, amount: amount, refundID: refundID, at: at) }
            case 1: await update { OrderStateMachine.refundReleased($0, amount: amount, refundID: refundID, reason: "refused", at: at) }
            default: await update { OrderStateMachine.refundUnknown($0, amount: amount, refundID: refundID, reason: "lost", at: at) }
            }
        case .settleUnknown(let confirm):
            guard let refund = (try? await store.refunds(orderID: id))?.first(where: { $0.status == .unknown }) else { return }
            await update {
                confirm
                    ? OrderStateMachine.refundConfirmed($0, amount: refund.amount, refundID: refund.id, at: at)
                    : OrderStateMachine.refundReleased($0, amount: refund.amount, refundID: refund.id, reason: "settled", at: at)
            }
        }
    }
}
