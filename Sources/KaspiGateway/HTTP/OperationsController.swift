import Hummingbird
import NIOCore

/// Health, readiness and Prometheus metrics, for the machines that watch the gateway.
struct OperationsController {
    let gateway: Gateway

    /// Health and readiness on every listener; metrics only where `metrics` (the admin one).
    func addRoutes(to router: Router<GatewayRequestContext>, metrics: Bool) {
        router.get("/health") { _, _ in HealthResponse(status: "ok") }
        router.get("/ready") { _, _ in
            do {
                _ = try await gateway.store.schemaVersion()
                return EditedResponse(status: .ok, response: HealthResponse(status: "ready"))
            } catch {
                return EditedResponse(status: .serviceUnavailable, response: HealthResponse(status: "storage unavailable"))
            }
        }
        guard metrics else { return }
        router.get("/metrics") { _, _ in
            if let certificate = gateway.clientCertificate {
                gateway.metrics.clientCertificate(secondsLeft: certificate.secondsLeft(at: gateway.now()))
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: gateway.metrics.registry.emitToBuffer())))
        }
    }
}
