import Foundation
import KaspiGatewayStore
import KaspiPay

/// Kaspi's limit of requests per trade point (100 a minute) kept in the gateway's database, so
/// that every instance on one PostgreSQL shares it: what one instance sends counts for all.
///
/// Each slot is taken atomically in the database's sliding window; a full window waits until
/// its oldest slot frees. The window is kept a little longer than Kaspi's (``margin``), since a
/// request reaches Kaspi a little after its slot is taken.
public struct SharedRateLimiter: RequestRateLimiter {
    let store: any GatewayStore
    let key: String
    let limit: Int
    let window: TimeInterval
    /// Added to the window.
    let margin: TimeInterval
    let now: @Sendable () -> Date

    /// - Parameters:
    ///   - key: what the limit is per, e.g. the trade point's id.
    ///   - limit: requests per window (Kaspi's: 100).
    ///   - window: seconds (Kaspi's: 60).
    public init(
        store: any GatewayStore, key: String, limit: Int, window: TimeInterval, margin: TimeInterval = 0.5,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.key = key
        self.limit = max(1, limit)
        self.window = max(0.001, window)
        self.margin = max(0, margin)
        self.now = now
    }

    /// A limiter for the trade point of `configuration` at its ``KaspiConfiguration/rateLimit``;
    /// nil when the configuration has none.
    public init?(store: any GatewayStore, configuration: KaspiConfiguration) {
        guard let limit = configuration.rateLimit else { return nil }
        let (seconds, attoseconds) = limit.window.components
        self.init(store: store, key: configuration.tradePointID.rawValue, limit: limit.requests, window: Double(seconds) + Double(attoseconds) / 1e18)
    }

    /// Waits until a slot in the shared window is free, then takes it.
    public func acquire() async throws {
        while true {
            try Task.checkCancellation()
            guard let wait = try await store.takeRateSlot(key: "kaspi:\(key)", limit: limit, window: window + margin, now: now()) else { return }
            try await Task.sleep(for: .milliseconds(Int64(min(wait, 120) * 1000) + 1))
        }
    }
}
