// The example in `KaspiQRAPI.Client`'s doc comment. ClientDocExampleTests checks that the
// comment shows exactly this code (with the host the caller chose) and runs it on a sandbox.
import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient

/// The doc comment's example, with the host as a parameter (the comment says `.test`).
func clientDocExample(apiKey: String, host: KaspiQRAPI.Host, transport: AsyncHTTPClientTransport) async throws -> KaspiQRAPI.PaymentOutcome {
    // client-doc-example-begin
    let client = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
        apiKey: try APIKey(apiKey), configuration: .init(host: host), transport: transport)
    let token = try await client.registerDevice(id: "till-1", tradePointID: 19)
    let qr = try await client.createQR(device: token, amount: 200)
    let outcome = try await client.waitForPayment(qr)
    // client-doc-example-end
    return outcome
}
