import ServiceLifecycle

/// Polls the orders that are due: the fallback for lost webhooks and the only source of truth
/// on the Kaspi QR API. It shares nothing with event delivery, so a slow merchant endpoint
/// never delays a poll.
struct Poller: Service {
    let gateway: Gateway

    func run() async throws {
        let interval = BackgroundLoop.duration(gateway.configuration.workerInterval)
        await BackgroundLoop.run(name: "poller", gate: gateway.readiness, interval: { interval }, logger: gateway.logger) {
            try await gateway.reconcileOnce()
        }
    }
}
