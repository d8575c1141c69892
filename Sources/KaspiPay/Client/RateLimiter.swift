/// Something every request takes a slot from before it is sent, so that all the clients of a
/// trade point stay under Kaspi's limit together. ``RateLimiter`` keeps the window in memory
/// (one process); the gateway keeps it in its database, shared by every instance.
public protocol RequestRateLimiter: Sendable {
    /// Takes one slot, waiting until one is free.
    ///
    /// - Throws: `CancellationError` when the waiting task is cancelled; the limiter's own
    ///   failure otherwise (the request is then not sent).
    func acquire() async throws
}

/// Keeps a trade point under Kaspi's limit of requests per window (100 a minute).
///
/// Every request a ``KaspiClient`` sends first takes a slot here; when the window is full the
/// caller waits (cancellably) until the oldest request leaves it, rather than failing. Share
/// one limiter across every client of the same trade point.
public actor RateLimiter: RequestRateLimiter {
    /// Requests allowed per window.
    public nonisolated let limit: Int
    /// The window's length.
    public nonisolated let window: Duration
    private let clock: ElapsedClock
    private var sent: [Duration] = []
    private var head = 0

    /// Creates a limiter.
    ///
    /// - Parameters:
    ///   - limit: requests allowed per window; Kaspi's is 100. Below 1 counts as 1.
    ///   - window: the window; Kaspi's is one minute.
    ///   - clock: the clock to measure and wait with.
    public init(
        limit: Int = 100, per window: Duration = .seconds(60),
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.limit = max(1, limit)
        self.window = window
        self.clock = ElapsedClock(clock)
    }

    /// Takes one slot, waiting until one is free.
    ///
    /// - Throws: `CancellationError` when the waiting task is cancelled.
    public func acquire() async throws {
        while true {
            try Task.checkCancellation()
            let now = clock.now()
            while head < sent.count, now - sent[head] >= window { head += 1 }
            if head > 256 {
                sent.removeFirst(head)
                head = 0
            }
            if sent.count - head < limit {
                sent.append(now)
                return
            }
            let wait = sent[head] + window - now
            try await clock.sleep(wait)
        }
    }

    /// Requests counted in the current window.
    public func inFlightWindowCount() -> Int {
        let now = clock.now()
        return sent[head...].filter { now - $0 < window }.count
    }
}
