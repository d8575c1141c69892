import Foundation
import KaspiPay
import KaspiPayTesting
import KaspiTestServer
import Testing

/// Runs the built `kaspi` binary.
struct CLI {
    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        /// stdout parsed as one JSON object.
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:] }
    }

    static let binary: URL = {
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first {
            var url = URL(fileURLWithPath: first).deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(url.appendingPathComponent("kaspi"))
                url.deleteLastPathComponent()
            }
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("kaspi"))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("kaspi"))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/kaspi"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }()

    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> Result {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
        env.merge(environment) { $1 }
        let output = try await ProcessRunner.run(binary, arguments, environment: env, stdin: stdin.map { Array($0.utf8) })
        return Result(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }
}

@Suite("The kaspi CLI")
struct CLITests {
    func env(_ server: ContractServer, _ url: URL) -> [String: String] {
        ["KASPI_TRADE_POINT_ID": server.tradePointID, "KASPI_API_KEY": server.apiKey, "KASPI_BASE_URL": url.absoluteString]
    }

    @Test(
        "the help wraps its paragraphs whole: no line breaks in the middle of a sentence",
        arguments: [
            [], ["gateway"], ["sandbox"], ["qr-api"], ["demo"], ["orders"], ["qr"], ["trigger"], ["signature"],
        ])
    func helpParagraphsWrapWhole(_ command: [String]) async throws {
        let help = try await CLI.run(command + ["--help"])
        #expect(help.status == 0)
        // The text before USAGE: paragraphs separated by blank lines. Within one, every line
        // but the last is filled to near the 80 columns the help wraps at.
        let text = help.stdout.components(separatedBy: "USAGE:").first ?? ""
        for paragraph in text.components(separatedBy: "\n\n") {
            let lines = paragraph.split(separator: "\n").map(String.init)
            for line in lines.dropLast() {
                #expect(line.count >= 45, "\(command): a line broken short: \(line)")
            }
        }
    }

