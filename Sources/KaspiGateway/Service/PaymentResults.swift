import Foundation
import KaspiGatewayStore

extension Gateway {
    /// What the payer is told when they come back from Kaspi.
    public enum PaymentOutcome: String, Sendable {
        case success, pending, failed
    }

    /// An order's outcome for the payer who came back from Kaspi. The way back proves
    /// nothing, so the provider is asked (the polling fallback) unless the order is settled, at
    /// most once every 2 s an order (the app's reads have a slot of their own): the page is
    /// public and refreshes itself, and a reloading visitor must not turn into a stream of
    /// calls to Kaspi.
    ///
    /// - Returns: nil for an unknown order.
    public func paymentResult(orderID: String) async -> (order: GatewayOrder, outcome: PaymentOutcome)? {
        guard var order = try? await store.order(id: orderID) else { return nil }
        if clients.takeRefreshSlot(for: order, at: now(), returning: true), let refreshed = try? await refreshStatus(order, source: .returnPage) {
            order = refreshed
        }
        let outcome: PaymentOutcome
        switch order.state {
        case .paid: outcome = .success
        case .created, .pending: outcome = .pending
        case .declined, .cancelled, .expired: outcome = .failed
        }
        return (order, outcome)
    }
}
