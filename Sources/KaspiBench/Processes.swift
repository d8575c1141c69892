import AsyncHTTPClient
import Foundation
import NIOCore

/// A child process of the benchmark, with its output in a log file.
final class Child: @unchecked Sendable {
    let name: String
    let process = Process()
    let started: ContinuousClock.Instant
    let log: URL

    /// Starts `executable` with `arguments` and `environment` added to this process's.
    init(
        _ name: String, executable: String, arguments: [String], environment: [String: String] = [:], workDirectory: URL, currentDirectory: URL? = nil
    ) throws {
        self.name = name
        log = workDirectory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardOutput = handle
        process.standardError = handle
        started = .now
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Polls `url` until it answers 200; returns the time from start to that answer.
    func waitReady(_ url: String, client: HTTPClient, timeout: Duration = .seconds(60)) async throws -> Duration {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw BenchError.failed("\(name) exited during start; see \(log.path)") }
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            if let response = try? await client.execute(request, timeout: .seconds(2)), response.status == .ok {
                _ = try? await response.body.collect(upTo: 1 << 20)
                return ContinuousClock.now - started
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw BenchError.failed("\(name) was not ready within \(timeout); see \(log.path)")
    }

    /// Resident memory now and at its peak, in MiB, from /proc.
    func memory() -> (rss: Double, peak: Double) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func value(_ key: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return (Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) / 1024
        }
        return (value("VmRSS"), value("VmHWM"))
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after 20 s).
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(pid, SIGKILL) }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case failed(String)
    var description: String {
        switch self {
        case .failed(let message): message
        }
    }
}

/// One wrk run's figures, from the line the Lua scripts print.
struct WrkResult: Decodable, Sendable {
    var requests: Int
    var durationUs: Int
    var status: Int
    var connect: Int
    var read: Int
    var write: Int
    var timeout: Int
    var p50Us: Int
    var p90Us: Int
    var p99Us: Int
    var maxUs: Int
    /// Distinct pool requests handed out (all sent; the last few may be unanswered at the end).
    var issued: Int
    /// Threads that ran out of distinct requests (the run is then invalid).
    var exhausted: Int
    /// Pool requests answered with a status below 400.
    var ok: Int

    var perSecond: Double { Double(requests) / (Double(durationUs) / 1_000_000) }
    var errors: Int { status + connect + read + write + timeout }
}

/// Runs wrk and parses its result line.
struct Wrk {
    var threads: Int
    var connections: Int
    var scripts: URL

    /// Sends lines of `file`, each at most once, for `seconds` (see benchmarks/wrk/once.lua).
    /// `delay` paces each connection; `connections` overrides the default.
    func once(
        url: String, file: URL, method: String, path: String, seconds: Int, headers: [String] = [],
        connections: Int? = nil, delayMs: Int = 0
    ) async throws -> WrkResult {
        try await run(
            [
                "-t", "\(threads)", "-c", "\(connections ?? self.connections)", "-d", "\(seconds)s", "--timeout", "30s",
                "-s", scripts.appendingPathComponent("once.lua").path, url, "--", file.path, method, path, "\(threads)", "\(delayMs)",
            ] + headers)
    }

    /// Repeats one request for `seconds`.
    func repeated(url: String, seconds: Int, headers: [String] = []) async throws -> WrkResult {
        try await run(
            [
                "-t", "\(threads)", "-c", "\(connections)", "-d", "\(seconds)s", "--timeout", "30s",
                "-s", scripts.appendingPathComponent("report.lua").path, url, "--",
            ] + headers)
    }

    private func run(_ arguments: [String]) async throws -> WrkResult {
        let output = try await Command.output("wrk", arguments)
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("BENCH ") }) else {
            throw BenchError.failed("wrk printed no result:\n\(output.suffix(2000))")
        }
        return try JSONDecoder().decode(WrkResult.self, from: Data(line.dropFirst(6).utf8))
    }
}

/// Runs a program found on PATH and collects its standard output.
enum Command {
    static func output(_ program: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read and wait off the cooperative pool, which has only as many threads as cores.
        let (data, status) = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (data, process.terminationStatus))
            }
        }
        let text = String(decoding: data, as: UTF8.self)
        guard status == 0 else { throw BenchError.failed("\(program) exited with \(status):\n\(text.suffix(2000))") }
        return text
    }
}
