import Crypto
import Foundation
import KaspiGatewayStore
import Logging
import Synchronization

/// What the gateway's parts share: its settings, its store, Kaspi behind the measured
/// provider, the clock, the metrics and the log.
struct GatewayContext: Sendable {
    let configuration: GatewayConfiguration
    let store: any GatewayStore
    let provider: any PaymentProvider
    /// What the provider can do beyond the core (measured), resolved once.
    let capabilities: ProviderCapabilities
    let now: @Sendable () -> Date
    let metrics: GatewayMetrics
    let logger: Logger
    /// The port the server is bound to once it runs (0 before): the public base on loopback.
    let boundPort: BoundPort
    /// The admin listener's port once it listens.
    let adminBoundPort = BoundPort()
    /// Wakes the outbox's dispatcher when this instance has just written an event, so that it
    /// is delivered now rather than at the dispatcher's next tick.
    let outboxWake = WakeSignal()

    /// The public base URL: ``GatewayConfiguration/publicURL``, or on loopback the address the
    /// server is bound to. Never anything a request says (its `Host` header is the payer's to
    /// choose, and would pick where every later payer is sent).
    var publicBase: String {
        let port = boundPort.value
        return configuration.publicBase(boundPort: port == 0 ? nil : port)
    }
}

/// The port the server is bound to, set once it runs.
final class BoundPort: Sendable {
    private let port = Atomic<Int>(0)
    var value: Int { port.load(ordering: .relaxed) }
    func set(_ value: Int) { port.store(value, ordering: .relaxed) }
}

/// A wake-up call between two of the gateway's jobs: ``signal()`` ends the other's current or
/// next ``wait(upTo:)`` early. Signals are not counted: many before a wait wake it once.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    init() {}

    /// Wakes the waiter, or the next one to wait.
    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Waits until a signal or until `duration` has passed, whichever comes first. One waiter
    /// at a time.
    func wait(upTo duration: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: duration) }
            group.addTask { await self.nextSignal() }
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// The next signal, or the task's cancellation.
    private func nextSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}

/// One job of the gateway, sharing its context: the settings, the store, Kaspi (the measured
/// provider), the clock, the metrics and the log.
protocol GatewayPart: Sendable {
    var context: GatewayContext { get }
}

extension GatewayPart {
    var configuration: GatewayConfiguration { context.configuration }
    var store: any GatewayStore { context.store }
    var provider: any PaymentProvider { context.provider }
    var capabilities: ProviderCapabilities { context.capabilities }
    var now: @Sendable () -> Date { context.now }
    var metrics: GatewayMetrics { context.metrics }
    var logger: Logger { context.logger }

    /// Tells the outbox's dispatcher that this instance has just committed an event to deliver.
    func wakeOutbox() { context.outboxWake.signal() }
}

/// HMAC-SHA256 tokens, base64url without padding: the dashboard's session and CSRF tokens,
/// and the payer's client secrets.
enum HMACToken {
    static func mac(_ text: String, _ key: SymmetricKey) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
