import Foundation
import Synchronization

/// The sandbox's notion of time: the real clock plus an offset that tests can advance, to
/// expire QR codes or fire webhook retries now.
public final class SandboxClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)

    /// A clock `offset` seconds ahead of real time.
    public init(offset: TimeInterval = 0) { self.offset.withLock { $0 = offset } }

    /// The current sandbox time.
    public var now: Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    /// How far ahead of real time the sandbox is.
    public var currentOffset: TimeInterval { offset.withLock { $0 } }

    /// Moves sandbox time forward.
    public func advance(by seconds: TimeInterval) {
        offset.withLock { $0 += max(0, seconds) }
    }
}
