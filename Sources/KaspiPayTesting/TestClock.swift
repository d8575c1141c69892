import Synchronization

/// A clock that only moves when a test says so, so that nothing in a test sleeps for real.
///
/// ```swift
/// let clock = TestClock()
/// async let result = client.qr.waitForPayment(token: token, clock: clock)
/// await clock.advance(by: .seconds(3))
/// ```
public final class TestClock: Clock, Sendable {
    /// A moment on the test clock: how far it is from the start.
    public struct Instant: InstantProtocol, Sendable {
        /// Time since the clock's start.
        public var offset: Duration
        /// A moment `offset` after the start.
        public init(offset: Duration) { self.offset = offset }
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
        var totalSleeps = 0
    }

    private let state = Mutex(State())

    /// A clock at its start, with no sleeper.
    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .nanoseconds(1) }

    /// How many tasks are sleeping on this clock now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// How many sleeps have started on this clock in all.
    public var totalSleeps: Int { state.withLock { $0.totalSleeps } }

    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    state.totalSleeps += 1
                    if deadline <= state.now { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward, waking every sleeper whose deadline has come, in deadline order.
    public func advance(by duration: Duration) async {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
        await Task.megaYield()
    }

    /// Waits (in real time, by yielding) until at least `count` tasks sleep on this clock.
    ///
    /// - Returns: false when that did not happen within about 10 seconds of real time.
    @discardableResult
    public func waitForSleepers(_ count: Int = 1) async -> Bool {
        for _ in 0..<10_000 {
            if sleeperCount >= count { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return false
    }

    /// Advances time in steps whenever a task sleeps, until `body` finishes: for driving
    /// code that sleeps many times (retries, polling) to its end.
    public func run<T: Sendable>(
        step: Duration = .milliseconds(100),
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let task = Task { try await body() }
        let driver = Task {
            while !Task.isCancelled {
                if sleeperCount > 0 {
                    let next = state.withLock { state in state.sleepers.map(\.deadline).min() }
                    if let next { await advance(by: max(step, now.duration(to: next))) }
                } else {
                    try? await Task.sleep(for: .milliseconds(1))
                }
            }
        }
        defer { driver.cancel() }
        return try await task.value
    }
}

extension Task where Success == Never, Failure == Never {
    /// Yields many times so that tasks woken by the clock run before the caller goes on.
    static func megaYield(count: Int = 20) async {
        for _ in 0..<count { await Task.yield() }
    }
}
