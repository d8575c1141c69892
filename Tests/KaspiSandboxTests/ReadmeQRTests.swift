import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("The README's Kaspi QR API example")
struct ReadmeQRTests {
    static let root = ContractChecker.repositoryRoot()

    @Test func isShownVerbatim() throws {
        let source = try String(contentsOf: Self.root.appendingPathComponent("Tests/KaspiSandboxTests/ReadmeQRExample.swift"), encoding: .utf8)
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(source.range(of: "// readme-qr-example-begin\n"))
        let end = try #require(source.range(of: "// readme-qr-example-end"))
        let example = String(source[start.upperBound..<end.lowerBound])
        #expect(readme.contains("```swift\nimport KaspiPay\nimport KaspiPayAsyncHTTPClient\n\n" + example + "```"))
    }

    /// The example runs for real, configured by the variables a merchant's process would have;
    /// the payer pays on the sandbox once the QR is shown.
    @Test func works() async throws {
        try await withQRSandbox(configure: { $0.qrAPI.statusPollingInterval = 1 }) { h in
            let device = try await h.device("readme-till")
            let sandbox = h.sandbox
            let variables = [
                "KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": QRHarness.apiKey, "KASPI_QR_DEVICE_TOKEN": device.value,
                "KASPI_BASE_URL": h.httpURL.absoluteString,
            ]
            let paid = try await takeQRPayment(orderNumber: 7, total: 2500, environment: variables) { token in
                // The payer scans and confirms once the QR is shown.
                Task {
                    guard let purchase = await sandbox.qrPurchases().first(where: { $0.token == token }) else { return }
                    try await sandbox.act(.scan, paymentID: purchase.id)
                    try await sandbox.act(.confirm, paymentID: purchase.id)
                }
            }
            #expect(paid)
            #expect(await h.sandbox.qrPurchases().first?.externalID == "ORDER-7")
        }
    }
}
