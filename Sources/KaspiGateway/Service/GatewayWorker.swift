import Foundation
import ServiceLifecycle

/// Reconciliation and outgoing-event delivery, as one service that stops gracefully.
struct GatewayWorker: Service {
    let gateway: Gateway

    func run() async throws {
        let interval = Duration.milliseconds(Int64(gateway.configuration.workerInterval * 1000))
        // Not before the migrations ran (the application's beforeServing).
        while !gateway.ready.load(ordering: .acquiring) {
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        await gateway.releaseOwnLeases()
        await withTaskCancellationOrGracefulShutdownHandler {
            var lastCleanup = ContinuousClock.now - .seconds(3600)
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await gateway.reconcileOnce()
                    try await gateway.deliverEventsOnce()
                    if ContinuousClock.now - lastCleanup >= .seconds(gateway.configuration.maintenanceInterval) {
                        lastCleanup = ContinuousClock.now
                        try await gateway.cleanUpOnce()
                        try await gateway.resolveRefundsOnce()
                    }
                } catch {
                    gateway.logger.warning("Background work failed; retrying", metadata: ["error": "\(String(describing: error).prefix(160))"])
                }
                try? await Task.sleep(for: interval)
            }
        } onCancelOrGracefulShutdown: {
        }
    }
}
