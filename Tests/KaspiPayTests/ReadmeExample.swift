// The README's SDK example. ReadmeTests runs it against a server on loopback and checks that
// the README shows exactly this code, so that the example cannot rot.
import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient

// readme-example-begin
/// Creates a Kaspi order and returns where to send the payer.
func startPayment(orderNumber: Int, total: Int, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> URL {
    // KASPI_TRADE_POINT_ID, KASPI_API_KEY, and KASPI_BASE_URL.
    let configuration = try KaspiConfiguration(environment: environment)
    let transport = AsyncHTTPClientTransport()
    defer { Task { try await transport.shutdown() } }
    let client = KaspiClient(configuration: configuration, transport: transport)

    let order = try await client.orders.create(
        NewOrder(
            amount: try Amount(tenge: total),
            orderID: try OrderID("ORDER-\(orderNumber)"),
            returnURL: URL(string: "https://shop.example/payment/success?orderId=\(orderNumber)")!,
            failURL: URL(string: "https://shop.example/payment/fail?orderId=\(orderNumber)")!,
            description: "Order #\(orderNumber)"))
    return order.paymentURL
}

/// Handles Kaspi's webhook: verify the raw body, then check it against the stored order.
func handleKaspiWebhook(
    rawBody: [UInt8], environment: [String: String] = ProcessInfo.processInfo.environment, storedAmount: (OrderID) async throws -> Amount?
) async throws -> WebhookEvent {
    let verifier = WebhookVerifier(apiKey: try KaspiConfiguration(environment: environment).apiKey)
    let event = try await verifier.verify(body: rawBody) { orderID in
        try await storedAmount(orderID).map { ExpectedOrder(amount: $0) }
    }
    // event.status is .approved, .declined or .cancelled; store event.transactionID.
    return event
}
// readme-example-end
