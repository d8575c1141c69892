/// A clock reduced to what the client needs, so that any `Clock<Duration>` can be injected
/// without making every type generic over it.
package struct ElapsedClock: Sendable {
    /// Time elapsed since the clock was wrapped.
    package let now: @Sendable () -> Duration
    /// Sleeps for a duration; throws `CancellationError` when the task is cancelled.
    package let sleep: @Sendable (Duration) async throws -> Void

    package init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        self.now = { start.duration(to: clock.now) }
        self.sleep = { duration in
            guard duration > .zero else {
                try Task.checkCancellation()
                return
            }
            try await clock.sleep(until: clock.now.advanced(by: duration), tolerance: nil)
        }
    }
}
