import Hummingbird
import NIOCore

/// `POST /webhooks/kaspi`: Kaspi's webhooks, from their raw bodies (the signature covers the
/// bytes as sent). The answer is sent only after the change is committed.
struct WebhookController {
    let gateway: Gateway

    /// A webhook is far smaller than this.
    static let maxBody = 16 * 1024

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.group("webhooks")
            .add(middleware: APIErrorMiddleware(logger: gateway.logger))
            .post("kaspi") { request, _ in
                let body: ByteBuffer
                do { body = try await request.body.collect(upTo: Self.maxBody) } catch {
                    if (error as? any HTTPResponseError)?.status == .contentTooLarge {
                        throw GatewayError(.tooLarge, "WEBHOOK_BODY_TOO_LARGE", "A webhook body is at most 16 KiB.")
                    }
                    throw GatewayError.bodyUnreadable(error, limit: Self.maxBody)
                }
                _ = try await gateway.handleWebhook(Array(body.readableBytesView))
                return WebhookReceivedResponse()
            }
    }
}

/// Health, readiness and Prometheus metrics, for the machines that watch the gateway.
struct OperationsController {
    let gateway: Gateway

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/health") { _, _ in HealthResponse(status: "ok") }
        router.get("/ready") { _, _ in
            do {
                _ = try await gateway.store.schemaVersion()
                return EditedResponse(status: .ok, response: HealthResponse(status: "ready"))
            } catch {
                return EditedResponse(status: .serviceUnavailable, response: HealthResponse(status: "storage unavailable"))
            }
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: gateway.metrics.registry.emitToBuffer())))
        }
    }
}
