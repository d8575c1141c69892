import Foundation
import Hummingbird
import HummingbirdTesting
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import Testing

@testable import KaspiGateway

/// The background services as they run in a gateway: the poller's sliding window, and the
/// dispatcher woken by the events this instance writes.
@Suite("The poller and the dispatcher, running")
struct PollerTests {
    /// Waits (up to a minute: far beyond what the work takes, far below the hour a rest
    /// would) until `done` holds.
    static func eventually(_ done: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<1200 {
            if try await done() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test(
        "a busy poller takes batch after batch without resting, and the events its polls write are delivered at once, with an hour between ticks",
        arguments: Backend.available)
    func aBusyPollerDoesNotRest(_ backend: Backend) async throws {
        let merchant = EventReceiver()
        let app = Application(router: merchant.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await withScriptedGateway(backend) {
                // An hour between passes: only a poller that never rests while work is due,
                // and a dispatcher woken by new events, can finish within the test.
                $0.workerInterval = 3600
                $0.workBatchSize = 3
                $0.pollConcurrency = 2
                $0.firstPollAfter = 1
                $0.merchantWebhookURL = "http://127.0.0.1:\(port)/events"
                $0.merchantWebhookSecret = StandardWebhooks.makeSecret()
            } _: { gateway, provider, clock in
                var ids: [String] = []
                for i in 0..<11 {
                    provider.script("create", .payment("https://kaspi.example/pay/\(i)"))
                    ids.append(try await gateway.createCheckout(CheckoutRequest(amount: 1000 + i), kind: .redirect).order.id)
                }
                for i in 0..<11 { provider.script("status", .status(ProviderStatus(report: .approved, transactionID: "T-\(i)"))) }
                clock.advance(by: 2)
                gateway.readiness.open()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await Poller(gateway: gateway).run() }
                    group.addTask { try await OutboxDispatcher(gateway: gateway).run() }
                    // Four batches of three, one after the other.
                    let polled = try await Self.eventually { provider.calls.filter { $0 == "status" }.count == 11 }
                    #expect(polled, "\(provider.calls.filter { $0 == "status" }.count) of 11 orders polled")
                    let paid = try await Self.eventually {
                        var states: [OrderState] = []
                        for id in ids { states.append(try await gateway.store.order(id: id)?.state ?? .created) }
                        return states.allSatisfy { $0 == .paid }
                    }
                    #expect(paid)
                    let delivered = try await Self.eventually { merchant.events.filter { $0.type == "order.paid" }.count == 11 }
                    #expect(delivered, "\(merchant.events.count) events delivered")
                    group.cancelAll()
                }
                // Each order polled once and paid once: nothing polled twice, nothing sent twice.
                #expect(Set(merchant.events.map(\.id)).count == merchant.events.count)
            }
        }
    }

    @Test("a wake-up before the wait ends it at once, wake-ups are not counted, and one during a wait ends it")
    func wakeSignals() async {
        let signal = WakeSignal()
        let clock = ElapsedClock(ContinuousClock())
        signal.fire()
        signal.fire()
        #expect(await signal.wait(for: .seconds(3600), clock: clock))
        // Two fires woke one wait: the next one runs out its time.
        #expect(await signal.wait(for: .milliseconds(50), clock: clock) == false)
        async let late = signal.wait(for: .seconds(3600), clock: clock)
        try? await Task.sleep(for: .milliseconds(50))
        signal.fire()
        #expect(await late)
    }
}
