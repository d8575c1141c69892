import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import Synchronization

@testable import KaspiGateway

/// A provider whose answers a test writes in advance, call by call, and which records every
/// call: the gateway's branches (refused, ambiguous, resumed, each poll outcome) tested without
/// a sandbox.
final class ScriptedProvider: PaymentProvider, DirectRefundCapability, Sendable {
    let name = "scripted"
    /// Refunds through the API, as the guide's API and r3 do.
    var capabilities: ProviderCapabilities { ProviderCapabilities(directRefunds: self) }

    /// One scripted answer.
    enum Answer: Sendable {
        case payment(String)
        case status(ProviderStatus)
        case refunded(String)
        case failure(ProviderError)
    }

    private struct State {
        var answers: [String: [Answer]] = [:]
        var calls: [String] = []
        var resumedCreates = 0
        var plan: ProviderPollPlan?
    }
    private let state = Mutex(State())

    /// Queues answers for a call (`create`, `status`, `refund`), given in order.
    func script(_ call: String, _ answers: Answer...) {
        state.withLock { $0.answers[call, default: []] += answers }
    }

    /// The calls made, in order.
    var calls: [String] { state.withLock { $0.calls } }
    /// How many creates were sent as resumptions of an interrupted request.
    var resumedCreates: Int { state.withLock { $0.resumedCreates } }

    /// The plan every order gets (nil: the gateway's own schedule).
    func setPlan(_ plan: ProviderPollPlan?) { state.withLock { $0.plan = plan } }

    private func next(_ call: String) throws(ProviderError) -> Answer {
        let answer = state.withLock { state -> Answer? in
            state.calls.append(call)
            guard var queue = state.answers[call], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            state.answers[call] = queue
            return first
        }
        guard let answer else { throw ProviderError(code: "UNSCRIPTED", message: "No answer scripted for \(call).") }
        if case .failure(let error) = answer { throw error }
        return answer
    }

    func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? { state.withLock { $0.plan } }

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        if request.resuming { state.withLock { $0.resumedCreates += 1 } }
        guard case .payment(let url) = try next("create") else { throw ProviderError(code: "MISSCRIPTED", message: "create") }
        return ProviderPayment(paymentURL: url)
    }

    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        guard case .payment(let token) = try next("create") else { throw ProviderError(code: "MISSCRIPTED", message: "create") }
        return ProviderQR(token: token, png: [])
    }

    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        guard case .status(let status) = try next("status") else { throw ProviderError(code: "MISSCRIPTED", message: "status") }
        return status
    }

    func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        guard case .refunded(let id) = try next("refund") else { throw ProviderError(code: "MISSCRIPTED", message: "refund") }
        return ProviderRefund(refundID: id)
    }
}

/// A wall clock that moves only when a test moves it.
final class ScriptedClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A gateway over a fresh store and a scripted provider, on a scripted clock; the store is closed
/// whether the body succeeds or throws.
func withScriptedGateway(
    _ backend: Backend, configure: (inout GatewayConfiguration) -> Void = { _ in },
    _ body: (Gateway, ScriptedProvider, ScriptedClock) async throws -> Void
) async throws {
    let handle = try await backend.open()
    let provider = ScriptedProvider()
    let clock = ScriptedClock(Date(timeIntervalSince1970: 1_800_000_000))
    var configuration = GatewayConfiguration()
    configuration.apiKeyHashes = [GatewayConfiguration.hash(apiKey: "gw_scripted")]
    configuration.instanceID = "scripted"
    configure(&configuration)
    let gateway = Gateway(configuration: configuration, store: handle.store, provider: provider, now: { clock.now })
    do {
        try await body(gateway, provider, clock)
    } catch {
        await gateway.shutdown()
        try? await handle.close()
        throw error
    }
    await gateway.shutdown()
    try await handle.close()
}
