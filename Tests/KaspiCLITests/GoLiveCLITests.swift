import Foundation
import HummingbirdTesting
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Testing
import X509

/// What running the gateway for real needs from the CLI: each flag reaching its subcommand,
/// the QR profile's flags, a refused certificate said plainly, and a certificate's end.
@Suite("kaspi: going live")
struct GoLiveCLITests {
    /// Two certificate folders from `kaspi sandbox certs`: the sandbox's (`good`, its client
    /// certificate valid `clientDays`) and another CA's (`other`).
    static func certificates(clientDays: Int = 10) async throws -> (good: String, other: String, root: String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("golive-\(UUID().uuidString)").path
        let good = root + "/good"
        let other = root + "/other"
        let made = try await CLI.run([
            "sandbox", "certs", "--dir", good, "--host", "sandbox.test", "--host", "127.0.0.1", "--client-days", "\(clientDays)", "--json",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(try await CLI.run(["sandbox", "certs", "--dir", other]).status == 0)
        return (good, other, root)
    }

    /// A sandbox whose TLS port uses `directory`'s certificates.
    static func withTLSSandbox(
        _ directory: String, verifyClients: Bool, _ body: @Sendable @escaping (_ tls: String, _ sandbox: Sandbox) async throws -> Void
    ) async throws {
        var configuration = SandboxConfiguration()
        configuration.port = 0
        configuration.qrAPI.tlsPorts = [0]
        configuration.qrAPI.certificatesDirectory = directory
        configuration.qrAPI.verifyClientCertificates = verifyClients
        let sandbox = try await Sandbox(configuration: configuration)
        try await sandbox.application().test(.live) { _ in
            var tls: [Int] = []
            for _ in 0..<500 where tls.isEmpty {
                tls = sandbox.qrAPITLSPorts()
                try await Task.sleep(for: .milliseconds(10))
            }
            try await body("https://127.0.0.1:\(try #require(tls.first))", sandbox)
        }
    }

    @Test("kaspi sandbox certs: --host names the server certificate and --client-days sets the client's end")
    func certsFlagsReachCerts() async throws {
        let (good, _, root) = try await Self.certificates(clientDays: 10)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try String(contentsOfFile: good + "/server.pem", encoding: .utf8)
        let names = try #require(try Certificate(pemEncoded: server).extensions.subjectAlternativeNames).map { name -> String in
            switch name {
            case .dnsName(let dns): dns
            case .ipAddress(let bytes): bytes.bytes.map(String.init).joined(separator: ".")
            default: "\(name)"
            }
        }
        #expect(names == ["sandbox.test", "127.0.0.1"])
        let client = try Certificate(pemEncoded: try String(contentsOfFile: good + "/client.pem", encoding: .utf8))
        #expect(abs(client.notValidAfter.timeIntervalSinceNow - 10 * 86_400) < 600)
        let bad = try await CLI.run(["sandbox", "certs", "--dir", root + "/x", "--client-days", "0"])
        #expect(bad.status == 2 && bad.stderr.contains("--client-days"))
        // The parent's own flags still work without naming `serve`.
        let help = try await CLI.run(["sandbox", "serve", "--help"])
        #expect(help.stdout.contains("--qr-verify-client-certificates"))
    }

    @Test("kaspi gateway check: a client certificate Kaspi's TLS refuses is named, said refused, and not retried")
    func refusedCertificate() async throws {
        let (good, other, root) = try await Self.certificates()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/gateway.sqlite"
        try await Self.withTLSSandbox(good, verifyClients: true) { tls, _ in
            let env = ["KASPI_QR_SCHEME": "r2", "KASPI_BASE_URL": tls, "KASPI_QR_CA_BUNDLE": good + "/ca.pem"]
            let refused = try await CLI.run(
                ["gateway", "check", "--database", database, "--cert", other + "/client.pem", "--key", other + "/client-key.pem", "--verbose"],
                environment: env)
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains("KASPI_QR_TLS_REFUSED"))
            #expect(refused.stderr.contains("Kaspi refused the client certificate \(other)/client.pem"))
            #expect(refused.stderr.contains("not retried") && !refused.stderr.contains(".build/checkouts"))
            // One attempt: the verbose log has one request line and no retry.
            #expect(refused.stderr.components(separatedBy: "Kaspi QR API request\n").count - 1 <= 1)
            #expect(refused.stderr.components(separatedBy: "Kaspi QR API request").count - 1 == 2, "\(refused.stderr)")  // request, failed
            #expect(!refused.stderr.contains("Retrying"))
            // A PKCS#12 file is named the same way.
            let password = try String(contentsOfFile: other + "/client.p12.password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let p12 = try await CLI.run(
                ["gateway", "check", "--database", database, "--pkcs12", other + "/client.p12", "--pkcs12-password", password], environment: env)
            #expect(p12.status == 2 && p12.stderr.contains("client certificate in \(other)/client.p12"), "\(p12.stderr)")
            // The server's certificate checked against the wrong CA: said so, naming the bundle.
            let untrusted = try await CLI.run(
                [
                    "gateway", "check", "--database", database, "--cert", good + "/client.pem", "--key", good + "/client-key.pem", "--ca-bundle",
                    other + "/ca.pem",
                ], environment: env)
            #expect(untrusted.status == 2 && untrusted.stderr.contains("not trusted by the CA bundle \(other)/ca.pem"), "\(untrusted.stderr)")
            // The right certificate: accepted, with its end and the 30-day warning.
            let accepted = try await CLI.run(
                ["gateway", "check", "--database", database, "--cert", good + "/client.pem", "--key", good + "/client-key.pem", "--json"],
                environment: env)
            #expect(accepted.status == 0, "\(accepted.stderr)")
            #expect(accepted.stderr.contains("warning: The client certificate \(good)/client.pem expires in 9 days"))
            #expect(accepted.json["certificateDaysLeft"] as? Int == 9)
        }
    }

