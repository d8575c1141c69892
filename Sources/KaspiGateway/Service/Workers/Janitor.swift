import ServiceLifecycle

/// The slow passes, every ``GatewayConfiguration/maintenanceInterval``: deleting expired
/// Idempotency-Keys and settling refunds whose outcome is unknown.
struct Janitor: Service {
    let gateway: Gateway

    func run() async throws {
        let interval = BackgroundLoop.duration(gateway.configuration.maintenanceInterval)
        await BackgroundLoop.run(name: "janitor", gate: gateway.readiness, interval: { interval }, logger: gateway.logger) {
            try await gateway.cleanUpOnce()
            try await gateway.resolveRefundsOnce()
        }
    }
}
