import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiSandbox
import Testing

@Suite("KaspiQRAPI.Client's doc example")
struct ClientDocExampleTests {
    static let root = ContractChecker.repositoryRoot()

    @Test func isShownVerbatim() throws {
        let example = try String(
            contentsOf: Self.root.appendingPathComponent("Tests/KaspiSandboxTests/ClientDocExample.swift"), encoding: .utf8)
        let start = try #require(example.range(of: "// client-doc-example-begin\n"))
        let end = try #require(example.range(of: "    // client-doc-example-end"))
        let lines = example[start.upperBound..<end.lowerBound].split(separator: "\n")
            .map { String($0.dropFirst(4)).replacingOccurrences(of: "host: host", with: "host: .test") }
        let source = try String(contentsOf: Self.root.appendingPathComponent("Sources/KaspiPay/QRAPI/Client.swift"), encoding: .utf8)
        let shown = (["```swift"] + lines + ["```"]).map { "    /// \($0)" }.joined(separator: "\n")
        #expect(source.contains(shown), "\(shown)")
    }

    /// It runs: the payer scans and confirms on the sandbox while it waits.
    @Test func works() async throws {
        try await withQRSandbox(configure: { $0.qrAPI.statusPollingInterval = 1 }) { h in
            let sandbox = h.sandbox
            let payer = Task {
                for _ in 0..<400 {
                    if let purchase = await sandbox.qrPurchases().first {
                        try await sandbox.act(.scan, paymentID: purchase.id)
                        try await sandbox.act(.confirm, paymentID: purchase.id)
                        return
                    }
                    try await Task.sleep(for: .milliseconds(25))
                }
            }
            let transport = AsyncHTTPClientTransport()
            let outcome = try await clientDocExample(apiKey: QRHarness.apiKey, host: .custom(h.httpURL), transport: transport)
            try await transport.shutdown()
            try await payer.value
            guard case .processed = outcome else {
                Issue.record("expected processed, got \(outcome)")
                return
            }
        }
    }
}
