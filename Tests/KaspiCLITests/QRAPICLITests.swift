import Foundation
import HummingbirdTesting
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import Synchronization
import Testing

/// `kaspi qr-api`, `kaspi sandbox certs` and `kaspi trigger` against an in-process sandbox.
@Suite("kaspi qr-api")
struct QRAPICLITests {
    static let apiKey = "test_0f8fad5b-d9cb-469f-a165-70867728950e"

    /// Certificates from `kaspi sandbox certs`, then a sandbox that uses them.
    func withSandbox(_ body: @Sendable @escaping (_ http: String, _ tls: String, _ dir: String, _ sandbox: Sandbox) async throws -> Void) async throws
    {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-qr-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = try await CLI.run(["sandbox", "certs", "--dir", dir, "--password", "cli-pass", "--json"])
        #expect(certs.status == 0, "\(certs.stderr)")
        #expect(certs.json["clientPkcs12"] as? String == dir + "/client.p12")
        let again = try await CLI.run(["sandbox", "certs", "--dir", dir])
        #expect(again.status == 2 && again.stderr.contains("--force"))
        var configuration = SandboxConfiguration()
        configuration.port = 0
        configuration.qrAPI.tlsPorts = [0]
        configuration.qrAPI.certificatesDirectory = dir
        let sandbox = try await Sandbox(configuration: configuration)
        try await sandbox.application().test(.live) { client in
            var tls: [Int] = []
            for _ in 0..<500 where tls.isEmpty {
                tls = sandbox.qrAPITLSPorts()
                try await Task.sleep(for: .milliseconds(10))
            }
            try await body("http://127.0.0.1:\(client.port!)", "https://127.0.0.1:\(try #require(tls.first))", dir, sandbox)
        }
    }