    @Test("kaspi gateway --profile qr takes the QR flags, warns of the certificate's end, and refuses flags of the other profile")
    func qrProfileFlags() async throws {
        let (good, _, root) = try await Self.certificates(clientDays: 20)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/gateway.sqlite"
        // Flags that do not apply are refused, naming the flag.
        let guideWithScheme = try await CLI.run(["gateway", "--database", database, "--scheme", "r2"])
        #expect(guideWithScheme.status == 2 && guideWithScheme.stderr.contains("--scheme applies to --profile qr only"), "\(guideWithScheme.stderr)")
        let qrWithTradePoint = try await CLI.run(["gateway", "--profile", "qr", "--database", database, "--trade-point-id", "42"])
        #expect(qrWithTradePoint.status == 2 && qrWithTradePoint.stderr.contains("--trade-point-id applies to --profile guide only"))
        try await Self.withTLSSandbox(good, verifyClients: false) { tls, _ in
            // Everything from flags: no KASPI_QR_* variable is set.
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
            env["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
            let gateway = try BackgroundProcess(
                CLI.binary,
                [
                    "gateway", "--profile", "qr", "--scheme", "r3", "--base-url", tls, "--cert", good + "/client.pem", "--key",
                    good + "/client-key.pem", "--ca-bundle", good + "/ca.pem", "--organization-bin", "123456789012", "--database", database,
                    "--port", "0", "--admin-port", "0",
                ],
                environment: env)
            guard await gateway.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
                Issue.record("the gateway did not start: \(gateway.stdout) \(gateway.stderr)")
                _ = await gateway.stop()
                return
            }
            #expect(gateway.stdout.contains("Profile: the Kaspi QR API, r3 at \(tls)"))
            #expect(gateway.stderr.contains("The client certificate \(good)/client.pem expires in 19 days"), "\(gateway.stderr)")
            let admin = try #require(gateway.stdout.firstMatch(of: /Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/admin/).map { String($0.1) })
            let metrics = try await DemoTests.request(.GET, admin + "/metrics")
            let line = try #require(
                metrics.body.split(separator: "\n").first { $0.hasPrefix("kaspi_gateway_client_certificate_expiry_seconds ") }, "\(metrics.body)")
            let seconds = try #require(Double(line.split(separator: " ").last ?? ""))
            #expect(abs(seconds - 20 * 86_400) < 600)
            _ = await gateway.stop()
        }
    }
}
