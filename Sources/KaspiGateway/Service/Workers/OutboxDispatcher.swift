import AsyncHTTPClient
import Foundation
import KaspiGatewayStore
import KaspiPay
import ServiceLifecycle
import Synchronization

/// Delivers the outbox to the merchant's endpoint: up to
/// ``GatewayConfiguration/deliveryConcurrency`` events at once in a sliding window (a slot
/// that frees is filled at once, nobody waits for a round's slowest delivery), and backs off
/// from a destination that fails: while its last delivery failed, one event at a time, after
/// a pause that doubles with each failure in a row. Nothing here waits on the poller.
struct OutboxDispatcher: Service {
    let gateway: Gateway
    /// How long a graceful shutdown waits for deliveries under way.
    static let shutdownGrace = Duration.seconds(5)

    /// What a child task of the window ends with.
    enum Step: Sendable {
        /// A delivery ended: whether the endpoint took it.
        case delivered(Bool)
        /// The idle wait ended: look for due events again.
        case tick
        /// Shutdown's wait for deliveries under way ended.
        case grace
    }

    func run() async throws {
        guard gateway.configuration.merchantWebhookURL != nil else {
            // Nothing to deliver: events stay in the outbox for the API and the dashboard.
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await gateway.readiness.wait() }
        guard gateway.readiness.isOpen else { return }
        let configuration = gateway.configuration
        let interval = BackgroundLoop.duration(configuration.workerInterval)
        let backoff = DestinationBackoff(base: configuration.workerInterval, cap: 30)
        await withTaskGroup(of: Step.self) { group in
            var inFlight = 0
            var ticking = false
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let width = backoff.width(of: configuration.deliveryConcurrency)
                let free = width - inFlight
                if free > 0 {
                    do {
                        let due = try await gateway.outbox.claimDueEvents(limit: free)
                        for message in due { group.addTask { .delivered(await gateway.outbox.deliver(message, manual: false)) } }
                        inFlight += due.count
                    } catch {
                        gateway.logger.warning(
                            "Could not claim events to deliver; retrying", metadata: ["error": "\(String(describing: error).prefix(160))"])
                    }
                }
                // Then wait for a slot to free (claiming again at once) or for the next tick.
                if !ticking {
                    ticking = true
                    group.addTask {
                        // Woken early when this instance has just written an event.
                        _ = await cancelWhenGracefulShutdown {
                            await gateway.context.outboxWake.wait(for: interval, clock: ElapsedClock(ContinuousClock()))
                        }
                        return .tick
                    }
                }
                switch await group.next() {
                case .delivered(let delivered)?:
                    inFlight -= 1
                    backoff.record(delivered: delivered)
                case .tick?: ticking = false
                case .grace?, nil: break
                }
            }
            // Deliveries under way get a few seconds to finish and be recorded; any still
            // waiting then is cancelled, unrecorded (its lease lapses, or is released when this
            // instance starts again), and delivered again later.
            // With none under way, nothing waits.
            if inFlight > 0 {
                group.addTask {
                    try? await Task.sleep(for: OutboxDispatcher.shutdownGrace)
                    return .grace
                }
            }
            while inFlight > 0, let finished = await group.next() {
                switch finished {
                case .delivered: inFlight -= 1
                case .grace: group.cancelAll()
                case .tick: break
                }
            }
            group.cancelAll()
        }
    }
}

/// A destination's back-off: after a failure, one delivery at a time, none before a pause
/// that doubles with each failure in a row (up to `cap` seconds); a success ends it. Real
/// time, not the gateway's clock: it is about the destination's health, not about orders.
final class DestinationBackoff: Sendable {
    private struct State {
        var failures = 0
        var pausedUntil: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    let base: TimeInterval
    let cap: TimeInterval

    init(base: TimeInterval, cap: TimeInterval) {
        self.base = base
        self.cap = cap
    }

    /// Whether the last delivery failed.
    var failing: Bool { state.withLock { $0.failures > 0 } }

    /// How many deliveries may be under way now: all of `concurrency`, one while failing,
    /// none while paused.
    func width(of concurrency: Int) -> Int {
        state.withLock { state in
            if let until = state.pausedUntil, ContinuousClock.now < until { return 0 }
            return state.failures > 0 ? 1 : concurrency
        }
    }

    /// Notes how a delivery ended.
    func record(delivered: Bool) {
        state.withLock { state in
            if delivered {
                state = State()
            } else {
                state.failures += 1
                let pause = min(cap, base * pow(2, Double(min(state.failures - 1, 16))))
                state.pausedUntil = ContinuousClock.now + BackgroundLoop.duration(pause)
            }
        }
    }
}

/// What a failed delivery is recorded as, told by the error's type.
enum DeliveryFailure {
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout: return "timeout"
            default: return "connection failed"
            }
        }
        if error is CancellationError { return "cancelled" }
        return "connection failed"
    }
}
