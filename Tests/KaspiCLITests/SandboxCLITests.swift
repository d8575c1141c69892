import Foundation
import KaspiPayTesting
import Testing

@Suite("kaspi sandbox and kaspi trigger")
struct SandboxCLITests {
    @Test func aNewcomerPaysAnOrderAgainstTheSandboxProcess() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("cli-sandbox-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: data + suffix) } }
        let arguments = [
            "sandbox", "--port", "0", "--data", data, "--trade-point-id", "TP-CLI", "--api-key", "cli_key_1", "--return-url-prefix",
            "https://shop.example/",
        ]
        let sandbox = try BackgroundProcess(CLI.binary, arguments)
        let base = try #require(await sandbox.waitForOutput(matching: #"listening on (http://127\.0\.0\.1:\d+)"#), "\(sandbox.stderr)")
        #expect(sandbox.stdout.contains("Trade point TP-CLI"))
        let env = ["KASPI_BASE_URL": base, "KASPI_TRADE_POINT_ID": "TP-CLI", "KASPI_API_KEY": "cli_key_1"]
        let created = try await CLI.run(
            [
                "orders", "create", "--amount", "2500", "--order-id", "CLI-SB-1", "--return-url", "https://shop.example/ok", "--fail-url",
                "https://shop.example/fail", "--json",
            ],
            environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        #expect((created.json["paymentUrl"] as? String)?.hasPrefix(base + "/pay/") == true)
        let triggered = try await CLI.run(["trigger", "approved", "CLI-SB-1"], environment: env)
        #expect(triggered.status == 0, "\(triggered.stderr)")
        #expect(triggered.stdout == "CLI-SB-1: APPROVED\n")
        let missing = try await CLI.run(["trigger", "approved", "NOPE"], environment: env)
        #expect(missing.status == 1 && missing.stderr.contains("ORDER_NOT_FOUND"))
        let badOutcome = try await CLI.run(["trigger", "maybe", "CLI-SB-1"], environment: env)
        #expect(badOutcome.status == 2)
        #expect(await sandbox.stop() == 0)

        // Restarted on the same data file, the sandbox remembers.
        let again = try BackgroundProcess(CLI.binary, arguments)
        let base2 = try #require(await again.waitForOutput(matching: #"listening on (http://127\.0\.0\.1:\d+)"#), "\(again.stderr)")
        let status = try await CLI.run(["orders", "status", "CLI-SB-1"], environment: env.merging(["KASPI_BASE_URL": base2]) { $1 })
        #expect(status.stdout.hasPrefix("CLI-SB-1: APPROVED, 2500 tenge"), "\(status.stderr)")
        await again.stop()
    }

    @Test func withNoConfigurationATestTradePointIsPrinted() async throws {
        let sandbox = try BackgroundProcess(CLI.binary, ["sandbox", "--port", "0"])
        let key = try #require(
            await sandbox.waitForOutput(matching: #"Trade point TEST-TP-1 \(.*\), API key (sandbox_[0-9a-f]{32})"#),
            "\(sandbox.stdout)\(sandbox.stderr)")
        let base = try #require(await sandbox.waitForOutput(matching: #"listening on (http://127\.0\.0\.1:\d+)"#))
        #expect(sandbox.stdout.contains("export KASPI_BASE_URL=\(base) KASPI_TRADE_POINT_ID=TEST-TP-1 KASPI_API_KEY=\(key)"))
        let env = ["KASPI_BASE_URL": base, "KASPI_TRADE_POINT_ID": "TEST-TP-1", "KASPI_API_KEY": key]
        let created = try await CLI.run(["qr", "create", "--amount", "700", "--order-id", "DEF-1"], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(await sandbox.stop(signal: SIGTERM) == 0)
    }

    @Test func aBrokenConfigurationIsRefusedClearly() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json")
        try Data(#"{"tradePoints":[{"id":"A","apiKey":"k"},{"id":"A","apiKey":"j"}]}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let duplicate = try await CLI.run(["sandbox", "--config", file.path, "--port", "0"])
        #expect(duplicate.status == 2)
        #expect(duplicate.stderr.contains("SANDBOX_CONFIG_INVALID") && duplicate.stderr.contains("appears twice"))
        try Data("not json".utf8).write(to: file)
        let malformed = try await CLI.run(["sandbox", "--config", file.path, "--port", "0"])
        #expect(malformed.status == 2 && malformed.stderr.contains("SANDBOX_CONFIG_MALFORMED"))
        let unreadable = try await CLI.run(["sandbox", "--config", "/nonexistent/kaspi.json"])
        #expect(unreadable.status == 2 && unreadable.stderr.contains("SANDBOX_CONFIG_UNREADABLE"))
        let badRetries = try await CLI.run(["sandbox", "--webhook-retries", "1,x"])
        #expect(badRetries.status == 2 && badRetries.stderr.contains("--webhook-retries"))
    }
}
