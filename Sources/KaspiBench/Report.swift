import Foundation

/// Collects the figures and prints them as Markdown.
final class Report: @unchecked Sendable {
    private var lines: [String] = []
    private var rows: [String] = []
    private var checks: [String] = []
    private var processes: [String] = []
    private var notes: [String] = []
    private var microLines: [String] = []
    private var extra: [String] = []
    private var stats: [String: (rps: Double, p50: Double, p99: Double)] = [:]
    private var baselineStats: (rps: Double, p50: Double, p99: Double)?
    private var worstPeakMiB = 0.0
    private var slowestReady: Duration = .zero
    private var flatRatio: Double?
    private var sandboxMemoryFigure: (orders: Int, memory: (rss: Double, peak: Double))?

    private var qrSandboxMemoryFigure: (purchases: Int, memory: (rss: Double, peak: Double))?

    /// The sandbox's memory once it holds many QR purchases.
    func qrSandboxMemory(purchases: Int, memory: (rss: Double, peak: Double)) {
        qrSandboxMemoryFigure = (purchases, memory)
    }

    /// The sandbox's memory once it holds many orders.
    func sandboxMemory(orders: Int, memory: (rss: Double, peak: Double)) {
        sandboxMemoryFigure = (orders, memory)
    }
    private(set) var failed = false

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func ms(_ d: Duration) -> String {
        let (s, atto) = d.components
        return String(format: "%.1f ms", Double(s) * 1000 + Double(atto) / 1e15)
    }

    static func latency(_ us: Double) -> String { us >= 1000 ? String(format: "%.2f ms", us / 1000) : String(format: "%.0f µs", us) }

    private static func summary(_ results: [WrkResult]) -> (rps: Double, p50: Double, p99: Double) {
        // Only answered, successful requests count as throughput.
        let rps = median(results.map { Double($0.requests - $0.errors) / (Double($0.durationUs) / 1_000_000) })
        return (rps, median(results.map { Double($0.p50Us) }), median(results.map { Double($0.p99Us) }))
    }

    func header(wrk: Wrk, runs: Int, requests: Int, seconds: Int) {
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        lines.append(
            "Run on \(ISO8601DateFormatter().string(from: Date())), \(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), loopback.")
        lines.append(
            "Load: wrk, \(wrk.threads) threads, \(wrk.connections) connections, on the same cores as the servers. Each figure is the median of \(runs) runs after a warm-up; write benchmarks send \(requests.formatted()) distinct requests a run, read benchmarks run \(seconds) s."
        )
    }

    func micro(_ lines: [String]) { microLines = lines }

    func baseline(_ results: [WrkResult]) {
        let s = Self.summary(results)
        baselineStats = s
        stats["baseline"] = s
        rows.append(
            "| Baseline: bare Hummingbird route, small JSON | \(Int(s.rps).formatted()) | 100% | \(Self.latency(s.p50)) | \(Self.latency(s.p99)) | \(results.map(\.errors).reduce(0, +)) |"
        )
    }

    func row(_ name: String, _ results: [WrkResult], key: String) {
        let s = Self.summary(results)
        stats[key] = s
        let ratio = baselineStats.map { String(format: "%.0f%%", s.rps / $0.rps * 100) } ?? "?"
        rows.append(
            "| \(name) | \(Int(s.rps).formatted()) | \(ratio) | \(Self.latency(s.p50)) | \(Self.latency(s.p99)) | \(results.map(\.errors).reduce(0, +)) |"
        )
    }

    /// Checks effects in the database: everything acknowledged must be there, and nothing more
    /// than was sent.
    func check(_ name: String, expected: Int, found: Int, acknowledged: Int) {
        let verdict: String
        if found < acknowledged || found > expected {
            failed = true
            verdict = "FAILED (acknowledged \(acknowledged), sent \(expected))"
        } else if found == expected {
            verdict = "ok"
        } else {
            verdict = "ok (\(expected - found) sent but unanswered when wrk stopped)"
        }
        checks.append("| \(name) | \(expected.formatted()) | \(found.formatted()) | \(verdict) |")
    }

