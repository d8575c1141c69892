import Foundation
import KaspiGatewayStore
import ServiceLifecycle

/// Polls the orders that are due: the fallback for lost webhooks and the only source of truth
/// on the Kaspi QR API. It shares nothing with event delivery, so a slow merchant endpoint
/// never delays a poll.
///
/// A sliding window of ``GatewayConfiguration/pollConcurrency`` polls: a slot that frees takes
/// the next claimed order at once, and a new batch (``GatewayConfiguration/workBatchSize``) is
/// claimed as soon as the last one is handed out. It rests for
/// ``GatewayConfiguration/workerInterval`` only when nothing more is due, so the orders kept
/// polled on time are bounded by Kaspi's answers and the database, not by a pause per batch.
struct Poller: Service {
    let gateway: Gateway

    /// What a child task of the window ends with.
    enum Step: Sendable {
        /// A poll ended.
        case polled
        /// The idle wait ended: look for due orders again.
        case tick
        /// Shutdown's wait for polls under way ended.
        case grace
    }

    /// How long a graceful shutdown waits for polls under way.
    static let shutdownGrace = Duration.seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown { await gateway.readiness.wait() }
        guard gateway.readiness.isOpen else { return }
        let configuration = gateway.configuration
        let interval = BackgroundLoop.duration(configuration.workerInterval)
        let width = max(1, configuration.pollConcurrency)
        let batch = max(width, configuration.workBatchSize)
        let status = gateway.status
        await withTaskGroup(of: Step.self) { group in
            var claimed: ArraySlice<GatewayOrder> = []
            var claimedAt = Date()
            var inFlight = 0
            var ticking = false
            // Whether more orders may be due: after a full batch, and at every tick.
            var more = true
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if claimed.isEmpty && more && inFlight < width {
                    do {
                        let due = try await status.claimDueOrders(limit: batch)
                        claimed = due.orders[...]
                        claimedAt = due.at
                        more = due.orders.count == batch
                    } catch {
                        more = false
                        gateway.logger.warning(
                            "Could not claim orders to poll; retrying", metadata: ["error": "\(String(describing: error).prefix(160))"])
                    }
                }
                while inFlight < width, let order = claimed.popFirst() {
                    let at = claimedAt
                    group.addTask {
                        await status.poll(order, claimedAt: at)
                        return .polled
                    }
                    inFlight += 1
                }
                if !ticking {
                    ticking = true
                    group.addTask {
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                        return .tick
                    }
                }
                switch await group.next() {
                case .polled?: inFlight -= 1
                case .tick?:
                    ticking = false
                    more = true
                case .grace?, nil: break
                }
            }
            // Polls under way get a few seconds to finish and be recorded; any still waiting then
            // is cancelled, and its order (like the claimed ones not started) is polled again
            // once its lease lapses, or at once when this instance starts again. With none under
            // way, nothing waits.
            if inFlight > 0 {
                group.addTask {
                    try? await Task.sleep(for: Poller.shutdownGrace)
                    return .grace
                }
            }
            while inFlight > 0, let finished = await group.next() {
                switch finished {
                case .polled: inFlight -= 1
                case .grace: group.cancelAll()
                case .tick: break
                }
            }
            group.cancelAll()
        }
    }
}
