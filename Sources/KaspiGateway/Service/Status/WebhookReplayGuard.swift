import Foundation
import Synchronization

/// What a replayed webhook may cost. Kaspi's webhook carries no timestamp, so a captured body
/// can be sent again forever; each copy must not buy a call to Kaspi or a row in the timeline:
/// confirmation calls are spaced per order, and a report that changes nothing is noted once in
/// a while an order, not once a copy. Per instance and in memory, with bounded keys.
final class WebhookReplayGuard: Sendable {
    /// The least time between two confirmation calls for one order.
    static let confirmationSpacing: TimeInterval = 2
    /// How long a note of one report on one order stands for its copies.
    static let noteSpacing: TimeInterval = 600

    private let confirmations = Mutex<[String: Date]>([:])
    private let notes = Mutex<[String: Date]>([:])

    /// Takes the order's confirmation slot: nil when Kaspi may be asked now, otherwise the
    /// whole seconds until it may.
    func confirmation(orderID: String, at now: Date) -> Int? {
        Self.take(orderID, spacing: Self.confirmationSpacing, in: confirmations, at: now)
    }

    /// Whether a note of `report` on the order may be written now (none within the spacing).
    func mayNote(orderID: String, report: String, at now: Date) -> Bool {
        Self.take("\(orderID) \(report)", spacing: Self.noteSpacing, in: notes, at: now) == nil
    }

    private static func take(_ key: String, spacing: TimeInterval, in map: borrowing Mutex<[String: Date]>, at now: Date) -> Int? {
        map.withLock { last in
            if let previous = last[key], now.timeIntervalSince(previous) < spacing {
                return max(1, Int((spacing - now.timeIntervalSince(previous)).rounded(.up)))
            }
            if last.count > 10_000 { last = last.filter { now.timeIntervalSince($0.value) < spacing } }
            if last.count > 10_000 { last.removeAll() }
            last[key] = now
            return nil
        }
    }
}
