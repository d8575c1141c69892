import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// `kaspi gateway` as a merchant runs it: real processes, against an in-process sandbox.
@Suite("kaspi gateway processes")
struct GatewayCLITests {
    static let apiKey = "gw_cli_key_0123456789abcdefghijklmnop"

    /// A fresh database for one test: an SQLite file, or a new PostgreSQL database.
    static func database(_ backend: Backend) async throws -> (url: String, drop: @Sendable () async -> Void) {
        switch backend {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-cli-\(UUID().uuidString).sqlite").path
            return (path, { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } })
        case .postgres:
            let base = try #require(Backend.postgresURL)
            let name = "kaspi_cli_" + UUID().uuidString.prefix(8).lowercased()
            try await PostgresGatewayStore.withStore(url: base) { admin in
                _ = try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            }
            var components = URLComponents(string: base)!
            components.path = "/" + name
            return (
                components.string!,
                {
                    try? await PostgresGatewayStore.withStore(url: base) { admin in
                        _ = try await admin.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
                    }
                }
            )
        }
    }

    /// Starts `kaspi gateway` and waits until it listens.
    static func startGateway(
        database: String, port: Int, sandboxURL: String, instance: String, extra: [String] = []
    ) async throws -> BackgroundProcess {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
        environment["KASPI_GATEWAY_API_KEYS"] = apiKey
        environment["KASPI_BASE_URL"] = sandboxURL
        environment["KASPI_TRADE_POINT_ID"] = "TP-CLI-GW"
        environment["KASPI_API_KEY"] = "sandbox_cli_gw_key"
        let process = try BackgroundProcess(
            CLI.binary,
            [
                "gateway", "--database", database, "--port", "\(port)", "--admin-port", "0", "--instance-id", instance, "--first-poll-after", "0.3",
                "--worker-interval", "0.05",
            ] + extra,
            environment: environment)
        guard await process.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
            Issue.record("the gateway did not start: \(process.stdout) \(process.stderr)")
            throw CancellationError()
        }
        return process
    }

    static func sandboxConfiguration(gatewayPorts: [Int], faults: SandboxFaults? = nil) -> SandboxConfiguration {
        var configuration = SandboxConfiguration()
        configuration.port = 0
        configuration.rateLimitPerMinute = 0
        configuration.webhookRetrySeconds = [0.2, 0.5, 1, 2]
        configuration.tradePoints = [
            SandboxTradePoint(
                id: "TP-CLI-GW", apiKey: "sandbox_cli_gw_key", webhookURL: "http://127.0.0.1:\(gatewayPorts[0])/webhooks/kaspi",
                returnURLPrefixes: gatewayPorts.map { "http://127.0.0.1:\($0)/pay/" }, faults: faults)
        ]
        return configuration
    }

    static let http = noRedirectClient

    static func api(_ port: Int, _ method: String, _ path: String, _ body: String? = nil, key: String = apiKey) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method == "POST" ? .POST : .GET
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    /// Presses Pay on the sandbox's page, as a payer would.
    static func pay(_ paymentURL: String) async throws {
        var request = HTTPClientRequest(url: paymentURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "action=pay"))
        _ = try await http.execute(request, timeout: .seconds(30))
    }

    @Test(arguments: Backend.available)
    func migrateThenServeThenSurviveAKill(_ backend: Backend) async throws {
        let (database, drop) = try await Self.database(backend)
        let migrated = try await CLI.run(["gateway", "migrate", "--database", database])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("Applied migrations 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"))
        let again = try await CLI.run(["gateway", "migrate", "--database", database])
        #expect(again.stdout.contains("up to date (schema version 10)"))
        #expect(!again.stdout.contains("kaspi:kaspi@"))

        let port = FreePort.find()
        let sandbox = try await Sandbox(configuration: Self.sandboxConfiguration(gatewayPorts: [port]))
        try await sandbox.application().test(.live) { client in
            let sandboxURL = "http://127.0.0.1:\(client.port!)"
            var gateway = try await Self.startGateway(database: database, port: port, sandboxURL: sandboxURL, instance: "gw-1")
            let created = try await Self.api(port, "POST", "/v1/checkouts", #"{"amount":4200,"merchantReference":"kill-1"}"#)
            let id = try #require(created["id"] as? String, "\(created)")
            let paymentURL = try #require(created["paymentUrl"] as? String, "\(created)")
            // The gateway dies hard; the payer pays meanwhile; the sandbox's webhooks fail.
            await gateway.stop(signal: SIGKILL)
            try await Self.pay(paymentURL)
            try await Task.sleep(for: .milliseconds(300))
            // Restarted on the same database, it loses nothing: a webhook retry or a poll settles it.
            gateway = try await Self.startGateway(database: database, port: port, sandboxURL: sandboxURL, instance: "gw-1b")
            var state = ""
            for _ in 0..<600 {
                state = try await Self.api(port, "GET", "/v1/orders/\(id)")["state"] as? String ?? ""
                if state == "paid" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(state == "paid")
            #expect(await gateway.stop() == 0)
        }
        await drop()
    }

    @Test func twoInstancesShareOnePostgreSQL() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let (database, drop) = try await Self.database(.postgres)
        var faults = SandboxFaults()
        faults.webhookDropRate = 1  // reconciliation must do all the work
        let ports = [FreePort.find(), FreePort.find()]
        let sandbox = try await Sandbox(configuration: Self.sandboxConfiguration(gatewayPorts: ports, faults: faults))
        try await sandbox.application().test(.live) { client in
            let sandboxURL = "http://127.0.0.1:\(client.port!)"
            let migrated = try await CLI.run(["gateway", "migrate", "--database", database])
            #expect(migrated.status == 0, "\(migrated.stderr)")
            let a = try await Self.startGateway(
                database: database, port: ports[0], sandboxURL: sandboxURL, instance: "gw-a", extra: ["--work-batch-size", "2"])
            let b = try await Self.startGateway(
                database: database, port: ports[1], sandboxURL: sandboxURL, instance: "gw-b", extra: ["--work-batch-size", "2"])
            var ids: [String] = []
            for i in 0..<16 {
                let created = try await Self.api(ports[i % 2], "POST", "/v1/checkouts", #"{"amount":\#(1000 + i)}"#)
                ids.append(try #require(created["id"] as? String, "\(created)"))
                try await Self.pay(try #require(created["paymentUrl"] as? String, "\(created)"))
            }
            var paid = 0
            for _ in 0..<800 {
                paid = 0
                for id in ids where try await Self.api(ports[0], "GET", "/v1/orders/\(id)")["state"] as? String == "paid" { paid += 1 }
                if paid == ids.count { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(paid == ids.count)
            // Each order went to paid exactly once, and both instances did some of the polling.
            var instances: Set<String> = []
            for id in ids {
                let events = try await Self.api(ports[1], "GET", "/v1/orders/\(id)/events")["data"] as? [[String: Any]] ?? []
                let toPaid = events.filter { $0["to"] as? String == "paid" }
                #expect(toPaid.count == 1)
                for event in toPaid {
                    let detail = event["detail"] as? String ?? ""
                    if detail.contains("gw-a") { instances.insert("gw-a") }
                    if detail.contains("gw-b") { instances.insert("gw-b") }
                }
            }
            #expect(instances == ["gw-a", "gw-b"])
            await a.stop()
            await b.stop()
        }
        await drop()
    }

    @Test func aBadConfigurationIsRefusedAtStart() async throws {
        var environment: [String: String] = [:]
        environment["KASPI_TRADE_POINT_ID"] = "TP"
        environment["KASPI_API_KEY"] = "k"
        let noKeys = try await CLI.run(["gateway", "--database", ":memory:", "--port", "0"], environment: environment)
        #expect(noKeys.status == 2 && noKeys.stderr.contains("GATEWAY_CONFIG_INVALID") && noKeys.stderr.contains("KASPI_GATEWAY_API_KEYS"))
        // A key must be long: a short one could be guessed.
        let short = try await CLI.run(
            ["gateway", "--database", ":memory:"], environment: environment.merging(["KASPI_GATEWAY_API_KEYS": "k1"]) { $1 })
        #expect(short.status == 2 && short.stderr.contains("KASPI_GATEWAY_API_KEYS each key must be at least 32 characters"), "\(short.stderr)")
        environment["KASPI_GATEWAY_API_KEYS"] = Self.apiKey
        let badURL = try await CLI.run(["gateway", "--database", ":memory:", "--public-url", "nope"], environment: environment)
        #expect(badURL.status == 2 && badURL.stderr.contains("publicUrl"))
        // Beyond loopback, the public URL must be configured: it is never taken from requests.
        let open = try await CLI.run(["gateway", "--database", ":memory:", "--host", "0.0.0.0", "--port", "0"], environment: environment)
        #expect(open.status == 2 && open.stderr.contains("publicUrl is required when the gateway listens beyond loopback"))
        let badConfirm = try await CLI.run(
            ["gateway", "--database", ":memory:"], environment: environment.merging(["KASPI_GATEWAY_CONFIRM_PAID_WEBHOOKS": "maybe"]) { $1 })
        #expect(badConfirm.status == 2 && badConfirm.stderr.contains("KASPI_GATEWAY_CONFIRM_PAID_WEBHOOKS"))
        let badPort = try await CLI.run(
            ["gateway", "--database", ":memory:"], environment: environment.merging(["KASPI_GATEWAY_PORT": "eighty"]) { $1 })
        #expect(badPort.status == 2 && badPort.stderr.contains("KASPI_GATEWAY_PORT"))
        // A production key is never sent to a plain-HTTP listener, nor anywhere but Kaspi unless named.
        let clear = try await CLI.run(
            ["gateway", "--database", ":memory:"],
            environment: environment.merging(["KASPI_API_KEY": "prod_live_key", "KASPI_BASE_URL": "http://203.0.113.9:8181"]) { $1 })
        #expect(clear.status == 2 && clear.stderr.contains("CONFIG_INSECURE_BASE_URL") && !clear.stderr.contains("prod_live_key"), "\(clear.stderr)")
        let elsewhere = try await CLI.run(
            ["gateway", "--database", ":memory:"],
            environment: environment.merging(["KASPI_API_KEY": "prod_live_key", "KASPI_BASE_URL": "http://127.0.0.1:9"]) { $1 })
        #expect(elsewhere.status == 2 && elsewhere.stderr.contains("CONFIG_UNTRUSTED_HOST"), "\(elsewhere.stderr)")
        let noKaspi = try await CLI.run(["gateway", "--database", ":memory:"], environment: ["KASPI_GATEWAY_API_KEYS": Self.apiKey])
        #expect(noKaspi.status == 2 && noKaspi.stderr.contains("KASPI_TRADE_POINT_ID"))
    }
}
