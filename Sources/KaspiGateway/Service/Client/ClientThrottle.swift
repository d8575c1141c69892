import Foundation
import Synchronization

/// The public client endpoint's limits, per instance and in memory: reads of an order in a
/// minute (counted only with its secret), and wrong secrets per address in 15 minutes (counted
/// only when wrong). A caller with the right secret is never held back by what others behind
/// the same address got wrong. Counted in fixed windows, with a bounded number of keys
/// remembered.
final class ClientThrottle: Sendable {
    struct Limit: Sendable {
        var count: Int
        var window: TimeInterval
    }

    let orderReads: Limit
    let failures: Limit
    let pageViews: Limit
    /// Keys remembered at most; past it, the windows that ended are forgotten, then the rest.
    let capacity: Int
    private let windows = Mutex<[String: (start: Date, count: Int)]>([:])

    init(
        orderReads: Limit = Limit(count: ClientAccess.clientReadsPerOrder, window: 60),
        failures: Limit = Limit(count: ClientAccess.clientSecretFailures, window: 900),
        pageViews: Limit = Limit(count: ClientAccess.pageViewsPerAddress, window: 60), capacity: Int = 50_000
    ) {
        self.orderReads = orderReads
        self.failures = failures
        self.pageViews = pageViews
        self.capacity = capacity
    }

    /// A read with the order's secret: seconds to wait when the order's budget is spent;
    /// otherwise nil, and the read is counted.
    func read(orderID: String, now: Date) -> Int? {
        take("order:\(orderID)", orderReads, now: now)
    }

    /// A wrong secret (or an unknown order) from `address`: counted first, then seconds to
    /// wait when the address is over its budget of failures, else nil.
    func failed(address: String, now: Date) -> Int? {
        windows.withLock { windows in
            Self.count("failures:\(address)", failures, now: now, in: &windows)
            trim(&windows, now: now)
            guard let window = windows["failures:\(address)"], window.count > failures.count else { return nil }
            return max(1, Int((failures.window - now.timeIntervalSince(window.start)).rounded(.up)))
        }
    }

    /// A view of a payer's page from `address`: seconds to wait when the address is over its
    /// budget; otherwise nil, and the view is counted.
    func pageView(address: String, now: Date) -> Int? {
        take("pages:\(address)", pageViews, now: now)
    }

    private func take(_ key: String, _ limit: Limit, now: Date) -> Int? {
        windows.withLock { windows in
            if let window = windows[key], now.timeIntervalSince(window.start) < limit.window, window.count >= limit.count {
                return max(1, Int((limit.window - now.timeIntervalSince(window.start)).rounded(.up)))
            }
            Self.count(key, limit, now: now, in: &windows)
            trim(&windows, now: now)
            return nil
        }
    }

    private static func count(_ key: String, _ limit: Limit, now: Date, in windows: inout [String: (start: Date, count: Int)]) {
        if let window = windows[key], now.timeIntervalSince(window.start) < limit.window {
            windows[key] = (window.start, window.count + 1)
        } else {
            windows[key] = (now, 1)
        }
    }

    private func trim(_ windows: inout [String: (start: Date, count: Int)], now: Date) {
        guard windows.count > capacity else { return }
        let longest = max(orderReads.window, failures.window, pageViews.window)
        windows = windows.filter { now.timeIntervalSince($0.value.start) < longest }
        if windows.count > capacity { windows.removeAll() }
    }
}
