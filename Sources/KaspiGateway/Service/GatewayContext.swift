import Crypto
import Foundation
import KaspiGatewayStore
import KaspiPay
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
    func wakeOutbox() { context.outboxWake.fire() }
}

/// HMAC-SHA256 tokens, base64url without padding: the dashboard's session and CSRF tokens,
/// and the payer's client secrets.
enum HMACToken {
    static func mac(_ text: String, _ key: SymmetricKey) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
