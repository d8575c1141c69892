import Foundation
import Synchronization

/// The public client endpoint's limits, per instance and in memory: reads per address and per
/// order in a minute, and wrong secrets per address in 15 minutes. Counted in fixed windows,
/// with a bounded number of keys remembered.
final class ClientThrottle: Sendable {
    struct Limit: Sendable {
        var count: Int
        var window: TimeInterval
    }

    let reads: Limit
    let orderReads: Limit
    let failures: Limit
    /// Keys remembered at most; past it, the windows that ended are forgotten, then the rest.
    let capacity: Int
    private let windows = Mutex<[String: (start: Date, count: Int)]>([:])

    init(
        reads: Limit = Limit(count: ClientAccess.clientReadsPerAddress, window: 60),
        orderReads: Limit = Limit(count: ClientAccess.clientReadsPerOrder, window: 60),
        failures: Limit = Limit(count: ClientAccess.clientSecretFailures, window: 900), capacity: Int = 50_000
    ) {
        self.reads = reads
        self.orderReads = orderReads
        self.failures = failures
        self.capacity = capacity
    }

    /// Seconds to wait when the caller is over a limit; otherwise nil, and the read is counted
    /// for the address (the order's is counted by ``countRead(orderID:now:)`` once the secret
    /// is right).
    func refusal(address: String, orderID: String, now: Date) -> Int? {
        windows.withLock { windows in
            var waits: [TimeInterval] = []
            let checks = [("failures:\(address)", failures), ("address:\(address)", reads), ("order:\(orderID)", orderReads)]
            for (key, limit) in checks {
                if let window = windows[key], now.timeIntervalSince(window.start) < limit.window, window.count >= limit.count {
                    waits.append(limit.window - now.timeIntervalSince(window.start))
                }
            }
            if let wait = waits.max() { return max(1, Int(wait.rounded(.up))) }
            Self.count("address:\(address)", reads, now: now, in: &windows)
            trim(&windows, now: now)
            return nil
        }
    }

    /// Counts a read of `orderID` made with its secret.
    func countRead(orderID: String, now: Date) {
        windows.withLock { windows in
            Self.count("order:\(orderID)", orderReads, now: now, in: &windows)
            trim(&windows, now: now)
        }
    }

    /// Counts a wrong secret from `address`.
    func failed(address: String, now: Date) {
        windows.withLock { windows in
            Self.count("failures:\(address)", failures, now: now, in: &windows)
            trim(&windows, now: now)
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
        let longest = max(reads.window, orderReads.window, failures.window)
        windows = windows.filter { now.timeIntervalSince($0.value.start) < longest }
        if windows.count > capacity { windows.removeAll() }
    }
}
