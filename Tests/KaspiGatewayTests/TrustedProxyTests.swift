import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiPayTesting
import KaspiSandbox
import Testing

/// Who the client is, behind a proxy and without one.
@Suite struct TrustedProxiesTests {
    @Test func networksAndAddressesAreParsedAndMatched() throws {
        let trusted = try TrustedProxies(["10.0.0.0/8", "127.0.0.3", "fd00::/8", "192.168.1.0/24"])
        #expect(trusted.contains("10.200.3.4") && trusted.contains("127.0.0.3") && !trusted.contains("127.0.0.4"))
        #expect(trusted.contains("fd12::1") && !trusted.contains("fe80::1") && trusted.contains("192.168.1.255"))
        #expect(trusted.contains("::ffff:10.1.2.3"), "an IPv4-mapped address is its IPv4 one")
        #expect(!trusted.contains("not an address") && !trusted.contains(""))
        for bad in ["10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/", "10.0.0.0/-1", "1.2.3"] {
            #expect(throws: GatewayConfigurationError.self, "\(bad)") { try TrustedProxies([bad]) }
        }
    }

    @Test func theClientIsTheRightmostHopThatIsNotATrustedProxy() throws {
        let trusted = try TrustedProxies(["10.0.0.0/8"])
        // From a trusted proxy: the hop it appended (the client's real address), whatever the
        // client wrote to its left.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["6.6.6.6, 203.0.113.7"], forwarded: []) == "203.0.113.7")
        // Through two trusted proxies.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["203.0.113.7", "10.0.0.9"], forwarded: []) == "203.0.113.7")
        // From anyone else: the peer, whatever the headers say.
        #expect(trusted.client(peer: "198.51.100.4", forwardedFor: ["203.0.113.7"], forwarded: ["for=203.0.113.8"]) == "198.51.100.4")
        // Forwarded (RFC 7239) when there is no X-Forwarded-For, with ports and brackets.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: [], forwarded: [#"for="[2001:db8::1]:4711";proto=https"#]) == "2001:db8::1")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: [], forwarded: ["for=192.0.2.60:80, for=10.0.0.5"]) == "192.0.2.60")
        // An unreadable hop stops the walk at the last trusted one; no header at all leaves the proxy.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["<script>"], forwarded: []) == "10.0.0.2")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: [], forwarded: []) == "10.0.0.2")
        // One spelling per address, so that a limit cannot be dodged by writing it differently.
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["::ffff:203.0.113.7"], forwarded: []) == "203.0.113.7")
        #expect(trusted.client(peer: "10.0.0.2", forwardedFor: ["2001:DB8:0:0::1"], forwarded: []) == "2001:db8::1")
        // No proxy trusted: the peer.
        #expect(TrustedProxies.none.client(peer: "10.0.0.2", forwardedFor: ["203.0.113.7"], forwarded: []) == "10.0.0.2")
    }
}

/// The gateway behind a real nginx terminating TLS (Debian's `nginx-light`), which connects to
/// the gateway from 127.0.0.3, the one trusted proxy. Clients are curl processes on chosen
/// loopback addresses, so each has its own address as a payer on the internet would.
@Suite(.serialized, .requires(.nginx), .requires(.curl))
struct BehindNginxTests {
    struct Proxy {
        let port: Int
        let ca: String
        let curl: URL

        /// One request through nginx from `source`, with `headers`; returns the status and body.
        func request(
            _ path: String, from source: String, method: String = "GET", headers: [String] = [], form: String? = nil, cookies: String? = nil
        ) async throws -> (status: Int, body: String) {
            var arguments = ["-sS", "--interface", source, "--cacert", ca, "-X", method, "-w", "\n%{http_code}"]
            for header in headers { arguments += ["-H", header] }
            if let form { arguments += ["--data-raw", form] }
            if let cookies { arguments += ["-b", cookies, "-c", cookies] }
            arguments.append("https://127.0.0.1:\(port)\(path)")
            let output = try await ProcessRunner.run(curl, arguments)
            let lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
    }

