import Foundation

/// A lock around a value; Foundation's, so that the module builds for iOS 16.
package final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    package init(_ value: Value) { self.value = value }

    package func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// A wake-up call between two tasks: fired from anywhere, awaited by one waiter at a time. A
/// fire while nobody waits is kept for the next wait; fires are not counted. KaspiCheckout's
/// session waits on one for "the payer is back" (a deep link, the app's return to the
/// foreground); the gateway's outbox dispatcher for "an event was just written".
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Bool, Never>)?
        var nextID: UInt64 = 0
    }

    private let state = Locked(State())

    package init() {}

    /// Wakes the waiter, or the next one to wait.
    package func fire() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: true)
    }

    /// Waits until a fire or until `duration` passed on `clock`; true when fired.
    package func wait(for duration: Duration, clock: ElapsedClock) async -> Bool {
        if state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) {
            return true
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.nextFire() }
            group.addTask {
                try? await clock.sleep(duration)
                return false
            }
            var fired = await group.next() ?? false
            group.cancelAll()
            // A fire that came while the other child ended is not lost.
            for await result in group { fired = fired || result }
            return fired
        }
    }

    /// True when fired, false when cancelled first.
    private func nextFire() async -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let resumeNow = state.withLock { state -> Bool? in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiter = (id, continuation)
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume(returning: false)
        }
    }
}