    @Test func theBinaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: CLI.binary.path), "\(CLI.binary.path)")
    }

    @Test func ordersCreateStatusRefund() async throws {
        let server = ContractServer()
        try await server.run { url in
            let env = env(server, url)
            let created = try await CLI.run(
                [
                    "orders", "create", "--amount", "5000", "--order-id", "CLI-1", "--return-url", "https://shop.example/ok",
                    "--fail-url", "https://shop.example/fail", "--description", "Order #1",
                ], environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("Payment URL: http://pay.test/pay/CLI-1"))
            let sent = jsonObject(server.requests.first { $0.path == "/api/v1/orders/create" }?.body ?? "")
            #expect(sent["description"] as? String == "Order #1")

            let json = try await CLI.run(
                [
                    "orders", "create", "--amount", "700", "--return-url", "https://shop.example/ok", "--fail-url", "https://shop.example/fail",
                    "--json",
                ],
                environment: env)
            #expect(json.status == 0)
            #expect((json.json["paymentUrl"] as? String)?.hasPrefix("http://pay.test/pay/ORDER-") == true)
            #expect(json.json["status"] as? String == "PENDING")

            let pending = try await CLI.run(["orders", "status", "CLI-1", "--json"], environment: env)
            #expect(pending.json["status"] as? String == "PENDING")
            #expect(pending.json["amount"] as? Int == 5000)
            server.setStatus("CLI-1", "APPROVED")
            let approved = try await CLI.run(["orders", "status", "CLI-1"], environment: env)
            #expect(approved.stdout == "CLI-1: APPROVED, 5000 tenge, transaction TX-CLI-1\n")

            let refund = try await CLI.run(["orders", "refund", "CLI-1", "--amount", "1200", "--json"], environment: env)
            #expect(refund.status == 0, "\(refund.stderr)")
            #expect(refund.json["refundedAmount"] as? Int == 1200)
            let over = try await CLI.run(["orders", "refund", "CLI-1", "--amount", "99999"], environment: env)
            #expect(over.status == 1)
            #expect(over.stderr.hasPrefix("error: REFUND_NOT_ALLOWED: "))
            for output in [created, json, pending, approved, refund, over] {
                #expect(!output.stdout.contains(server.apiKey) && !output.stderr.contains(server.apiKey))
            }
        }
    }

    @Test func flagsOverrideTheEnvironment() async throws {
        let server = ContractServer()
        try await server.run { url in
            let result = try await CLI.run(
                [
                    "orders", "status", "NOPE", "--trade-point-id", server.tradePointID, "--api-key", server.apiKey, "--base-url", url.absoluteString,
                    "--json",
                ],
                environment: ["KASPI_API_KEY": "wrong", "KASPI_BASE_URL": "http://127.0.0.1:9"])
            #expect(result.status == 1, "\(result.stderr)")
            let error = jsonObject(result.stderr)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "ORDER_NOT_FOUND")
        }
    }

    @Test func qrCreateAndWait() async throws {
        let server = ContractServer()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kaspi-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let png = folder.appendingPathComponent("qr.png")
        try await server.run { url in
            let env = env(server, url)
            let created = try await CLI.run(
                ["qr", "create", "--amount", "1500", "--order-id", "QR-CLI", "--out", png.path, "--json"], environment: env)
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.json["qrToken"] as? String == "qr_QR-CLI")
            #expect(try Data(contentsOf: png).starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let status = try await CLI.run(["qr", "status", "qr_QR-CLI"], environment: env)
            #expect(status.stdout == "qr_QR-CLI: PENDING\n")

            var waitEnvironment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
            waitEnvironment.merge(env) { $1 }
            let waiting = try BackgroundProcess(
                CLI.binary, ["qr", "status", "qr_QR-CLI", "--wait", "--interval", "0.1", "--max-attempts", "200"], environment: waitEnvironment)
            // Approve only once the wait has shown the payment pending.
            #expect(await waiting.waitForOutput(matching: "waiting for payment… 1/200: PENDING", inStandardError: true) != nil)
            server.setStatus("QR-CLI", "APPROVED")
            #expect(await waiting.waitForExit() == 0, "\(waiting.stderr)")
            #expect(waiting.stdout == "Paid.\n")

            let timedOut = try await CLI.run(["qr", "create", "--amount", "100", "--order-id", "QR-T"], environment: env)
            #expect(timedOut.status == 0)
            let wait = try await CLI.run(["qr", "status", "qr_QR-T", "--wait", "--interval", "0", "--max-attempts", "2", "--json"], environment: env)
            #expect(wait.status == 4)
            #expect(wait.json["outcome"] as? String == "timeout")
            server.setStatus("QR-T", "DECLINED")
            let declined = try await CLI.run(["qr", "status", "qr_QR-T", "--wait", "--interval", "0"], environment: env)
            #expect(declined.status == 3)
            #expect(declined.stdout == "Declined.\n")
        }
    }

    @Test func signatures() async throws {
        let computed = try await CLI.run(
            ["signature", "compute", "--kind", "order", "--amount", "5000", "--order-id", "ORDER-123"], environment: ["KASPI_API_KEY": "test_key_abc"]
        )
        #expect(computed.stdout == "656fe6a0a98dde2ee92b05823778534d628bdf0a5587468cbc809afea5e15f73\n")
        let webhook = try await CLI.run(
            ["signature", "compute", "--kind", "webhook", "--amount", "5000", "--order-id", "ORDER-123", "--api-key", "test_key_abc", "--json"])
        #expect(webhook.json["signature"] as? String == "60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2")
        let valid = try await CLI.run(
            [
                "signature", "verify", "--kind", "webhook", "--amount", "5000", "--order-id", "ORDER-123", "--signature",
                "60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2",
            ], environment: ["KASPI_API_KEY": "test_key_abc"])
        #expect(valid.status == 0 && valid.stdout == "valid\n")
        let invalid = try await CLI.run(
            [
                "signature", "verify", "--kind", "order", "--amount", "5000", "--order-id", "ORDER-123", "--signature",
                "60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2",
            ], environment: ["KASPI_API_KEY": "test_key_abc"])
        #expect(invalid.status == 1 && invalid.stdout == "invalid\n")

        let body =
            #"{"orderId":"ORDER-123","amount":5000,"status":"APPROVED","transactionId":"TX","signature":"60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2"}"#
        let hook = try await CLI.run(
            ["signature", "verify", "--webhook", "-", "--json"], environment: ["KASPI_API_KEY": "test_key_abc"], stdin: body)
        #expect(hook.status == 0, "\(hook.stderr)")
        #expect(hook.json["status"] as? String == "APPROVED")
        let forged = try await CLI.run(
            ["signature", "verify", "--webhook", "-"], environment: ["KASPI_API_KEY": "test_key_abc"],
            stdin: body.replacingOccurrences(of: "5000", with: "50"))
        #expect(forged.status == 1)
        #expect(forged.stderr.hasPrefix("error: WEBHOOK_BAD_SIGNATURE: "))
    }

    @Test func errorsAreClearAndExitNonZero() async throws {
        let missing = try await CLI.run(["orders", "status", "A"], environment: ["KASPI_TRADE_POINT_ID": "TP"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("CONFIG_MISSING_VARIABLE") && missing.stderr.contains("KASPI_API_KEY"))

        let env = ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "sk_SECRET_CLI", "KASPI_BASE_URL": "http://127.0.0.1:9"]
        let small = try await CLI.run(
            ["orders", "create", "--amount", "50", "--return-url", "https://a.example/", "--fail-url", "https://a.example/"], environment: env)
        #expect(small.status == 2)
        #expect(small.stderr.hasPrefix("error: AMOUNT_BELOW_MINIMUM: "))
        let badID = try await CLI.run(["orders", "status", "bad id"], environment: env)
        #expect(badID.status == 2 && badID.stderr.contains("INVALID_ORDER_ID"))
        let badURL = try await CLI.run(
            ["orders", "create", "--amount", "500", "--return-url", "nope", "--fail-url", "https://a.example/", "--json"], environment: env)
        #expect(badURL.status == 2)
        #expect((jsonObject(badURL.stderr)["error"] as? [String: Any])?["code"] as? String == "INVALID_URL")
        let badEnv = try await CLI.run(["orders", "status", "A", "--env", "staging"], environment: env)
        #expect(badEnv.status == 2 && badEnv.stderr.contains("CONFIG_INVALID_ENVIRONMENT"))
        let unreachable = try await CLI.run(["orders", "status", "A", "--no-retry", "--timeout", "2"], environment: env)
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("TRANSPORT_FAILURE") || unreachable.stderr.contains("TIMEOUT"))
        let usage = try await CLI.run(["orders", "create"], environment: env)
        #expect(usage.status != 0)
        // A server that is down: the bounded retries are spent at once (a refusal is not
        // retried until a timeout), and the retry lines show only with --verbose.
        let closed = ["KASPI_TRADE_POINT_ID": "TP", "KASPI_API_KEY": "sk_SECRET_CLI", "KASPI_BASE_URL": "http://127.0.0.1:\(FreePort.find())"]
        let down = try await CLI.run(["orders", "status", "A"], environment: closed)
        #expect(down.status == 1 && down.stderr.contains("TRANSPORT_FAILURE"), "\(down.stderr)")
        #expect(!down.stderr.contains("Retrying"))
        #expect(down.stderr.split(separator: "\n").count == 1, "\(down.stderr)")
        let verbose = try await CLI.run(["orders", "status", "A", "--verbose"], environment: closed)
        #expect(verbose.status == 1 && verbose.stderr.contains("Retrying Kaspi request"))
        for output in [missing, small, badID, badURL, badEnv, unreachable, usage, down, verbose] {
            #expect(!output.stdout.contains("sk_SECRET_CLI") && !output.stderr.contains("sk_SECRET_CLI"))
        }
    }
}

func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
