import Foundation
import Logging
import ServiceLifecycle

/// The loop every background service runs: wait until the gateway is ready, then do one pass,
/// sleep, and again, until graceful shutdown (which also ends a sleep at once). A failed pass
/// is logged and retried after the sleep; no service waits for another.
enum BackgroundLoop {
    static func run(
        name: String, gate: ReadinessGate, interval: @escaping @Sendable () -> Duration, logger: Logger,
        pass: @escaping @Sendable () async throws -> Void
    ) async {
        await cancelWhenGracefulShutdown { await gate.wait() }
        guard gate.isOpen else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await pass()
            } catch {
                logger.warning(
                    "Background work failed; retrying", metadata: ["service": "\(name)", "error": "\(String(describing: error).prefix(160))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval()) }
        }
    }

    /// A number of seconds as a duration.
    static func duration(_ seconds: TimeInterval) -> Duration { .milliseconds(Int64(max(0.001, seconds) * 1000)) }
}