    /// Runs nginx in front of `gatewayPort` for the duration of `body`.
    static func withNginx(gatewayPort: Int, _ body: (Proxy) async throws -> Void) async throws {
        let nginx = try ExternalTool.nginx.require()
        let curl = try ExternalTool.curl.require()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try SandboxCertificates.generate(in: directory + "/certs", organizations: [], hosts: ["127.0.0.1"])
        let port = FreePort.find()
        let configuration = """
            worker_processes 1;
            error_log \(directory)/error.log warn;
            pid \(directory)/nginx.pid;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(certificates.serverCertificate);
                    ssl_certificate_key \(certificates.serverKey);
                    location / {
                        proxy_pass http://127.0.0.1:\(gatewayPort);
                        proxy_bind 127.0.0.3;
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                        proxy_set_header X-Forwarded-Proto https;
                    }
                }
            }
            """
        let file = directory + "/nginx.conf"
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: file))
        let process = try BackgroundProcess(nginx, ["-p", directory, "-c", file, "-g", "daemon off;"])
        let proxy = Proxy(port: port, ca: certificates.caCertificate, curl: curl)
        do {
            var ready = false
            for _ in 0..<100 where !ready {
                ready = (try? await proxy.request("/health", from: "127.0.0.1"))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
            try #require(ready, "nginx did not answer: \(log)")
            try await body(proxy)
        } catch {
            _ = await process.stop(signal: SIGQUIT)
            throw error
        }
        _ = await process.stop(signal: SIGQUIT)
    }

