/// When and how often the client repeats a request that failed transiently.
///
/// Delays grow exponentially from ``initialDelay`` by ``multiplier`` up to ``maxDelay``, with
/// jitter so that many clients do not retry in lockstep. A server's `Retry-After` is honoured
/// (the client waits at least that long) up to ``maxRetryAfter``; beyond it the error is
/// returned to the caller instead.
///
/// Only safe requests are retried: status reads always; creates through a recovery path that
/// confirms a possible duplicate; refunds only after checking that the first attempt did not
/// go through.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first one included. `1` disables retries.
    public var maxAttempts: Int
    /// The delay before the first retry, before jitter.
    public var initialDelay: Duration
    /// The factor each further delay grows by.
    public var multiplier: Double
    /// The longest delay between two attempts, before `Retry-After`.
    public var maxDelay: Duration
    /// How much of each delay is random: 0 for none, 1 for "full jitter".
    public var jitter: Double
    /// The longest `Retry-After` the client waits for by itself.
    public var maxRetryAfter: Duration
    /// The budget of a whole call: its attempts and the waits between them together. No retry
    /// starts once it would end past the budget, and a retry's own timeout is cut to what
    /// remains, so a server that is down fails a call within this time, not after
    /// ``maxAttempts`` full timeouts.
    public var maxElapsed: Duration

    /// Creates a policy.
    public init(
        maxAttempts: Int = 4,
        initialDelay: Duration = .milliseconds(500),
        multiplier: Double = 2,
        maxDelay: Duration = .seconds(10),
        jitter: Double = 0.5,
        maxRetryAfter: Duration = .seconds(60),
        maxElapsed: Duration = .seconds(45)
    ) {
        self.maxElapsed = max(.zero, maxElapsed)
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = max(.zero, initialDelay)
        self.multiplier = max(1, multiplier)
        self.maxDelay = max(.zero, maxDelay)
        self.jitter = min(1, max(0, jitter))
        self.maxRetryAfter = max(.zero, maxRetryAfter)
    }

    /// The default: 4 attempts, 0.5 s doubling up to 10 s, half of each delay random.
    public static let `default` = RetryPolicy()

    /// No retries at all.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The delay before retry number `retry` (1 for the first retry).
    ///
    /// - Parameters:
    ///   - retry: which retry, from 1.
    ///   - random: a number in `0..<1`.
    ///   - retryAfter: the server's `Retry-After`, if it sent one.
    /// - Returns: the delay, or nil when `retryAfter` exceeds ``maxRetryAfter``.
    public func delay(beforeRetry retry: Int, random: Double, retryAfter: Duration? = nil) -> Duration? {
        let exponent = Double(max(0, retry - 1))
        let base = min(
            Double(attoseconds: maxDelay),
            Double(attoseconds: initialDelay) * pow(multiplier, exponent))
        let jittered = base * (1 - jitter * min(max(random, 0), 1))
        var delay = Duration.fromSeconds(jittered)
        if let retryAfter {
            guard retryAfter <= maxRetryAfter else { return nil }
            delay = max(delay, retryAfter)
        }
        return delay
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
        if result > 1e12 { return result }
    }
    return result
}

extension Double {
    init(attoseconds duration: Duration) {
        let (seconds, atto) = duration.components
        self = Double(seconds) + Double(atto) / 1e18
    }
}

extension Duration {
    static func fromSeconds(_ seconds: Double) -> Duration {
        guard seconds.isFinite, seconds > 0 else { return .zero }
        return .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
