import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiTestServer
import Testing

@Suite("The README")
struct ReadmeTests {
    static let root = ContractChecker.repositoryRoot()

    @Test func showsTheTestedExampleVerbatim() throws {
        let source = try String(contentsOf: Self.root.appendingPathComponent("Tests/KaspiPayTests/ReadmeExample.swift"), encoding: .utf8)
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(source.range(of: "// readme-example-begin\n"))
        let end = try #require(source.range(of: "// readme-example-end"))
        let example = String(source[start.upperBound..<end.lowerBound])
        #expect(readme.contains("```swift\nimport KaspiPay\nimport KaspiPayAsyncHTTPClient\n\n" + example + "```"))
    }

    @Test func namesTheTwoCommands() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let ci = try String(contentsOf: Self.root.appendingPathComponent(".ci/run"), encoding: .utf8)
        #expect(readme.contains("scripts/test"))
        #expect(ci.contains("scripts/test"))
    }

    /// The example runs for real, with the configuration in the process environment (as a
    /// merchant's would be.
    @Test func theExampleWorks() async throws {
        let server = ContractServer()
        try await server.run { url in
            // The configuration a merchant's process would have in its environment. (Setting
            // the test process's own environment would race with child processes started by
            // other tests: setenv is not thread-safe.)
            let environment = ["KASPI_TRADE_POINT_ID": server.tradePointID, "KASPI_API_KEY": server.apiKey, "KASPI_BASE_URL": url.absoluteString]
            let paymentURL = try await startPayment(orderNumber: 77, total: 5000, environment: environment)
            #expect(paymentURL.absoluteString == "http://pay.test/pay/ORDER-77")
            let key = try APIKey(server.apiKey)
            let body = Array(
                #"{"orderId":"ORDER-77","amount":5000,"status":"APPROVED","transactionId":"TX-77","signature":"\#(Signature.webhook(orderID: "ORDER-77", amount: 5000, apiKey: key))"}"#
                    .utf8)
            let event = try await handleKaspiWebhook(rawBody: body, environment: environment) { id in id == "ORDER-77" ? 5000 : nil }
            #expect(event.status == .approved && event.transactionID == "TX-77")
            await #expect(throws: WebhookVerificationError.amountMismatch(orderID: "ORDER-77", expected: 4000, received: 5000)) {
                try await handleKaspiWebhook(rawBody: body, environment: environment) { _ in 4000 }
            }
        }
    }
}
