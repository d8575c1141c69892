import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import KaspiPay
import KaspiPayTesting
import KaspiSandbox
import NIOCore
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

    /// Runs Debian's tinyproxy on loopback for `body`: it accepts from 127.0.0.1 and leaves
    /// from 127.0.0.3, the one address the sandbox's r3 allows, as a server's fixed egress does.
    static func withTinyproxy(_ body: (_ url: String, _ log: String) async throws -> Void) async throws {
        let tinyproxy = try ExternalTool.tinyproxy.require()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tinyproxy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = FreePort.find()
        let log = directory + "/tinyproxy.log"
        let configuration = """
            Port \(port)
            Listen 127.0.0.1
            Bind 127.0.0.3
            Timeout 60
            LogFile "\(log)"
            LogLevel Info
            MaxClients 50
            Allow 127.0.0.1
            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: directory + "/tinyproxy.conf"))
        let process = try BackgroundProcess(tinyproxy, ["-d", "-c", directory + "/tinyproxy.conf"])
        do {
            var ready = false
            for _ in 0..<100 where !ready {
                ready = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("Accepting connections")
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            try #require(ready, "tinyproxy did not start: \(process.stderr)")
            try await body("http://127.0.0.1:\(port)", log)
        } catch {
            _ = await process.stop(signal: SIGTERM)
            throw error
        }
        _ = await process.stop(signal: SIGTERM)
    }

    @Test(
        "r3 from a fixed address: Kaspi calls through tinyproxy (CONNECT), mutual TLS in the tunnel, from --proxy, KASPI_QR_PROXY or HTTPS_PROXY",
        .requires(.tinyproxy))
    func r3ThroughAForwardProxy() async throws {
        let (good, _, root) = try await Self.certificates(clientDays: 365)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/gateway.sqlite"
        var configuration = SandboxConfiguration()
        configuration.port = 0
        configuration.qrAPI.tlsPorts = [0]
        configuration.qrAPI.certificatesDirectory = good
        configuration.qrAPI.statusPollingInterval = 1
        configuration.qrAPI.r3AllowedIPs = ["127.0.0.3"]
        let sandbox = try await Sandbox(configuration: configuration)
        try await sandbox.application().test(.live) { _ in
            var ports: [Int] = []
            for _ in 0..<500 where ports.isEmpty {
                ports = sandbox.qrAPITLSPorts()
                try await Task.sleep(for: .milliseconds(10))
            }
            let tls = "https://127.0.0.1:\(try #require(ports.first))"
            let env = [
                "KASPI_QR_SCHEME": "r3", "KASPI_BASE_URL": tls, "KASPI_QR_CERT": good + "/client.pem", "KASPI_QR_KEY": good + "/client-key.pem",
                "KASPI_QR_CA_BUNDLE": good + "/ca.pem", "KASPI_QR_ORGANIZATION_BIN": "123456789012",
            ]
            // Straight from this machine's address: r3 refuses it.
            let direct = try await CLI.run(["gateway", "check", "--database", database], environment: env)
            #expect(direct.status == 1 && direct.stderr.contains("KASPI_QR_NOT_AUTHENTICATED"), "\(direct.stderr)")
            try await Self.withTinyproxy { proxy, log in
                let flag = try await CLI.run(["gateway", "check", "--database", database, "--proxy", proxy], environment: env)
                #expect(flag.status == 0 && flag.stdout.contains("accepts the client certificate"), "\(flag.stderr)")
                var variable = env
                variable["KASPI_QR_PROXY"] = proxy
                #expect(try await CLI.run(["gateway", "check", "--database", database], environment: variable).status == 0)
                var standard = env
                standard["HTTPS_PROXY"] = proxy
                #expect(try await CLI.run(["gateway", "check", "--database", database], environment: standard).status == 0)
                standard["NO_PROXY"] = "localhost,127.0.0.1"
                #expect(try await CLI.run(["gateway", "check", "--database", database], environment: standard).status == 1)
                var broken = env
                broken["KASPI_QR_PROXY"] = "socks5://127.0.0.1:1080"
                let refused = try await CLI.run(["gateway", "check", "--database", database], environment: broken)
                #expect(refused.status == 2 && refused.stderr.contains("CONFIG_INVALID_PROXY"))
                // The secret part of a proxy address never shows.
                broken["KASPI_QR_PROXY"] = "http://user:hunter2@/"
                let noHost = try await CLI.run(["gateway", "check", "--database", database], environment: broken)
                #expect(noHost.status == 2 && !noHost.stderr.contains("hunter2"))

                // A device registered and a checkout paid, every call through the tunnel.
                let registered = try await CLI.run(
                    ["gateway", "device", "register", "--trade-point", "19", "--database", database, "--proxy", proxy], environment: env)
                #expect(registered.status == 0, "\(registered.stderr)")
                var serveEnv = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
                serveEnv.merge(variable) { $1 }
                serveEnv["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
                let port = FreePort.find()
                let gateway = try BackgroundProcess(
                    CLI.binary,
                    ["gateway", "--profile", "qr", "--database", database, "--port", "\(port)", "--admin-port", "0", "--worker-interval", "0.05"],
                    environment: serveEnv)
                guard await gateway.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
                    Issue.record("the gateway did not start: \(gateway.stdout) \(gateway.stderr)")
                    _ = await gateway.stop()
                    return
                }
                #expect(gateway.stdout.contains("through the proxy 127.0.0.1:"))
                let created = try await GatewayCLITests.api(port, "POST", "/v1/checkouts", #"{"amount":4200}"#)
                let orderID = try #require(created["id"] as? String, "\(created)")
                let purchase = try #require(await sandbox.qrPurchases().last)
                try await sandbox.act(.scan, paymentID: purchase.id)
                try await sandbox.act(.confirm, paymentID: purchase.id)
                var state = ""
                for _ in 0..<200 where state != "paid" {
                    state = (try await GatewayCLITests.api(port, "GET", "/v1/orders/\(orderID)"))["state"] as? String ?? ""
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(state == "paid")
                _ = await gateway.stop()
                let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                #expect(logged.contains("CONNECT 127.0.0.1:\(ports[0])"), "\(logged.suffix(2000))")
            }
        }
    }

    @Test("--log-format json: one JSON object a line with level, time, message, order id and request id")
    func jsonLogs() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("golive-logs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bad = try await CLI.run(["gateway", "--database", root + "/x.sqlite", "--log-format", "xml"])
        #expect(bad.status == 2 && bad.stderr.contains("--log-format"))
        var configuration = SandboxConfiguration()
        configuration.port = 0
        let sandbox = try await Sandbox(configuration: configuration)
        try await sandbox.application().test(.live) { client in
            let point = try #require(sandbox.configuration.tradePoints.first)
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
            env["KASPI_BASE_URL"] = "http://127.0.0.1:\(client.port!)"
            env["KASPI_TRADE_POINT_ID"] = point.id
            env["KASPI_API_KEY"] = point.apiKey
            env["KASPI_GATEWAY_API_KEYS"] = GatewayCLITests.apiKey
            env["KASPI_LOG_FORMAT"] = "json"  // the variable; the flag is tested above
            let port = FreePort.find()
            let gateway = try BackgroundProcess(
                CLI.binary, ["gateway", "--database", root + "/gateway.sqlite", "--port", "\(port)", "--admin-port", "0"], environment: env)
            guard await gateway.waitForOutput(matching: "Kaspi gateway listening on (http://[^ ]+)") != nil else {
                Issue.record("the gateway did not start: \(gateway.stdout) \(gateway.stderr)")
                _ = await gateway.stop()
                return
            }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/checkouts")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(GatewayCLITests.apiKey)")
            request.headers.add(name: "X-Request-Id", value: "shop-order-77")
            request.body = .bytes(ByteBuffer(string: #"{"amount":1500}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .created && response.headers.first(name: "X-Request-Id") == "shop-order-77")
            let body = try await response.body.collect(upTo: 1 << 20)
            let order = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            // A forged id is replaced, never logged.
            var forged = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            forged.headers.add(name: "X-Request-Id", value: #"x","level":"critical"#)
            let replaced = try await HTTPClient.shared.execute(forged, timeout: .seconds(30))
            #expect(replaced.headers.first(name: "X-Request-Id")?.hasPrefix("req_") == true)
            _ = await gateway.stop()
            let lines = gateway.stderr.split(separator: "\n").filter { !$0.isEmpty }
            #expect(lines.count > 3)
            var created: [String: Any]? = nil
            for line in lines {
                let object = try #require(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                #expect(object["level"] is String && object["message"] is String && (object["time"] as? String)?.hasSuffix("Z") == true)
                if object["message"] as? String == "Checkout created" { created = object }
            }
            let line = try #require(created, "\(gateway.stderr)")
            #expect(line["order_id"] as? String == order["id"] as? String && line["request_id"] as? String == "shop-order-77")
            #expect(!gateway.stderr.contains("critical"))
        }
    }
}