    @Test func clientsAreTheirOwnAddressesBehindTheProxyAndSpoofingIsIgnored() async throws {
        try await withStack(.sqlite, configure: { $0.trustedProxies = ["127.0.0.3"] }) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":900}"#)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["clientSecret"] as? String)
            let port = try #require(URL(string: s.gatewayURL)?.port)
            try await Self.withNginx(gatewayPort: port) { proxy in
                let path = "/client/v1/orders/\(id)"
                // A guesser at 127.0.0.5 spends its own 20 wrong secrets, rotating the address it
                // claims: nginx appends the real one, and that is the one counted.
                for n in 0..<20 {
                    let guess = try await proxy.request(
                        path, from: "127.0.0.5", headers: ["Client-Secret: guess-\(n)", "X-Forwarded-For: 10.9.9.\(n)"])
                    #expect(guess.status == 404, "\(guess)")
                }
                let limited = try await proxy.request(path, from: "127.0.0.5", headers: ["Client-Secret: guess-x", "X-Forwarded-For: 10.9.9.99"])
                #expect(limited.status == 429 && limited.body.contains("CLIENT_RATE_LIMITED"), "\(limited)")
                // Another client behind the same proxy is not held back by it…
                let other = try await proxy.request(path, from: "127.0.0.6", headers: ["Client-Secret: guess-y"])
                #expect(other.status == 404, "\(other)")
                // …and the payer with the right secret never is, even at the guesser's address.
                #expect(try await proxy.request(path, from: "127.0.0.5", headers: ["Client-Secret: \(secret)"]).status == 200)
            }
            // Straight to the gateway, from an address that is not a trusted proxy: the
            // forwarded headers are the caller's own words and are ignored.
            for n in 0..<20 {
                let guess = try await http(
                    .GET, s.gatewayURL + "/client/v1/orders/\(id)",
                    headers: ["Client-Secret": "guess-\(n)", "X-Forwarded-For": "10.8.8.\(n)", "Forwarded": "for=10.7.7.\(n)"])
                #expect(guess.status == 404)
            }
            let spoofed = try await http(
                .GET, s.gatewayURL + "/client/v1/orders/\(id)", headers: ["Client-Secret": "guess-z", "X-Forwarded-For": "10.8.8.200"])
            #expect(spoofed.status == 429)
        }
    }

    @Test func badSignInsLockOutOnlyTheirOwnAddress() async throws {
        try await withStack(.sqlite, configure: { $0.trustedProxies = ["127.0.0.3"] }) { s in
            // The dashboard behind its own proxy: the admin listener.
            let port = try #require(URL(string: s.adminURL)?.port)
            try await Self.withNginx(gatewayPort: port) { proxy in
                let jars = FileManager.default.temporaryDirectory.appendingPathComponent("jars-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: jars, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: jars) }
                func signIn(from source: String, password: String) async throws -> Int {
                    let jar = "\(jars)/\(source)"
                    let page = try await proxy.request("/admin/login", from: source, cookies: jar)
                    let token = page.body.components(separatedBy: #"name="csrf" value=""#).dropFirst().first?.prefix { $0 != "\"" } ?? ""
                    return try await proxy.request(
                        "/admin/login", from: source, method: "POST", headers: ["Content-Type: application/x-www-form-urlencoded"],
                        form: "csrf=\(token)&password=\(password)", cookies: jar
                    ).status
                }
                for _ in 0..<5 { #expect(try await signIn(from: "127.0.0.7", password: "wrong-password") == 401) }
                #expect(try await signIn(from: "127.0.0.7", password: "admin-pass-123") == 429)
                // The admin at another address signs in: the proxy's address is not the key.
                #expect(try await signIn(from: "127.0.0.8", password: "admin-pass-123") == 303)
            }
        }
    }

    /// The repository's `deploy/` folder.
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy")

    /// Runs nginx with the site in `deploy/nginx/`, changed only where a test must: loopback
    /// ports instead of 80 and 443, a certificate of its own, the gateway's port.
    static func withDeployedSite(gatewayPort: Int, _ body: (_ https: Proxy, _ httpPort: Int) async throws -> Void) async throws {
        let nginx = try ExternalTool.nginx.require()
        let curl = try ExternalTool.curl.require()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-site-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try SandboxCertificates.generate(in: directory + "/certs", organizations: [], hosts: ["127.0.0.1"])
        let (port, httpPort) = (FreePort.find(), FreePort.find())
        var site = try String(contentsOf: deploy.appendingPathComponent("nginx/kaspi-gateway.conf"), encoding: .utf8)
        let replacements = [
            ("server 127.0.0.1:8282;", "server 127.0.0.1:\(gatewayPort);"),
            ("    listen 80;\n    listen [::]:80;", "    listen 127.0.0.1:\(httpPort);"),
            ("    listen 443 ssl http2;\n    listen [::]:443 ssl http2;", "    listen 127.0.0.1:\(port) ssl http2;"),
            ("/etc/letsencrypt/live/pay.example.kz/fullchain.pem", certificates.serverCertificate),
            ("/etc/letsencrypt/live/pay.example.kz/privkey.pem", certificates.serverKey),
            ("/var/www/letsencrypt", directory + "/acme"),
        ]
        for (from, to) in replacements {
            #expect(site.contains(from), "deploy/nginx/kaspi-gateway.conf changed: \(from)")
            site = site.replacingOccurrences(of: from, with: to)
        }
        try Data(site.utf8).write(to: URL(fileURLWithPath: directory + "/site.conf"))
        let configuration = """
            worker_processes 1;
            error_log \(directory)/error.log warn;
            pid \(directory)/nginx.pid;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                include \(directory)/site.conf;
            }
            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: directory + "/nginx.conf"))
        let process = try BackgroundProcess(nginx, ["-p", directory, "-c", directory + "/nginx.conf", "-g", "daemon off;"])
        let proxy = Proxy(port: port, ca: certificates.caCertificate, curl: curl)
        do {
            var ready = false
            for _ in 0..<100 where !ready {
                ready = (try? await proxy.request("/health", from: "127.0.0.1"))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
            try #require(ready, "nginx did not answer with the deployed site: \(log) \(process.stderr)")
            try await body(proxy, httpPort)
        } catch {
            _ = await process.stop(signal: SIGQUIT)
            throw error
        }
        _ = await process.stop(signal: SIGQUIT)
    }

    @Test("deploy/nginx/kaspi-gateway.conf: TLS, the payer's routes and the API public, the dashboard and metrics not, clients by X-Forwarded-For")
    func theDeployedSite() async throws {
        try await withStack(.sqlite, configure: { $0.trustedProxies = ["127.0.0.1"] }) { s in
            let port = try #require(URL(string: s.gatewayURL)?.port)
            try await Self.withDeployedSite(gatewayPort: port) { proxy, httpPort in
                let created = try await proxy.request(
                    "/v1/checkouts", from: "127.0.0.1", method: "POST",
                    headers: ["Authorization: Bearer \(s.apiKey)", "Content-Type: application/json", "Idempotency-Key: site-1"],
                    form: #"{"amount":1900}"#)
                #expect(created.status == 201, "\(created)")
                let id = try #require(created.body.firstMatch(of: /"id":"(ord_[a-z0-9]+)"/).map { String($0.1) })
                // The dashboard and metrics are not on the public side, whatever the path.
                for path in ["/admin", "/admin/login", "/metrics", "/admin/../admin/login"] {
                    #expect(try await proxy.request(path, from: "127.0.0.1").status == 404, "\(path)")
                }
                // Plain HTTP is sent to HTTPS.
                let curl = try ExternalTool.curl.require()
                let plain = try await ProcessRunner.run(
                    curl, ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://127.0.0.1:\(httpPort)/v1/orders"])
                #expect(plain.stdout.hasPrefix("301 https://"), "\(plain.stdout)")
                // nginx's request id reaches the gateway's logs and comes back.
                let headers = FileManager.default.temporaryDirectory.appendingPathComponent("h-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: headers) }
                let health = try await ProcessRunner.run(
                    curl, ["-sS", "--cacert", proxy.ca, "-D", headers, "-o", "/dev/null", "https://127.0.0.1:\(proxy.port)/health"])
                #expect(health.status == 0)
                let answered = (try? String(contentsOfFile: headers, encoding: .utf8)) ?? ""
                #expect(
                    answered.lowercased().contains("x-request-id: ") && answered.firstMatch(of: /(?i)x-request-id: [0-9a-f]{32}/) != nil,
                    "\(answered)")
                // Clients are told apart by the address nginx saw: a guesser is held back, its
                // neighbour is not.
                let path = "/client/v1/orders/\(id)"
                for n in 0..<20 {
                    _ = try await proxy.request(path, from: "127.0.0.5", headers: ["Client-Secret: guess-\(n)", "X-Forwarded-For: 10.9.9.\(n)"])
                }
                #expect(try await proxy.request(path, from: "127.0.0.5", headers: ["Client-Secret: guess-x"]).status == 429)
                #expect(try await proxy.request(path, from: "127.0.0.6", headers: ["Client-Secret: guess-y"]).status == 404)
            }
            // Every series deploy/prometheus's alert rules read is one the gateway exports.
            let rules = try String(contentsOf: Self.deploy.appendingPathComponent("prometheus/kaspi-gateway.rules.yml"), encoding: .utf8)
            s.gateway.clientCertificate = ClientCertificate(
                path: "/etc/kaspi-gateway/client.pem", notValidAfter: Date().addingTimeInterval(86_400 * 90))
            let metrics = try await http(.GET, s.adminURL + "/metrics").body
            let named = Set(rules.matches(of: /kaspi_gateway_[a-z_]+/).map { String($0.0) })
            #expect(named.count >= 6)
            // Series with labels known only when they happen (a Kaspi error's code) appear with
            // the first one; those are checked against the names the gateway declares.
            let source = try String(
                contentsOf: Self.deploy.appendingPathComponent("../Sources/KaspiGateway/Service/Metrics.swift"), encoding: .utf8)
            let declared = Set(source.matches(of: /Self\.name\("([a-z_]+)", "([a-z]+)"/).map { "kaspi_gateway_\($0.1)_\($0.2)" })
            for name in named {
                let series = name.replacing(/_(count|bucket|sum)$/, with: "")
                #expect(metrics.contains("# TYPE \(series) ") || declared.contains(series), "\(name) is not exported")
            }
        }
    }
}
