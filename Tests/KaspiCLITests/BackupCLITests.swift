import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import KaspiGatewayStore
import KaspiPayTesting
import KaspiSQLite
import KaspiSandbox
import NIOCore
import Synchronization
import Testing

/// `kaspi gateway backup` and `restore`: a copy made under load, restored into a fresh gateway,
/// holds every order committed before it started, with its events.
@Suite("kaspi gateway backup and restore")
struct BackupCLITests {
    /// A merchant API GET's raw body.
    static func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.headers.add(name: "Authorization", value: "Bearer \(GatewayCLITests.apiKey)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    /// What a restored gateway must show of an order: itself, its timeline and its events.
    static func snapshot(_ port: Int, _ id: String) async throws -> [String] {
        [
            try await get(port, "/v1/orders/\(id)").body, try await get(port, "/v1/orders/\(id)/events").body,
            try await get(port, "/v1/events?orderId=\(id)").body,
        ]
    }

    @Test func aBackupUnderLoadRestoresEveryCommittedOrder() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/gateway.sqlite"
        let backup = root + "/backups/gateway-1.sqlite"
        try FileManager.default.createDirectory(atPath: root + "/backups", withIntermediateDirectories: true)
        let port = FreePort.find()
        let sandbox = try await Sandbox(configuration: GatewayCLITests.sandboxConfiguration(gatewayPorts: [port]))
        try await sandbox.application().test(.live) { client in
            let sandboxURL = "http://127.0.0.1:\(client.port!)"
            let gateway = try await GatewayCLITests.startGateway(database: database, port: port, sandboxURL: sandboxURL, instance: "backup")
            // Orders committed before the backup: some paid (with a refund), some pending.
            var before: [String] = []
            for index in 0..<24 {
                let created = try await GatewayCLITests.api(port, "POST", "/v1/checkouts", #"{"amount":\#(1000 + index)}"#)
                let id = try #require(created["id"] as? String, "\(created)")
                if index % 2 == 0, let url = created["paymentUrl"] as? String { try await GatewayCLITests.pay(url) }
                before.append(id)
            }
            for id in before.enumerated().filter({ $0.offset % 2 == 0 }).map(\.element) {
                var state = ""
                for _ in 0..<200 where state != "paid" {
                    state = (try await GatewayCLITests.api(port, "GET", "/v1/orders/\(id)"))["state"] as? String ?? ""
                    if state != "paid" { try await Task.sleep(for: .milliseconds(25)) }
                }
                #expect(state == "paid")
            }
            _ = try await GatewayCLITests.api(port, "POST", "/v1/orders/\(before[0])/refunds", #"{"amount":300}"#)
            var expected: [String: [String]] = [:]
            for id in before { expected[id] = try await Self.snapshot(port, id) }

            // Writes go on while the copy is made.
            let stop = Atomic<Bool>(false)
            let load = Task {
                var made = 0
                while !stop.load(ordering: .relaxed) {
                    _ = try? await GatewayCLITests.api(port, "POST", "/v1/checkouts", #"{"amount":777}"#)
                    made += 1
                }
                return made
            }
            try await Task.sleep(for: .milliseconds(200))
            let backedUp = try await CLI.run(["gateway", "backup", "--database", database, "--to", backup, "--json"])
            stop.store(true, ordering: .relaxed)
            let made = await load.value
            #expect(backedUp.status == 0, "\(backedUp.stderr)")
            #expect(made > 0)
            let copied = try #require(backedUp.json["orders"] as? Int)
            #expect(copied >= before.count && backedUp.json["schemaVersion"] as? Int == 10)
            // The copy is its owner's only, one file, and nothing else was left beside it.
            let attributes = try FileManager.default.attributesOfItem(atPath: backup)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/backups") == ["gateway-1.sqlite"])
            // Not over an existing file without --force.
            let again = try await CLI.run(["gateway", "backup", "--database", database, "--to", backup])
            #expect(again.status == 2 && again.stderr.contains("BACKUP_TARGET_EXISTS"))
            _ = await gateway.stop()

            // Restored into a fresh gateway: every order committed before, as it was.
            let fresh = root + "/restored/gateway.sqlite"
            try FileManager.default.createDirectory(atPath: root + "/restored", withIntermediateDirectories: true)
            let restored = try await CLI.run(["gateway", "restore", "--database", fresh, "--from", backup])
            #expect(restored.status == 0 && restored.stdout.contains("Restored \(copied) orders"), "\(restored.stderr)")
            #expect((try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int) == 0o600)
            let second = FreePort.find()
            let revived = try await GatewayCLITests.startGateway(database: fresh, port: second, sandboxURL: sandboxURL, instance: "restored")
            for id in before {
                #expect(try await Self.snapshot(second, id) == expected[id], "order \(id)")
            }
            _ = await revived.stop()
            let overwrite = try await CLI.run(["gateway", "restore", "--database", fresh, "--from", backup])
            #expect(overwrite.status == 2 && overwrite.stderr.contains("--force"))
        }
    }

    @Test func aDatabaseFromANewerKaspiKitIsRefusedClearly() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("newer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/gateway.sqlite"
        #expect(try await CLI.run(["gateway", "migrate", "--database", database]).status == 0)
        // As a later release would leave it: one migration beyond what this one knows.
        let connection = try DirectConnection(path: database)
        try connection.run("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        connection.close()
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
        env["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
        env["KASPI_BASE_URL"] = "http://127.0.0.1:9"
        env["KASPI_TRADE_POINT_ID"] = "TP-1"
        env["KASPI_API_KEY"] = "key"
        let serve = try await CLI.run(["gateway", "--database", database, "--port", "0", "--admin-port", "0"], environment: env)
        #expect(serve.status != 0 && serve.stderr.contains("SCHEMA_TOO_NEW") && serve.stderr.contains("schema version 99"), "\(serve.stderr)")
        let backup = root + "/newer-backup.sqlite"
        #expect(try await CLI.run(["gateway", "backup", "--database", database, "--to", backup]).status == 0)
        let restored = try await CLI.run(["gateway", "restore", "--database", root + "/other.sqlite", "--from", backup])
        #expect(restored.status == 2 && restored.stderr.contains("SCHEMA_TOO_NEW") && restored.stderr.contains("schema version 99"))
        #expect(!FileManager.default.fileExists(atPath: root + "/other.sqlite"))
        let missing = try await CLI.run(["gateway", "backup", "--database", root + "/none.sqlite", "--to", root + "/x.sqlite"])
        #expect(missing.status == 2 && missing.stderr.contains("BACKUP_SOURCE_MISSING"))
        let notOurs = root + "/not-ours.sqlite"
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: notOurs))
        let invalid = try await CLI.run(["gateway", "restore", "--database", root + "/y.sqlite", "--from", notOurs])
        #expect(invalid.status == 2 && invalid.stderr.contains("BACKUP_INVALID"))
    }
}
