import Hummingbird
import NIOCore

/// `POST /webhooks/kaspi`: Kaspi's webhooks, from their raw bodies (the signature covers the
/// bytes as sent). The answer is sent only after the change is committed.
struct WebhookController {
    let gateway: Gateway

    /// A webhook is far smaller than this.
    static let maxBody = 16 * 1024

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let webhooks = router.group("webhooks").add(middleware: APIErrorMiddleware(logger: gateway.logger))
        guard gateway.capabilities.webhooks != nil else {
            // The Kaspi QR API sends none: whatever is posted here is not from Kaspi.
            webhooks.post("kaspi") { _, _ -> Response in throw gateway.refuseWebhookWithoutCapability() }
            return
        }
        webhooks.post("kaspi") { request, _ in
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
