import Foundation
import Synchronization

/// Runs a program to its end and collects its output, without blocking Swift's cooperative
/// thread pool (the blocking waits run on a dispatch queue).
public enum ProcessRunner {
    /// What a program printed and how it exited.
    public struct Output: Sendable {
        /// The exit status, or the signal that ended it.
        public var status: Int32
        /// Standard output, as text.
        public var stdout: String
        /// Standard output, as bytes.
        public var stdoutBytes: [UInt8]
        /// Standard error, as text.
        public var stderr: String
    }

    /// Finds an executable on `PATH`.
    public static func which(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Runs `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: the whole environment of the program.
    ///   - stdin: bytes written to its standard input, which is then closed.
    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, stdin: [UInt8]? = nil
    ) async throws -> Output {
        let child = try ChildProcess(executable.path, arguments, environment: environment ?? ProcessInfo.processInfo.environment)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                DispatchQueue.global().async { child.writeInput(stdin ?? []) }
                let stderrBox = Mutex(Data())
                let group = DispatchGroup()
                group.enter()
                DispatchQueue.global().async {
                    let data = ChildProcess.readToEnd(child.stderrFD)
                    stderrBox.withLock { $0 = data }
                    group.leave()
                }
                let stdout = ChildProcess.readToEnd(child.stdoutFD)
                group.wait()
                let status = child.waitUntilExit()
                let stderr = stderrBox.withLock { $0 }
                continuation.resume(
                    returning: Output(
                        status: status, stdout: String(decoding: stdout, as: UTF8.self), stdoutBytes: Array(stdout),
                        stderr: String(decoding: stderr, as: UTF8.self)))
            }
        }
    }
}
