import Foundation
import KaspiGatewayStore
import KaspiPayTesting
import KaspiSandbox
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL of the test's own, with TLS and a certificate the test makes (valid for
/// `localhost` and, where the machine has one, its non-loopback address), run as the
/// `postgres` user from Debian's packages.
struct TLSPostgres {
    let directory: String
    let port: Int
    let ca: String
    /// A non-loopback IPv4 address of this machine that the server listens on, if any.
    let outsideAddress: String?

    static var initdb: URL? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.sorted { $0.compare($1, options: .numeric) == .orderedAscending }.last.map {
            URL(fileURLWithPath: "/usr/lib/postgresql/\($0)/bin/initdb")
        }.flatMap { FileManager.default.isExecutableFile(atPath: $0.path) ? $0 : nil }
    }

    /// Root is needed to run the server as `postgres`; `.ci/run` runs as root.
    static var available: Bool { initdb != nil && getuid() == 0 && ProcessRunner.which("runuser") != nil }

    /// The machine's first non-loopback IPv4 address.
    static func outsideIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == UInt16(AF_INET) else { continue }
            var host = [CChar](repeating: 0, count: 64)
            guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, 64, nil, 0, NI_NUMERICHOST) == 0 else { continue }
            let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !text.hasPrefix("127.") { return text }
        }
        return nil
    }

    static func start() async throws -> TLSPostgres {
        let initdb = try #require(initdb)
        let bin = initdb.deletingLastPathComponent()
        let runuser = try #require(ProcessRunner.which("runuser"))
        let directory = "/tmp/kaspi-pg-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let outside = outsideIPv4()
        // Valid for localhost (not 127.0.0.1, so that a name check can fail) and the outside address.
        let certificates = try SandboxCertificates.generate(
            in: directory + "/certs", organizations: [], hosts: ["localhost"] + (outside.map { [$0] } ?? []))
        try Data("kaspi-tls\n".utf8).write(to: URL(fileURLWithPath: directory + "/pw"))
        let owned = ["", "/certs", "/certs/server.pem", "/certs/server-key.pem", "/pw"].map { directory + $0 }
        for path in owned {
            try FileManager.default.setAttributes([.ownerAccountName: "postgres", .groupOwnerAccountName: "postgres"], ofItemAtPath: path)
        }
        func asPostgres(_ arguments: [String]) async throws -> ProcessRunner.Output {
            try await ProcessRunner.run(runuser, ["-u", "postgres", "--"] + arguments)
        }
        let created = try await asPostgres([
            initdb.path, "-D", directory + "/data", "-U", "kaspi", "--pwfile=\(directory)/pw", "--auth=scram-sha-256", "-E", "UTF8",
        ])
        try #require(created.status == 0, "initdb: \(created.stderr)")
        let port = FreePort.find()
        let settings = """

            port = \(port)
            listen_addresses = '127.0.0.1\(outside.map { ",\($0)" } ?? "")'
            unix_socket_directories = '\(directory)'
            ssl = on
            ssl_cert_file = '\(certificates.serverCertificate)'
            ssl_key_file = '\(certificates.serverKey)'
            fsync = off

            """
        let conf = FileHandle(forWritingAtPath: directory + "/data/postgresql.conf")
        conf?.seekToEndOfFile()
        conf?.write(Data(settings.utf8))
        try conf?.close()
        let hba = FileHandle(forWritingAtPath: directory + "/data/pg_hba.conf")
        hba?.seekToEndOfFile()
        hba?.write(Data("\nhost all all 0.0.0.0/0 scram-sha-256\n".utf8))
        try hba?.close()
        let started = try await asPostgres([
            bin.appendingPathComponent("pg_ctl").path, "-D", directory + "/data", "-w", "-l", directory + "/log", "start",
        ])
        try #require(started.status == 0, "pg_ctl: \(started.stderr) \((try? String(contentsOfFile: directory + "/log", encoding: .utf8)) ?? "")")
        return TLSPostgres(directory: directory, port: port, ca: certificates.caCertificate, outsideAddress: outside)
    }

    func stop() async {
        if let initdb = Self.initdb, let runuser = ProcessRunner.which("runuser") {
            _ = try? await ProcessRunner.run(
                runuser,
                [
                    "-u", "postgres", "--", initdb.deletingLastPathComponent().appendingPathComponent("pg_ctl").path, "-D", directory + "/data", "-m",
                    "immediate", "stop",
                ])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func url(host: String, _ query: String) -> String { "postgres://kaspi:kaspi-tls@\(host):\(port)/postgres\(query.isEmpty ? "" : "?" + query)" }
}

@Suite(
    "PostgreSQL over TLS: verify-full by default beyond this machine", .serialized,
    .enabled(if: TLSPostgres.available, "needs root and Debian's postgresql"))
struct PostgresTLSTests {
    /// Connects as the gateway does at start (one connection, then the pool) and reads the
    /// schema version; the error's text when it cannot.
    private func connect(_ url: String) async -> String {
        do {
            try await PostgresGatewayStore.probe(url: url, logger: Logger(label: "test"))
            return "connected \(try await PostgresGatewayStore.withStore(url: url) { try await $0.schemaVersion() })"
        } catch {
            return "refused: \(error)"
        }
    }

    @Test func theServerIsCheckedAsLibpqsModesSay() async throws {
        let server = try await TLSPostgres.start()
        do {
            // verify-full with the test's CA: the name on the certificate is checked.
            #expect(await connect(server.url(host: "localhost", "sslmode=verify-full&sslrootcert=\(server.ca)")).hasPrefix("connected"))
            let wrongName = await connect(server.url(host: "127.0.0.1", "sslmode=verify-full&sslrootcert=\(server.ca)"))
            #expect(
                wrongName.hasPrefix("refused") && wrongName.contains("127.0.0.1:\(server.port)") && !wrongName.contains("kaspi-tls"), "\(wrongName)")
            // verify-ca checks the chain only; without the CA, the system's roots do not know it.
            #expect(await connect(server.url(host: "127.0.0.1", "sslmode=verify-ca&sslrootcert=\(server.ca)")).hasPrefix("connected"))
            #expect(await connect(server.url(host: "localhost", "sslmode=verify-full")).hasPrefix("refused"))
            // require encrypts without checking, as libpq's does.
            #expect(await connect(server.url(host: "127.0.0.1", "sslmode=require")).hasPrefix("connected"))
            // Beyond this machine, no sslmode means verify-full.
            if let outside = server.outsideAddress {
                #expect(await connect(server.url(host: outside, "sslrootcert=\(server.ca)")).hasPrefix("connected"))
                #expect(await connect(server.url(host: outside, "")).hasPrefix("refused"), "the system's roots must not know the test's CA")
            } else {
                print("note: this machine has no non-loopback IPv4 address; the default beyond loopback is checked by its parse only")
            }
        }
        await server.stop()
    }

    @Test func unknownModesAndUnreadableRootsAreRefused() {
        for mode in ["allow", "verify_full", "on", ""] {
            #expect(throws: StoreError.self, "\(mode)") { try PostgresGatewayStore.configuration(url: "postgres://u:p@db.example/x?sslmode=\(mode)") }
        }
        #expect(throws: StoreError.self) {
            try PostgresGatewayStore.configuration(url: "postgres://u:p@db.example/x?sslrootcert=/nonexistent/ca.pem")
        }
        #expect(throws: Never.self) { try PostgresGatewayStore.configuration(url: "postgres://u:p@db.example/x") }
    }
}
