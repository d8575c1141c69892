import AsyncHTTPClient
import Foundation
import KaspiPay
import NIOCore
import ServiceLifecycle

/// Sends due webhooks: the first attempt at once (or after an injected delay), retries on
/// the configured schedule until the merchant answers 2xx. Runs as a service of the
/// sandbox's application and stops gracefully.
struct WebhookDispatcher: Service {
    let sandbox: Sandbox

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    for delivery in await sandbox.state.takeDueDeliveries() {
                        group.addTask {
                            _ = await sandbox.send(delivery, manual: false)
                            if delivery.duplicate, delivery.attempts.isEmpty { _ = await sandbox.send(delivery, manual: false, record: false) }
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
        } onCancelOrGracefulShutdown: {
        }
        await sandbox.shutdown()
    }
}

extension Sandbox {
    /// POSTs a webhook once and records the attempt.
    @discardableResult
    func send(_ delivery: WebhookDelivery, manual: Bool, record: Bool = true) async -> WebhookDelivery.Attempt {
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "KaspiKit-Sandbox/0.1")
        request.body = .bytes(ByteBuffer(string: delivery.body))
        let started = ContinuousClock.now
        var code: Int? = nil
        var failure: String? = nil
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(configuration.webhookTimeoutSeconds * 1000)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            code = Int(response.status.code)
        } catch {
            failure = "\(error)".contains("eadline") || "\(error)".contains("imeout") ? "timeout" : "connection failed"
        }
        let elapsed = ContinuousClock.now - started
        let attempt = WebhookDelivery.Attempt(
            at: clock.now, responseCode: code,
            latencyMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            error: failure, manual: manual)
        if record {
            await state.record(attempt, for: delivery.id)
            try? await state.waitForWrites()
        }
        logger.info(
            "Webhook sent",
            metadata: [
                "orderId": "\(delivery.orderID)", "status": "\(delivery.status)", "responseCode": "\(code.map(String.init) ?? failure ?? "-")",
            ])
        return attempt
    }
}
