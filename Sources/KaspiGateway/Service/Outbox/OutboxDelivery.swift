import AsyncHTTPClient
import Foundation
import KaspiGatewayStore
import Logging
import NIOCore

/// Delivers outgoing events to the merchant's endpoint, signed the Standard Webhooks way: owns
/// the HTTP client; ``OutboxDispatcher`` runs it in the background.
final class OutboxDelivery: GatewayPart {
    let context: GatewayContext
    let httpClient: HTTPClient

    init(context: GatewayContext) {
        self.context = context
        var client = HTTPClient.Configuration()
        client.redirectConfiguration = .disallow
        client.timeout = .init(connect: .seconds(5), read: .seconds(10))
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
    }

    /// Releases the HTTP client.
    func shutdown() async {
        try? await httpClient.shutdown()
    }

    /// Delivers the outgoing events that are due, once, up to
    /// ``GatewayConfiguration/deliveryConcurrency`` at a time. Returns how many were attempted.
    @discardableResult
    func deliverEventsOnce(limit: Int? = nil) async throws -> Int {
        guard configuration.merchantWebhookURL != nil else { return 0 }
        let due = try await claimDueEvents(limit: limit ?? configuration.workBatchSize)
        let width = max(1, configuration.deliveryConcurrency)
        for start in stride(from: 0, to: due.count, by: width) {
            await withTaskGroup(of: Bool.self) { group in
                for message in due[start..<min(start + width, due.count)] {
                    group.addTask { await self.deliver(message, manual: false) }
                }
            }
        }
        return due.count
    }

    /// Claims up to `limit` due events for this instance: each message's lease covers one
    /// delivery (its timeout and the write after it).
    func claimDueEvents(limit: Int) async throws -> [OutboxMessage] {
        try await store.claimOutbox(now: now(), limit: limit, owner: configuration.instanceID, lease: configuration.eventDeliveryTimeout + 5)
    }

    /// POSTs one outgoing event, signed the Standard Webhooks way, and records the attempt.
    ///
    /// - Returns: whether the merchant's endpoint took it (a 2xx answer).
    @discardableResult
    func deliver(_ message: OutboxMessage, manual: Bool) async -> Bool {
        guard let url = configuration.merchantWebhookURL, let secret = configuration.merchantWebhookSecret,
            let key = StandardWebhooks.key(from: secret)
        else { return false }
        let timestamp = Int64(now().timeIntervalSince1970)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "webhook-id", value: message.id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature", value: StandardWebhooks.signature(id: message.id, timestamp: timestamp, body: message.payload, key: key))
        request.body = .bytes(ByteBuffer(string: message.payload))
        let started = ContinuousClock.now
        var status: Int? = nil
        var failure: String? = nil
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(Int64(configuration.eventDeliveryTimeout * 1000)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            status = Int(response.status.code)
        } catch {
            // Cancelled at shutdown: not an answer from the merchant, so nothing is recorded.
            if Task.isCancelled { return false }
            failure = DeliveryFailure.describe(error)
        }
        let elapsed = ContinuousClock.now - started
        let latency = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let delivered = status.map { (200..<300).contains($0) } ?? false
        metrics.delivery(delivered ? .delivered : .failed, age: now().timeIntervalSince(message.createdAt))
        let attemptsSoFar = message.attempts + 1
        let schedule = configuration.eventRetrySeconds
        let retryAt: Date? =
            delivered ? nil : (manual ? nil : (attemptsSoFar <= schedule.count ? now().addingTimeInterval(schedule[attemptsSoFar - 1]) : nil))
        do {
            let recorded = try await store.recordDelivery(
                DeliveryAttempt(messageID: message.id, at: now(), statusCode: status, latencyMs: latency, error: failure, manual: manual),
                delivered: delivered, retryAt: retryAt, owner: configuration.instanceID)
            if !recorded {
                logger.warning(
                    "A delivery attempt was not recorded: another instance holds the message's lease now", metadata: ["message": "\(message.id)"])
            }
        } catch {
            logger.error("Could not record a delivery attempt", metadata: ["message": "\(message.id)"])
        }
        return delivered
    }
}