    @Test func r1FromDeviceToPaidAndItsErrors() async throws {
        try await withSandbox { http, _, dir, _ in
            var env = ["KASPI_QR_SCHEME": "r1", "KASPI_BASE_URL": http, "KASPI_QR_API_KEY": Self.apiKey]
            let points = try await CLI.run(["qr-api", "tradepoints"], environment: env)
            #expect(points.status == 0 && points.stdout.contains("19\tSandbox Shop (Abay 1)"), "\(points.stderr)")
            let device = try await CLI.run(["qr-api", "device", "register", "--id", "cli-till", "--trade-point", "19", "--json"], environment: env)
            let token = try #require(device.json["deviceToken"] as? String, "\(device.stderr)")
            env["KASPI_QR_DEVICE_TOKEN"] = token
            let png = dir + "/qr.png"
            let created = try await CLI.run(
                ["qr-api", "create", "--amount", "1500.50", "--external-id", "cli-1", "--out", png, "--json"], environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            let id = try #require(created.json["paymentId"] as? Int64)
            #expect((created.json["qrToken"] as? String)?.count == 41 && created.json["scanTimeout"] as? Int == 180)
            let image = try Data(contentsOf: URL(fileURLWithPath: png))
            #expect(Array(image.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
            if let zbar = try ExternalTool.zbarimg.locate() {
                let decoded = try await ProcessRunner.run(zbar, ["--raw", "-q", png])
                #expect(decoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == created.json["qrToken"] as? String)
            }
            #expect(try await CLI.run(["qr-api", "test", "scan", "\(id)"], environment: env).status == 0)
            let waiting = try await CLI.run(["qr-api", "status", "\(id)", "--json"], environment: env)
            #expect(waiting.json["status"] as? String == "Wait")
            #expect(try await CLI.run(["qr-api", "test", "confirm", "\(id)"], environment: env).status == 0)
            let paid = try await CLI.run(["qr-api", "status", "\(id)", "--wait"], environment: env)
            #expect(paid.status == 0 && paid.stdout.contains("Processed (transaction "), "\(paid.stderr)")
            #expect(paid.stderr.contains("status Processed"))  // the progress line
            // A link, waited on until its Error.
            let link = try await CLI.run(["qr-api", "create", "--amount", "100", "--link", "--json"], environment: env)
            let linkID = try #require(link.json["paymentId"] as? Int64)
            #expect((link.json["paymentLink"] as? String)?.hasPrefix(http + "/pay/") == true)
            #expect(try await CLI.run(["trigger", "scanerror", "\(linkID)", "--sandbox-url", http], environment: env).status == 0)
            let failed = try await CLI.run(["qr-api", "status", "\(linkID)", "--wait"], environment: env)
            #expect(failed.status == 3)
            // Errors: exit 2 for input, 1 with Kaspi's code for Kaspi's refusal.
            let r1Refund = try await CLI.run(["qr-api", "refund", "\(id)", "--amount", "10"], environment: env)
            #expect(r1Refund.status == 2 && r1Refund.stderr.contains("Kaspi Pay app"))
            #expect(try await CLI.run(["qr-api", "create", "--amount", "1.005"], environment: env).status == 2)
            let missing = try await CLI.run(["qr-api", "status", "42", "--json"], environment: env)
            #expect(missing.status == 1 && missing.stderr.contains("KASPI_QR_PURCHASE_NOT_FOUND"))
            var wrong = env
            wrong["KASPI_QR_API_KEY"] = "test_wrong"
            let refused = try await CLI.run(["qr-api", "ping"], environment: wrong)
            #expect(refused.status == 1 && refused.stderr.contains("KASPI_QR_NOT_AUTHENTICATED") && !refused.stderr.contains("test_wrong"))
            let noScheme = try await CLI.run(["qr-api", "ping"], environment: ["KASPI_BASE_URL": http])
            #expect(noScheme.status == 2 && noScheme.stderr.contains("KASPI_QR_SCHEME"))
            let noDevice = try await CLI.run(
                ["qr-api", "create", "--amount", "5"],
                environment: ["KASPI_QR_SCHEME": "r1", "KASPI_BASE_URL": http, "KASPI_QR_API_KEY": Self.apiKey])
            #expect(noDevice.status == 2 && noDevice.stderr.contains("device register"))
        }
    }

    @Test func r2AndR3OverTLSWithCertificates() async throws {
        try await withSandbox { http, tls, dir, sandbox in
            let r3: [String: String] = [
                "KASPI_QR_SCHEME": "r3", "KASPI_BASE_URL": tls, "KASPI_QR_PKCS12": dir + "/client.p12", "KASPI_QR_PKCS12_PASSWORD": "cli-pass",
                "KASPI_QR_CA_BUNDLE": dir + "/ca.pem", "KASPI_QR_ORGANIZATION_BIN": "123456789012",
            ]
            #expect(try await CLI.run(["qr-api", "ping"], environment: r3).status == 0)
            let second = try await CLI.run(["qr-api", "tradepoints", "--organization-bin", "987654321098"], environment: r3)
            #expect(second.stdout.contains("104039"), "\(second.stderr)")
            let device = try await CLI.run(["qr-api", "device", "register", "--id", "cli-r3", "--trade-point", "19", "--json"], environment: r3)
            var env3 = r3
            env3["KASPI_QR_DEVICE_TOKEN"] = try #require(device.json["deviceToken"] as? String)
            let created = try await CLI.run(["qr-api", "create", "--amount", "900", "--json"], environment: env3)
            let id = try #require(created.json["paymentId"] as? Int64)
            for action in ["scan", "confirm"] { #expect(try await CLI.run(["trigger", action, "\(id)", "--sandbox-url", http]).status == 0) }
            let refund = try await CLI.run(["qr-api", "refund", "\(id)", "--amount", "300", "--json"], environment: env3)
            #expect(refund.status == 0 && refund.json["returnOperationId"] is Int64, "\(refund.stderr)")
            let details = try await CLI.run(["qr-api", "details", "\(id)", "--json"], environment: env3)
            #expect(details.json["availableReturnAmount"] as? Int == 600)
            let over = try await CLI.run(["qr-api", "refund", "\(id)", "--amount", "601"], environment: env3)
            #expect(over.status == 1 && over.stderr.contains("KASPI_QR_REFUND_EXCEEDS_AMOUNT"))
            let name = try await CLI.run(["qr-api", "remote", "client-info", "--phone", "87071234567"], environment: env3)
            #expect(name.stdout.contains("4567"))
            let invoice = try await CLI.run(
                ["qr-api", "remote", "create", "--phone", "87071234567", "--amount", "100", "--comment", "x", "--json"], environment: env3)
            let invoiceID = try #require(invoice.json["paymentId"] as? Int64, "\(invoice.stderr)")
            let cancelled = try await CLI.run(["qr-api", "remote", "cancel", "\(invoiceID)"], environment: env3)
            #expect(cancelled.stdout.contains("RemotePaymentCanceled"))

            // r2 with PEM files: the customer scans a return QR, then the refund.
            let r2: [String: String] = [
                "KASPI_QR_SCHEME": "r2", "KASPI_BASE_URL": tls, "KASPI_QR_CERT": dir + "/client.pem", "KASPI_QR_KEY": dir + "/client-key.pem",
                "KASPI_QR_CA_BUNDLE": dir + "/ca.pem", "KASPI_QR_DEVICE_TOKEN": env3["KASPI_QR_DEVICE_TOKEN"] ?? "",
            ]
            let returnQR = try await CLI.run(["qr-api", "return", "create", "--json"], environment: r2)
            let returnID = try #require(returnQR.json["returnId"] as? Int64, "\(returnQR.stderr)")
            try await sandbox.scanReturn(returnID)
            let status = try await CLI.run(["qr-api", "return", "status", "\(returnID)"], environment: r2)
            #expect(status.stdout.contains("CustomerIdentityObtained"))
            let operations = try await CLI.run(["qr-api", "return", "operations", "\(returnID)"], environment: r2)
            #expect(operations.stdout.contains("\(id)"))
            let noReturn = try await CLI.run(["qr-api", "refund", "\(id)", "--amount", "100"], environment: r2)
            #expect(noReturn.status == 2 && noReturn.stderr.contains("--return-id"))
            let refunded = try await CLI.run(["qr-api", "refund", "\(id)", "--amount", "100", "--return-id", "\(returnID)"], environment: r2)
            #expect(refunded.status == 0, "\(refunded.stderr)")
            // r2 for production has no known host.
            var production = r2
            production["KASPI_BASE_URL"] = nil
            production["KASPI_ENV"] = "production"
            let unknown = try await CLI.run(["qr-api", "ping"], environment: production)
            #expect(unknown.status == 2 && unknown.stderr.contains("CONFIG_UNKNOWN_PRODUCTION_HOST"))
            // An unreadable certificate names the file, not its content.
            var broken = r2
            broken["KASPI_QR_CERT"] = dir + "/missing.pem"
            let unreadable = try await CLI.run(["qr-api", "ping"], environment: broken)
            #expect(unreadable.status == 2 && unreadable.stderr.contains("missing.pem"))
        }
    }
}
