import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

/// The background services run independently: polling never waits on event delivery.
@Suite("Background services")
struct BackgroundServicesTests {
    @Test("a merchant endpoint that never answers never delays a poll", arguments: Backend.available)
    func hungEndpointDoesNotDelayPolls(_ backend: Backend) async throws {
        let endpoint = try SilentListener()
        try await withQRStack(backend, scheme: .r1) { configuration in
            configuration.merchantWebhookURL = "http://127.0.0.1:\(endpoint.port)/events"
            configuration.merchantWebhookSecret = StandardWebhooks.makeSecret()
            // Each delivery waits for an hour: a worker that delivered before it polled again
            // would not poll again within this test.
            configuration.eventDeliveryTimeout = 3600
        } _: { s in
            let (first, _) = try await s.checkout(qr: true)
            let (second, _) = try await s.checkout(qr: true)
            let declined = try #require(try await s.purchase(first))
            let paid = try #require(try await s.purchase(second))
            // The first order's outcome makes an event, whose delivery then hangs.
            try await s.sandbox.act(.scanError, paymentID: declined.id)
            #expect(try await s.advance(6, until: first, is: .declined))
            let message = try #require(try await s.gateway.store.outboxMessages(orderID: first, limit: 10).first)
            #expect(await eventually(seconds: 20) { endpoint.connections > 0 })
            // The second is paid at Kaspi while that delivery is under way: the next poll sees it.
            try await s.sandbox.act(.scan, paymentID: paid.id)
            try await s.sandbox.act(.confirm, paymentID: paid.id)
            #expect(try await s.advance(6, until: second, is: .paid))
            // The hung delivery had not ended: polling did not wait for it.
            #expect(try await s.gateway.store.deliveryAttempts(messageID: message.id).isEmpty)
        }
    }
}
