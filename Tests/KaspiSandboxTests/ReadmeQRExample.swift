// The README's Kaspi QR API example. ReadmeQRTests runs it against a sandbox on loopback and
// checks that the README shows exactly this code.
import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient

// readme-qr-example-begin
/// Shows a QR code for an order and waits for the payer; true once Kaspi reports it paid.
func takeQRPayment(
    orderNumber: Int, total: Decimal, environment: [String: String] = ProcessInfo.processInfo.environment,
    show: @escaping @Sendable (String) -> Void
) async throws -> Bool {
    // KASPI_QR_SCHEME=r1, KASPI_QR_API_KEY, KASPI_QR_DEVICE_TOKEN, and KASPI_ENV or KASPI_BASE_URL.
    let settings = try KaspiQRAPI.Settings(environment: environment)
    guard let apiKey = settings.apiKey, let device = settings.deviceToken else {
        throw ConfigurationError.missingVariable("KASPI_QR_DEVICE_TOKEN")
    }
    let transport = AsyncHTTPClientTransport()
    defer { Task { try await transport.shutdown() } }
    let client = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
        apiKey: apiKey, configuration: .init(host: settings.host), transport: transport)

    let qr = try await client.createQR(device: device, amount: total, externalID: "ORDER-\(orderNumber)")
    show(qr.qrToken)  // draw it as a QR code, with qr.paymentMethods beside it
    switch try await client.waitForPayment(qr) {
    case .processed: return true
    case .failed, .expired: return false
    }
}
// readme-qr-example-end
