import Foundation
import KaspiGatewayTestSupport
import PostgresNIO
import Testing

@testable import KaspiGatewayStore

/// Status reports arriving together (the webhook path): each caller gets its own outcome,
/// whatever else shares its commit.
@Suite("Concurrent status reports")
struct ConcurrentReportTests {
    struct Refused: Error {}

    enum Outcome: Equatable {
        case paid(before: OrderState, version: Int)
        case failed(String)
    }

    @Test(arguments: Backend.available)
    func eachReportGetsItsOwnOutcome(_ backend: Backend) async throws {
        let handle = try await backend.open()
        let store = handle.store
        // Some orders with nullable columns unset, some with them set.
        var orders = (0..<240).map { makeOrder("report-\($0)") }
        for index in orders.indices where index % 2 == 0 {
            orders[index].description = nil
            orders[index].metadata = nil
            orders[index].nextPollAt = nil
        }
        try await store.insert(contentsOf: orders)
        let at = Date(timeIntervalSince1970: 1_800_000_100)
        // Per order i: i % 8 == 1 reports twice (a duplicate in flight), == 2 is refused by
        // `decide`, == 3 is an order nobody has, == 4 changes nothing, the rest are paid.
        let outcomes = await withTaskGroup(of: (Int, Int, Outcome).self) { group in
            for (index, order) in orders.enumerated() {
                for copy in 0..<(index % 8 == 1 ? 2 : 1) {
                    group.addTask {
                        let providerOrderID = index % 8 == 3 ? "unknown-\(index)" : order.providerOrderID
                        do {
                            let (before, after) = try await store.update(provider: "kaspi-pay", providerOrderID: providerOrderID) { current in
                                if index % 8 == 2 { throw Refused() }
                                if index % 8 == 4 { return nil }
                                return OrderStateMachine.apply(.approved, transactionID: "tx-\(index)", source: .webhook, to: current, at: at)
                            }
                            #expect(before.id == order.id && after.id == order.id)
                            return (
                                index, copy,
                                index % 8 == 4 ? .failed("unchanged:\(after.state)") : .paid(before: before.state, version: after.version)
                            )
                        } catch let error as StoreError {
                            return (index, copy, .failed(error.code))
                        } catch {
                            return (index, copy, .failed("\(type(of: error))"))
                        }
                    }
                }
            }
            var all: [Int: [Outcome]] = [:]
            for await (index, _, outcome) in group { all[index, default: []].append(outcome) }
            return all
        }
        for (index, order) in orders.enumerated() {
            let results = try #require(outcomes[index])
            let stored = try #require(try await store.order(id: order.id))
            let paidEvents = try await store.events(orderID: order.id).filter { $0.kind == .transition && $0.toState == .paid }
            let paidMessages = try await store.outboxMessages(orderID: order.id, limit: 10).filter { $0.type == "order.paid" }
            switch index % 8 {
            case 2:
                #expect(results == [.failed("Refused")])
                #expect(stored == order)
            case 3:
                #expect(results == [.failed("ORDER_NOT_FOUND")])
                #expect(stored == order)
            case 4:
                #expect(results == [.failed("unchanged:created")])
                #expect(stored == order)
            default:
                // Both copies of a duplicate answer paid; the order is paid once.
                #expect(results.count == (index % 8 == 1 ? 2 : 1))
                for result in results {
                    guard case .paid(_, let version) = result else {
                        Issue.record("order \(index): \(result)")
                        continue
                    }
                    #expect(version == stored.version)
                }
                #expect(stored.state == .paid)
                #expect(stored.transactionID == "tx-\(index)")
                #expect(stored.version == order.version + 1)
                #expect(stored.description == order.description && stored.metadata == order.metadata)
                #expect(paidEvents.count == 1)
                #expect(paidMessages.count == 1)
            }
            if (2...4).contains(index % 8) {
                #expect(paidEvents.isEmpty && paidMessages.isEmpty)
            }
        }
        if let postgres = store as? PostgresGatewayStore {
            // The reports shared lookups and commits.
            let statistics = postgres.groupCommitStatistics
            #expect(statistics.jobs == 270)
            #expect(statistics.batches < statistics.jobs)
        }
        try await handle.close()
    }

    /// The batch write changes only orders whose version is still the one read, and writes
    /// events and outbox rows only for those.
    @Test func theBatchWriteChecksEachVersion() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let handle = try await Backend.postgres.open()
        let store = try #require(handle.store as? PostgresGatewayStore)
        let orders = (0..<3).map { makeOrder("batch-\($0)") }
        try await store.insert(contentsOf: orders)
        let at = Date(timeIntervalSince1970: 1_800_000_100)
        // Order 1 changes underneath (its version moves on) before the batch is written.
        _ = try await store.update(orderID: orders[1].id) {
            OrderStateMachine.providerAccepted($0, paymentURL: "https://pay.example/1", qrToken: nil, at: at, firstPollAt: at)
        }
        let changes = try orders.map { order in
            (
                change: try #require(OrderStateMachine.apply(.approved, transactionID: "tx-\(order.id)", source: .webhook, to: order, at: at)),
                expectedVersion: order.version
            )
        }
        let changed = try await store.groupCommit.write(changes)
        #expect(changed == [orders[0].id, orders[2].id])
        #expect(try await store.order(id: orders[1].id)?.state == .pending)
        #expect(try await store.events(orderID: orders[1].id).allSatisfy { $0.toState != .paid })
        #expect(try await store.outboxMessages(orderID: orders[1].id, limit: 10).isEmpty)
        for index in [0, 2] {
            let stored = try #require(try await store.order(id: orders[index].id))
            #expect(stored == changes[index].change.order)
            #expect(try await store.events(orderID: orders[index].id).map(\.toState).last == .paid)
            #expect(try await store.outboxMessages(orderID: orders[index].id, limit: 10).map(\.type) == ["order.paid"])
        }
        // An empty batch of events and messages is valid too.
        #expect(try await store.groupCommit.write([]).isEmpty)
        try await handle.close()
    }
}

@Suite("Gateway ids")
struct GatewayIDTests {
    /// Outbox message ids sort by the time they were made (so the outbox's primary key is
    /// appended to), keep the random ids' shape, and do not repeat within a millisecond.
    @Test func sortableIDsSortByTimeAndKeepTheShape() {
        let ids = (0..<2000).map { GatewayID.sortable("msg", at: Date(timeIntervalSince1970: Double(1_800_000_000_000 + $0 / 4) / 1000)) }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.hasPrefix("msg_") && id.count == 24)
            #expect(id.dropFirst(4).allSatisfy { GatewayID.alphabet.contains($0) })
        }
        // Ids of later milliseconds sort after; within one millisecond, any order.
        let byMillisecond = stride(from: 0, to: ids.count, by: 4).map { ids[$0] }
        #expect(byMillisecond == byMillisecond.sorted())
        #expect(GatewayID.sortable("msg", at: Date(timeIntervalSince1970: 0)).hasPrefix("msg_0000000000"))
        // The same shape as a random id.
        #expect(GatewayID.make("msg").count == 24)
    }

    /// A transition's outbox message carries such an id.
    @Test func transitionsUseSortableMessageIDs() throws {
        let order = makeOrder()
        let at = Date(timeIntervalSince1970: 1_800_000_100)
        let change = try #require(OrderStateMachine.apply(.approved, transactionID: "tx", source: .webhook, to: order, at: at))
        let message = try #require(change.outbox.first)
        #expect(message.id.prefix(14) == GatewayID.sortable("msg", at: at).prefix(14))
    }
}
