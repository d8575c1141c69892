import Foundation
import KaspiPayTesting
import Testing

/// The files in `deploy/`: the systemd units pass systemd's own checker, and the Containerfile
/// copies the package `scripts/package` names.
@Suite("deploy/")
struct DeployTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy")

    @Test("systemd-analyze verify accepts the units, with the binary where the unit says", .requires(.systemdAnalyze))
    func systemdUnitsVerify() async throws {
        let analyze = try ExternalTool.systemdAnalyze.require()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var units: [String] = []
        for name in ["kaspi-gateway.service", "kaspi-gateway-backup.service", "kaspi-gateway-backup.timer"] {
            let text = try String(contentsOf: Self.deploy.appendingPathComponent(name), encoding: .utf8)
            // The unit names /opt/kaspi/kaspi (the package unpacked there); here, the built binary.
            #expect(name.hasSuffix(".timer") || text.contains("/opt/kaspi/kaspi gateway"))
            let path = directory + "/" + name
            try Data(text.replacingOccurrences(of: "/opt/kaspi/kaspi", with: CLI.binary.path).utf8).write(to: URL(fileURLWithPath: path))
            units.append(path)
        }
        let checked = try await ProcessRunner.run(analyze, ["verify", "--man=no"] + units)
        #expect(checked.status == 0 && checked.stderr.isEmpty && checked.stdout.isEmpty, "\(checked.stdout)\(checked.stderr)")
        // The hardening the service promises is there.
        let service = try String(contentsOf: Self.deploy.appendingPathComponent("kaspi-gateway.service"), encoding: .utf8)
        for line in ["User=kaspi", "StateDirectory=kaspi-gateway", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "UMask=0077"] {
            #expect(service.contains("\n\(line)\n"), "\(line)")
        }
        // What it runs are real subcommands.
        for arguments in [["gateway", "migrate", "--help"], ["gateway", "serve", "--help"], ["gateway", "backup", "--help"]] {
            #expect(try await CLI.run(arguments).status == 0)
        }
    }

    @Test func theContainerfileCopiesThisVersionsPackage() async throws {
        let version = try await CLI.run(["--version"])
        let number = try #require(version.stdout.firstMatch(of: /^(\d+\.\d+\.\d+) \(/).map { String($0.1) }, "\(version.stdout)")
        #expect(version.stdout.contains("development build"))
        let containerfile = try String(contentsOf: Self.deploy.appendingPathComponent("Containerfile"), encoding: .utf8)
        #expect(containerfile.contains("ARG PACKAGE=kaspi-\(number)-linux-"))
        #expect(containerfile.contains("FROM debian:bookworm-slim") && containerfile.contains("USER kaspi"))
        // Every variable the example environment sets is one the programs read.
        let example = try String(contentsOf: Self.deploy.appendingPathComponent("kaspi-gateway.env.example"), encoding: .utf8)
        let known =
            try await CLI.run(["gateway", "--help"]).stdout
            + (try String(contentsOf: Self.deploy.appendingPathComponent("../docs/gateway.md"), encoding: .utf8))
            + (try String(contentsOf: Self.deploy.appendingPathComponent("../docs/kaspi-qr.md"), encoding: .utf8))
        for line in example.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
            let name = String(line.prefix { $0 != "=" })
            #expect(known.contains(name), "\(name) is documented nowhere")
        }
    }
}
