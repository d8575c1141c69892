import Foundation
import Synchronization

/// Failed dashboard sign-ins, counted per client address and in all, over a sliding window.
/// An address with ``perClient`` failures in the window, or the gateway with ``global``, is
/// refused until the oldest of them leaves the window; the password is not even checked then.
final class SignInThrottle: Sendable {
    let perClient: Int
    let global: Int
    let window: TimeInterval
    private let state = Mutex<(clients: [String: [Date]], all: [Date])>(([:], []))

    init(perClient: Int = 5, global: Int = 50, window: TimeInterval = 900) {
        self.perClient = perClient
        self.global = global
        self.window = window
    }

    /// Seconds until `client` may try again, or nil when it may try now.
    func retryAfter(client: String, now: Date) -> Int? {
        state.withLock { state in Self.wait(client: client, now: now, window: window, perClient: perClient, global: global, in: &state) }
    }

    /// Counts an attempt as a failure before its password is checked, so that guesses sent at
    /// once cannot all pass the check before any is counted: nil when `client` may try (the
    /// attempt is then counted; ``succeeded(client:attemptAt:)`` takes it back), else the
    /// seconds to wait.
    func attempt(client: String, now: Date) -> Int? {
        state.withLock { state in
            if let wait = Self.wait(client: client, now: now, window: window, perClient: perClient, global: global, in: &state) { return wait }
            Self.record(client: client, now: now, window: window, perClient: perClient, global: global, in: &state)
            return nil
        }
    }

    /// Records a failure.
    func failed(client: String, now: Date) {
        state.withLock { state in Self.record(client: client, now: now, window: window, perClient: perClient, global: global, in: &state) }
    }

    private static func wait(
        client: String, now: Date, window: TimeInterval, perClient: Int, global: Int, in state: inout (clients: [String: [Date]], all: [Date])
    ) -> Int? {
        let cutoff = now.addingTimeInterval(-window)
        state.all.removeAll { $0 <= cutoff }
        if let failures = state.clients[client] {
            let recent = failures.filter { $0 > cutoff }
            state.clients[client] = recent.isEmpty ? nil : recent
        }
        var waits: [TimeInterval] = []
        if let recent = state.clients[client], recent.count >= perClient, let oldest = recent.first { waits.append(oldest.timeIntervalSince(cutoff)) }
        if state.all.count >= global, let oldest = state.all.first { waits.append(oldest.timeIntervalSince(cutoff)) }
        guard let wait = waits.max() else { return nil }
        return max(1, Int(wait.rounded(.up)))
    }

    private static func record(
        client: String, now: Date, window: TimeInterval, perClient: Int, global: Int, in state: inout (clients: [String: [Date]], all: [Date])
    ) {
        state.all.append(now)
        if state.all.count > global * 2 { state.all.removeFirst(state.all.count - global * 2) }
        state.clients[client, default: []].append(now)
        if state.clients[client, default: []].count > perClient * 2 { state.clients[client]?.removeFirst() }
        // Bounded memory: forget the quietest addresses when too many are remembered.
        if state.clients.count > 10_000 {
            let cutoff = now.addingTimeInterval(-window)
            state.clients = state.clients.filter { $0.value.last.map { $0 > cutoff } ?? false }
        }
    }

    /// Forgets an address's failures after it signed in, and takes back the attempt counted
    /// for it at `attemptAt`.
    func succeeded(client: String, attemptAt: Date? = nil) {
        state.withLock { state in
            state.clients.removeValue(forKey: client)
            if let attemptAt, let index = state.all.lastIndex(of: attemptAt) { state.all.remove(at: index) }
        }
    }
}
