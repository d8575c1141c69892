import Foundation
import Testing

/// A program some tests need from the system: `.ci/run` installs each one, so in CI (`CI` set)
/// a missing tool fails the tests that need it; elsewhere they are skipped with a note.
public enum ExternalTool: String, Sendable, CaseIterable {
    /// zbar's decoder, which reads our QR codes back (`zbar-tools`).
    case zbarimg
    /// Node.js, which runs the guide's own snippets and the independent Kaspi QR API clients.
    case node
    /// Python 3 with the `qrcode` and `segno` libraries, which our QR encoder is compared with.
    case python3
    /// nginx, the TLS proxy production puts in front of the gateway (`nginx-light`).
    case nginx
    /// curl, a client that can choose its source address (`--interface`) on loopback.
    case curl
    /// tinyproxy, a forward proxy with CONNECT (`tinyproxy-bin`): Kaspi calls leave through
    /// one like it from a registered address.
    case tinyproxy
    /// systemd's unit checker (`systemd`), for the service file in `deploy/`.
    case systemdAnalyze = "systemd-analyze"

    /// How to install it on Debian.
    public var installHint: String {
        switch self {
        case .zbarimg: "apt-get install zbar-tools"
        case .node: "apt-get install nodejs"
        case .python3: "apt-get install python3, then pip install qrcode segno"
        case .nginx: "apt-get install nginx-light"
        case .curl: "apt-get install curl"
        case .tinyproxy: "apt-get install tinyproxy-bin"
        case .systemdAnalyze: "apt-get install systemd"
        }
    }

    /// Whether this run is CI's, where every tool must be there.
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// Where the tool is, when it is installed.
    public var path: URL? {
        // nginx is in /usr/sbin, which a non-root PATH may leave out.
        ProcessRunner.which(rawValue)
            ?? (self == .nginx && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") ? URL(fileURLWithPath: "/usr/sbin/nginx") : nil)
    }

    /// Whether the tests that need it should run: it is installed, or this is CI.
    public var shouldRun: Bool { path != nil || Self.inCI }

    /// The tool's path, for a test that declared it with ``Testing/Trait/requires(_:)``.
    ///
    /// - Throws: when it is missing (which fails the test: in CI it must be there).
    public func require() throws -> URL {
        guard let path else { throw Missing(tool: self) }
        return path
    }

    /// The tool's path for an optional step of a larger test: nil outside CI when it is
    /// missing (with a note), and a failure in CI.
    public func locate() throws -> URL? {
        if let path { return path }
        if Self.inCI { throw Missing(tool: self) }
        print("note: \(rawValue) is not installed (\(installHint)); a step that needs it is skipped (only allowed outside CI)")
        return nil
    }

    /// A tool a test needs is not installed.
    public struct Missing: Error, CustomStringConvertible {
        /// The tool that is missing.
        public var tool: ExternalTool
        public var description: String { "\(tool.rawValue) is not installed: \(tool.installHint)" }
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where `tool` is installed, and always in CI (where `.ci/run`
    /// installs it, so that a missing tool fails instead of skipping).
    public static func requires(_ tool: ExternalTool) -> Self {
        .enabled(if: tool.shouldRun, "\(tool.rawValue) is not installed (\(tool.installHint)); skipped outside CI")
    }
}