    /// A process's start and memory; `ours` counts it toward the targets (not the peer's).
    func process(_ name: String, ready: Duration?, memory: (rss: Double, peak: Double), ours: Bool = true) {
        if ours, let ready { slowestReady = max(slowestReady, ready) }
        if ours { worstPeakMiB = max(worstPeakMiB, memory.peak) }
        processes.append(
            "| \(name) | \(ready.map(Self.ms) ?? "–") | \(String(format: "%.1f", memory.rss)) MiB | \(String(format: "%.1f", memory.peak)) MiB |")
    }

    func note(_ text: String) { notes.append(text) }

    /// A run whose figures cannot be trusted.
    func invalid(_ text: String) {
        failed = true
        notes.append("INVALID: " + text)
    }

    func flat(small: Double, large: Double, largeCount: Int) {
        flatRatio = large / small
        extra.append(
            "Flat cost: webhook p50 \(Self.latency(small)) with 10,000 orders stored, \(Self.latency(large)) with \(largeCount.formatted()): \(String(format: "%.2f", large / small))×."
        )
    }

    func reconciliation(_ lines: [String], plan: String) {
        extra.append("")
        extra.append("Reconciliation: claiming every due order, 50 at a time, as the worker does (in-process, SQLite):")
        extra.append("")
        extra.append("| orders stored | due | claimed | time | per claimed order |")
        extra.append("|---|---|---|---|---|")
        extra.append(contentsOf: lines)
        extra.append("")
        extra.append("Query plan of the claim: `\(plan)`")
    }

    /// The baseline's req/s, when measured.
    var baselineRPS: Double? { baselineStats?.rps }

    func qrPolling(_ lines: [String], pending: Int) {
        extra.append("")
        extra.append(
            "Polling on the Kaspi QR API: one worker polls \(pending.formatted()) due orders once each (`reconcileOnce`, 100 a round; one `payment/status` to `kaspi sandbox` over loopback, the state applied and the next poll scheduled at Kaspi's 5 s), in-process. Capacity is how many pending orders it keeps polled every 5 s:"
        )
        extra.append("")
        extra.append("| database | settled orders | polls | time | per poll | polls/s (of baseline req/s) | pending orders at 5 s |")
        extra.append("|---|---|---|---|---|---|---|")
        extra.append(contentsOf: lines)
    }

    func qrLive(capacity: [String], latency: [String]) {
        extra.append("")
        extra.append(
            "Kaspi's real profile end to end: `kaspi gateway --profile qr` (r1) polling `kaspi sandbox`, its events signed to a receiver that verifies them (KaspiEvents). Capacity: polls a second, read from the gateway's metrics over the run, with more orders due than it can poll in 5 s:"
        )
        extra.append("")
        extra.append("| database | orders due | polls/s | of baseline req/s | pending orders kept at 5 s | peak memory |")
        extra.append("|---|---|---|---|---|---|")
        extra.append(contentsOf: capacity)
        extra.append("")
        extra.append(
            "Payer-visible latency: with 10,000 orders pending at Kaspi's 5 s, 300 purchases paid one by one at the sandbox (scan, then confirm: `Processed`); the time from the confirm to the receiver holding the verified `order.paid` (HDR histogram), and events delivered more than once:"
        )
        extra.append("")
        extra.append("| database | pending | paid and heard | p50 | p90 | p99 | max | delivered twice | peak memory |")
        extra.append("|---|---|---|---|---|---|---|---|---|")
        extra.append(contentsOf: latency)
    }

