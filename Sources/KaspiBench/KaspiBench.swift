import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// `kaspi-bench`: what `scripts/bench` runs. See BENCHMARKS.md.
@main
struct KaspiBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kaspi-bench",
        abstract: "Measures KaspiKit on loopback against a bare Hummingbird baseline (see BENCHMARKS.md).",
        subcommands: [Run.self, Baseline.self, MicroCommand.self],
        defaultSubcommand: Run.self)
}

/// The baseline: a bare Hummingbird route returning a small JSON, built the same way as `kaspi`.
struct Baseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serves GET /baseline → {\"ok\":true} (the framework's limit on this machine).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int

    func run() async throws {
        let router = Router()
        let body = ByteBuffer(string: #"{"ok":true}"#)
        router.get("/baseline") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
        }
        var logger = Logger(label: "kaspi-bench-baseline")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        try await app.runService()
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Runs every benchmark and prints the report.")

    @Option(help: "The kaspi executable (default: next to this one).") var kaspi: String?
    @Option(help: "Where logs, databases and the report go.") var out = "out/bench"
    @Option(help: "Measured runs per figure (the median is reported).") var runs = 3
    @Option(help: "Distinct requests per measured run of a write benchmark.") var requests = 20_000
    @Option(help: "Seconds per measured run of a read benchmark.") var seconds = 5
    @Option(help: "wrk connections.") var connections = 64
    @Option(help: "wrk threads.") var threads = 2
    @Option(help: "Orders stored for the flat-cost run.") var flatOrders = 1_000_000
    @Option(help: "Orders (and QR purchases, in qrsandbox) the sandbox holds when its memory is read (0: only those of the create runs).")
    var sandboxOrders = 1_000_000
    @Option(help: "PostgreSQL for the PostgreSQL figures (default: $KASPI_BENCH_POSTGRES_URL; skipped without).") var postgres: String?
    @Option(help: "The Python interpreter with FastAPI and uvicorn, for the peer.") var python = "python3"
    @Option(help: "The repository root (benchmarks/ lives there).") var root = "."
    @Option(help: "Orders due at once in the live QR capacity run (more than one gateway polls in 5 s).") var qrBacklog = 30_000
    @Option(
        help:
            "An earlier build of kaspi to measure too, for before-and-after rows in the same run (sandbox, sqlite, postgres, checkout, qrlive, qrcheckout, qrsandbox)."
    )
    var before: String?
    @Option(
        help:
            "Only these, comma-separated: sandbox, sqlite, postgres, checkout, peer, flat, qr, qrlive, qrcheckout, qrsandbox (the baseline always runs)."
    )
    var only: String?

    func run() async throws {
        let kaspiPath = kaspi ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kaspi").path
        let bench = try Bench(
            kaspi: kaspiPath, benchExecutable: URL(fileURLWithPath: CommandLine.arguments[0]).path,
            out: URL(fileURLWithPath: out), root: URL(fileURLWithPath: root), runs: runs, requests: requests, seconds: seconds,
            wrk: Wrk(threads: threads, connections: connections, scripts: URL(fileURLWithPath: root).appendingPathComponent("benchmarks/wrk")),
            flatOrders: flatOrders, postgres: postgres ?? ProcessInfo.processInfo.environment["KASPI_BENCH_POSTGRES_URL"], python: python,
            only: Set((only ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }),
            before: before, sandboxOrders: sandboxOrders, liveBacklog: qrBacklog)
        try await bench.all()
    }
}

/// `kaspi-bench micro`: the in-process micro-benchmarks alone.
struct MicroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Run the in-process micro-benchmarks alone.")

    func run() {
        for line in Micro.all() { print(line) }
    }
}
