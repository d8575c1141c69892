import Dispatch
import Foundation
import Synchronization

/// A long-running program started for a test (a server), whose output is collected as it
/// comes, and which is stopped with a signal.
public final class BackgroundProcess: Sendable {
    private let process: ChildProcess
    private final class Text: Sendable {
        let value = Mutex<String>("")
        func append(_ data: Data) { value.withLock { $0 += String(decoding: data, as: UTF8.self) } }
    }

    private let output = Text()
    private let errors = Text()

    /// Starts `executable` with `arguments`.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws {
        let process = try ChildProcess(executable.path, arguments, environment: environment ?? ProcessInfo.processInfo.environment)
        self.process = process
        // Nothing to say on standard input.
        DispatchQueue.global().async { process.writeInput([]) }
        DispatchQueue.global().async { [output] in _ = ChildProcess.readToEnd(process.stdoutFD) { output.append($0) } }
        DispatchQueue.global().async { [errors] in _ = ChildProcess.readToEnd(process.stderrFD) { errors.append($0) } }
    }

    /// Everything printed on standard output so far.
    public var stdout: String { output.value.withLock { $0 } }
    /// Everything printed on standard error so far.
    public var stderr: String { errors.value.withLock { $0 } }
    /// Whether the program still runs.
    public var isRunning: Bool { process.isRunning }

    /// Waits (in real time) until standard output matches `pattern`; returns the first
    /// capture group, or nil when it did not appear within `seconds` or the program ended.
    public func waitForOutput(matching pattern: String, inStandardError: Bool = false, seconds: Double = 30) async -> String? {
        let regex = try? NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            let text = inStandardError ? stderr : stdout
            if let regex, let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                if let swiftRange = Range(range, in: text) { return String(text[swiftRange]) }
            }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Waits for the program to end by itself.
    ///
    /// - Returns: its exit status, or nil when it still runs after `seconds`.
    public func waitForExit(seconds: Double = 60) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { return nil }
        // Let the readers drain what the program wrote last.
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    /// Sends a signal (SIGINT by default) and waits for the program to end.
    ///
    /// - Returns: its exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGINT, seconds: Double = 15) async -> Int32 {
        if process.isRunning { kill(process.pid, signal) }
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.pid, SIGKILL)
            while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        }
        return process.terminationStatus ?? -1
    }
}