    func targets() {
        guard let base = baselineStats else { return }
        var t: [String] = []
        func line(_ name: String, _ value: String, _ met: Bool?) {
            t.append("| \(name) | \(value) | \(met.map { $0 ? "met" : "NOT met" } ?? "not measured") |")
        }
        if let s = stats["webhook-sqlite"] {
            line("Webhook (SQLite) ≥ 40% of baseline req/s", String(format: "%.0f%%", s.rps / base.rps * 100), s.rps >= 0.4 * base.rps)
            if let peer = stats["peer-webhook"] {
                line("Webhook (SQLite) ≥ 5× the Python peer", String(format: "%.1f×", s.rps / peer.rps), s.rps >= 5 * peer.rps)
            }
            line("Webhook (SQLite) p99 ≤ 3× baseline p99", String(format: "%.1f×", s.p99 / base.p99), s.p99 <= 3 * base.p99)
        }
        // PostgreSQL runs on the same two cores as the load and the gateway: its own targets.
        if let s = stats["webhook-postgresql"] {
            if let peer = stats["peer-webhook"] {
                line("Webhook (PostgreSQL) ≥ 3× the Python peer", String(format: "%.1f×", s.rps / peer.rps), s.rps >= 3 * peer.rps)
            }
            line("Webhook (PostgreSQL) p99 ≤ 4× baseline p99", String(format: "%.1f×", s.p99 / base.p99), s.p99 <= 4 * base.p99)
        }
        if let c = stats["checkout"], let create = stats["sandbox-create"] {
            line("Checkout ≥ ½ of the sandbox's create", String(format: "%.0f%%", c.rps / create.rps * 100), c.rps >= 0.5 * create.rps)
        }
        if let c = stats["qr-checkout"], let create = stats["qr-create-link"] {
            line("QR checkout ≥ ½ of the sandbox's qr/create-link", String(format: "%.0f%%", c.rps / create.rps * 100), c.rps >= 0.5 * create.rps)
        }
        if let status = stats["sandbox-status"] {
            line("Sandbox status ≥ 60% of baseline", String(format: "%.0f%%", status.rps / base.rps * 100), status.rps >= 0.6 * base.rps)
        }
        line(
            "Peak resident memory ≤ 64 MiB per KaspiKit process", String(format: "%.1f MiB (largest)", worstPeakMiB),
            worstPeakMiB > 0 ? worstPeakMiB <= 64 : nil)
        if let (orders, memory) = sandboxMemoryFigure {
            line(
                "Sandbox peak resident memory ≤ 64 MiB with 1,000,000 orders created",
                String(format: "%.1f MiB with %@ orders", memory.peak, orders.formatted()), orders >= 1_000_000 ? memory.peak <= 64 : nil)
        }
        if let (purchases, memory) = qrSandboxMemoryFigure {
            line(
                "Sandbox peak resident memory ≤ 64 MiB with 1,000,000 QR purchases",
                String(format: "%.1f MiB with %@ purchases", memory.peak, purchases.formatted()), purchases >= 1_000_000 ? memory.peak <= 64 : nil)
        }
        line(
            "KaspiKit processes ready within 1 s of start", Self.ms(slowestReady) + " (slowest)",
            slowestReady > .zero ? slowestReady < .seconds(1) : nil)
        line("Webhook p50 with many orders ≤ 1.2× with 10,000", flatRatio.map { String(format: "%.2f×", $0) } ?? "–", flatRatio.map { $0 <= 1.2 })
        extra.append("")
        extra.append("## Targets")
        extra.append("")
        extra.append("| target | this run | |")
        extra.append("|---|---|---|")
        extra.append(contentsOf: t)
    }

    func text() -> String {
        var out = lines
        out.append("")
        out.append("| benchmark | req/s | of baseline | p50 | p99 | errors |")
        out.append("|---|---|---|---|---|---|")
        out.append(contentsOf: rows)
        out.append("")
        out.append("Every write checked in the database afterwards:")
        out.append("")
        out.append("| check | sent | found | |")
        out.append("|---|---|---|---|")
        out.append(contentsOf: checks)
        out.append("")
        out.append("| process | start to ready | resident after load | peak resident |")
        out.append("|---|---|---|---|")
        out.append(contentsOf: processes)
        out.append("")
        out.append("Micro-benchmarks (one core, in-process):")
        out.append("")
        out.append("| operation | time per operation |")
        out.append("|---|---|")
        out.append(contentsOf: microLines)
        out.append("")
        out.append(contentsOf: extra)
        if !notes.isEmpty {
            out.append("")
            out.append(contentsOf: notes.map { "- " + $0 })
        }
        return out.joined(separator: "\n") + "\n"
    }
}
