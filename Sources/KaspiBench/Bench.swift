import AsyncHTTPClient
import Foundation
import KaspiGatewayStore
import KaspiPay
import KaspiPayTesting
import Logging
import PostgresNIO
import SQLiteNIO

/// The benchmark run: every scenario, one after the other, on loopback.
final class Bench: @unchecked Sendable {
    /// The kaspi executable measured now: ours, or `before` for its "before" rows.
    var kaspi: String
    /// An earlier build of kaspi, measured in the same run for before-and-after figures.
    let before: String?
    /// This run's own build of kaspi, whichever build is being measured.
    let ours: String
    /// Appended to the names of figures measured with `before`.
    var variant = ""
    let benchExecutable: String
    let out: URL
    let root: URL
    let runs: Int
    let requests: Int
    let seconds: Int
    let wrk: Wrk
    let flatOrders: Int
    /// Orders the sandbox holds when its memory is read (`--sandbox-orders`).
    let sandboxOrders: Int
    let postgres: String?
    let python: String
    let only: Set<String>
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    let report = Report()
    /// Orders due at once in the live QR capacity run.
    let liveBacklog: Int
    /// The live QR runs' rows, reported together.
    var liveCapacityLines: [String] = []
    var liveLatencyLines: [String] = []
    var logger = Logger(label: "kaspi-bench")

    static let tradePoint = "TP-BENCH"
    static let kaspiKey = "bench-kaspi-key"
    static let gatewayKey = "bench-gateway-key-0123456789abcdefghij"
    static let amount = 5000

    init(
        kaspi: String, benchExecutable: String, out: URL, root: URL, runs: Int, requests: Int, seconds: Int, wrk: Wrk,
        flatOrders: Int, postgres: String?, python: String, only: Set<String>, before: String? = nil, sandboxOrders: Int = 1_000_000,
        liveBacklog: Int = 30_000
    ) throws {
        self.liveBacklog = max(1_000, liveBacklog)
        self.sandboxOrders = sandboxOrders
        self.only = only
        self.kaspi = kaspi
        self.ours = kaspi
        self.before = before
        self.benchExecutable = benchExecutable
        self.out = out
        self.root = root
        self.runs = max(1, runs)
        self.requests = max(100, requests)
        self.seconds = max(1, seconds)
        self.wrk = wrk
        self.flatOrders = flatOrders
        self.postgres = postgres
        self.python = python
        logger.logLevel = .warning
        try? FileManager.default.removeItem(at: out)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    }

    /// Progress on standard error; the report goes to standard output at the end.
    func progress(_ text: String) {
        FileHandle.standardError.write(Data("· \(text)\n".utf8))
    }

    func all() async throws {
        do {
            try await run()
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func run() async throws {
        report.header(wrk: wrk, runs: runs, requests: requests, seconds: seconds)
        progress("micro-benchmarks")
        report.micro(Micro.all())
        func selected(_ name: String) -> Bool { only.isEmpty || only.contains(name) }
        try await baseline()
        if let before { report.note("Rows marked (before) ran \(before), an earlier build, in this same run.") }
        if selected("sandbox") { try await beforeAndAfter { try await sandbox() } }
        if selected("sqlite") { try await beforeAndAfter { try await gatewayWebhooks(database: .sqlite) } }
        if selected("postgres") {
            if let postgres {
                try await beforeAndAfter { try await gatewayWebhooks(database: .postgres(postgres)) }
            } else {
                report.note("PostgreSQL skipped: set KASPI_BENCH_POSTGRES_URL (scripts/bench does).")
            }
        }
        if selected("checkout") { try await beforeAndAfter { try await checkout() } }
        if selected("peer") { try await peer() }
        if selected("flat") {
            try await flatCost()
            try await reconciliation()
        }
        if selected("qr") { try await qrPolling() }
        if selected("qrsandbox"), sandboxOrders > 0 { try await beforeAndAfter { try await qrSandboxMemory(count: sandboxOrders) } }
        if selected("qrlive") || selected("qrcheckout") { try await qrLive(polling: selected("qrlive"), checkout: selected("qrcheckout")) }
        report.targets()
        let text = report.text()
        try text.write(to: out.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
        print(text)
        if report.failed { throw BenchError.failed("a benchmark lost writes or answered with errors; see above") }
    }

    // MARK: Helpers

    /// Runs `scenario` with the earlier build first (when there is one), then with ours.
    func beforeAndAfter(_ scenario: () async throws -> Void) async throws {
        if let before {
            let ours = kaspi
            kaspi = before
            variant = " (before)"
            defer {
                kaspi = ours
                variant = ""
            }
            try await scenario()
        }
        try await scenario()
    }

    /// A figure's name and key, marked when it measures the earlier build.
    func named(_ name: String) -> String { name + variant }
    func keyed(_ key: String) -> String { variant.isEmpty ? key : "before-\(key)" }
    var measuringOurs: Bool { variant.isEmpty }

    func port() -> Int { FreePort.find() }

    /// Removes a SQLite database an earlier scenario left.
    func removeDatabase(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Writes request lines to a file.
    func file(_ name: String, _ lines: some Sequence<String>) throws -> URL {
        let url = out.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Signed webhook bodies for orders bench-<from> ..< bench-<to>.
    func webhookLines(_ range: Range<Int>) throws -> [String] {
        let key = try APIKey(Self.kaspiKey)
        return range.map { i in
            let id = "bench-\(i)"
            let signature = Signature.compute(.webhook, amount: Self.amount, orderID: id, apiKey: key)
            return #"{"orderId":"\#(id)","amount":\#(Self.amount),"status":"APPROVED","transactionId":"tx-\#(i)","signature":"\#(signature)"}"#
        }
    }

    /// Distinct requests a write run may need: more than the baseline could answer in it.
    var poolPerRun: Int { Int(baselineRPS * Double(seconds) * 1.25) + 1000 }
    var poolWarmup: Int { Int(baselineRPS * 1.25) + 1000 }
    /// Every distinct request a write scenario may send.
    var poolTotal: Int { poolWarmup + runs * poolPerRun }
    var baselineRPS = 0.0

    /// Measures `runs` runs of `seconds` after a 1 s warm-up; each run has its own slice of
    /// distinct request lines. Returns the results and how many requests were handed out.
    func measured(
        _ name: String, warmup: Int? = nil, perRun: Int? = nil, seconds: Int? = nil, lines: (Range<Int>) throws -> [String],
        send: (URL, Int) async throws -> WrkResult
    ) async throws -> (results: [WrkResult], issued: Int, acknowledged: Int) {
        let warmup = warmup ?? poolWarmup
        let perRun = perRun ?? poolPerRun
        progress("\(name): warm-up")
        var all = [try await send(try file("\(name)-warmup.txt", try lines(0..<warmup)), 1)]
        var results: [WrkResult] = []
        for run in 0..<runs {
            progress("\(name): run \(run + 1) of \(runs)")
            let start = warmup + run * perRun
            results.append(try await send(try file("\(name)-\(run).txt", try lines(start..<start + perRun)), seconds ?? self.seconds))
        }
        all += results
        if all.contains(where: { $0.exhausted > 0 }) {
            report.invalid("\(name): a run ran out of distinct requests; the figures are not valid")
        }
        return (results, all.map(\.issued).reduce(0, +), all.map(\.ok).reduce(0, +))
    }

    /// A sandbox process: the build being measured, or `executable` (this run's own build,
    /// for scenarios that measure only the gateway of each build).
    func sandboxProcess(_ name: String, executable: String? = nil) async throws -> (Child, String, Duration) {
        let port = port()
        let child = try Child(
            name, executable: executable ?? kaspi,
            arguments: ["sandbox", "--port", "\(port)", "--rate-limit", "0", "--trade-point-id", Self.tradePoint, "--api-key", Self.kaspiKey],
            workDirectory: out)
        let base = "http://127.0.0.1:\(port)"
        let ready = try await child.waitReady("\(base)/health", client: client)
        return (child, base, ready)
    }

    func gatewayProcess(_ name: String, database: String, sandbox: String) async throws -> (Child, String, Duration) {
        let port = port()
        // Builds before the admin listener had no --admin-port (nor needed one).
        let admin = variant.isEmpty ? ["--admin-port", "0"] : []
        let child = try Child(
            name, executable: kaspi,
            arguments: ["gateway", "--database", database, "--port", "\(port)", "--first-poll-after", "3600"] + admin,
            environment: [
                "KASPI_GATEWAY_API_KEYS": Self.gatewayKey, "KASPI_TRADE_POINT_ID": Self.tradePoint, "KASPI_API_KEY": Self.kaspiKey,
                "KASPI_BASE_URL": sandbox, "KASPI_RATE_LIMIT": "0", "KASPI_GATEWAY_ADMIN_PASSWORD": "bench-admin-password",
                // The webhook benchmarks measure the webhook's own write path, with no Kaspi to
                // confirm against: an APPROVED webhook's status call is left out (see BENCHMARKS.md).
                "KASPI_GATEWAY_CONFIRM_PAID_WEBHOOKS": "false",
            ],
            workDirectory: out)
        let base = "http://127.0.0.1:\(port)"
        let ready = try await child.waitReady("\(base)/ready", client: client)
        return (child, base, ready)
    }

    // MARK: Scenarios

    func baseline() async throws {
        let port = port()
        let child = try Child("baseline", executable: benchExecutable, arguments: ["baseline", "--port", "\(port)"], workDirectory: out)
        let ready = try await child.waitReady("http://127.0.0.1:\(port)/baseline", client: client)
        progress("baseline: warm-up")
        _ = try await wrk.repeated(url: "http://127.0.0.1:\(port)/baseline", seconds: 1)
        var results: [WrkResult] = []
        for run in 0..<runs {
            progress("baseline: run \(run + 1) of \(runs)")
            results.append(try await wrk.repeated(url: "http://127.0.0.1:\(port)/baseline", seconds: seconds))
        }
        report.baseline(results)
        baselineRPS = Report.median(results.map { Double($0.requests - $0.errors) / (Double($0.durationUs) / 1_000_000) })
        report.process("baseline (kaspi-bench baseline; not a target)", ready: ready, memory: child.memory(), ours: false)
        await child.stop()
    }

    func sandbox() async throws {
        let (child, base, ready) = try await sandboxProcess("sandbox")
        let key = try APIKey(Self.kaspiKey)
        let create = try await measured(
            "sandbox-create",
            lines: { range in
                range.map { i in
                    let id = "sb-\(i)"
                    let signature = Signature.compute(.createOrder, amount: Self.amount, orderID: id, apiKey: key)
                    return
                        #"{"amount":\#(Self.amount),"orderId":"\#(id)","returnUrl":"https://shop.example/ok","failUrl":"https://shop.example/fail","tradePointId":"\#(Self.tradePoint)","description":"Bench order","signature":"\#(signature)"}"#
                }
            },
            send: { file, seconds in
                try await wrk.once(
                    url: base, file: file, method: "POST", path: "/api/v1/orders/create", seconds: seconds,
                    headers: ["Authorization: Bearer \(Self.kaspiKey)"])
            })
        report.row(named("Sandbox: create order (POST /api/v1/orders/create)"), create.results, key: keyed("sandbox-create"))
        progress("sandbox-status: warm-up")
        let statusURL = "\(base)/api/v1/orders/sb-0/status"
        _ = try await wrk.repeated(url: statusURL, seconds: 1, headers: ["Authorization: Bearer \(Self.kaspiKey)"])
        var status: [WrkResult] = []
        for run in 0..<runs {
            progress("sandbox-status: run \(run + 1) of \(runs)")
            status.append(try await wrk.repeated(url: statusURL, seconds: seconds, headers: ["Authorization: Bearer \(Self.kaspiKey)"]))
        }
        report.row(named("Sandbox: order status (GET /api/v1/orders/{id}/status)"), status, key: keyed("sandbox-status"))
        let memory = child.memory()
        // Every create must have stored an order.
        let stored = try await sandboxOrderCount(base)
        report.check(named("sandbox orders stored"), expected: create.issued, found: stored, acknowledged: create.acknowledged)
        report.process(named("sandbox (kaspi sandbox, \(stored) orders)"), ready: ready, memory: memory, ours: measuringOurs)
        if measuringOurs, sandboxOrders > stored {
            // Memory with many orders: create the rest, then read it and every order's count.
            let made = try await fill(base, count: sandboxOrders - stored)
            let total = try await sandboxOrderCount(base)
            report.check(
                "sandbox orders stored, all \(sandboxOrders.formatted())", expected: stored + made, found: total, acknowledged: stored + made)
            // A status read of the first order (long written aside) and of the last.
            for id in ["sb-0", "fill-\(made - 1)"] {
                let response = try await client.execute(
                    authorized("\(base)/api/v1/orders/\(id)/status"), timeout: .seconds(10))
                if response.status != .ok { report.invalid("sandbox: the status of \(id) answered \(response.status.code)") }
                _ = try await response.body.collect(upTo: 1 << 20)
            }
            report.process(
                "sandbox (kaspi sandbox, \(total.formatted()) orders created)", ready: nil, memory: child.memory(), ours: true)
            report.sandboxMemory(orders: total, memory: child.memory())
        }
        await child.stop()
    }

    func authorized(_ url: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(Self.kaspiKey)")
        return request
    }

    /// Creates `count` more orders at the sandbox, 32 at a time; returns how many it made.
    func fill(_ base: String, count: Int) async throws -> Int {
        let key = try APIKey(Self.kaspiKey)
        let workers = 32
        let made = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask { [self] in
                    var made = 0
                    for i in stride(from: worker, to: count, by: workers) {
                        let id = "fill-\(i)"
                        let signature = Signature.compute(.createOrder, amount: Self.amount, orderID: id, apiKey: key)
                        var request = authorized("\(base)/api/v1/orders/create")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(
                            ByteBuffer(
                                string:
                                    #"{"amount":\#(Self.amount),"orderId":"\#(id)","returnUrl":"https://shop.example/ok","failUrl":"https://shop.example/fail","tradePointId":"\#(Self.tradePoint)","description":"Bench order","signature":"\#(signature)"}"#
                            ))
                        let response = try await client.execute(request, timeout: .seconds(30))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .ok || response.status == .created else {
                            throw BenchError.failed("sandbox fill: \(id) answered \(response.status.code): \(String(buffer: body).prefix(300))")
                        }
                        made += 1
                        if worker == 0, made % (100_000 / workers) == 0 {
                            progress("sandbox memory: \((made * workers).formatted()) of \(count.formatted()) more orders")
                        }
                    }
                    return made
                }
            }
            return try await group.reduce(0, +)
        }
        return made
    }

    /// How many orders the sandbox holds: its stats endpoint, or its full list on builds that have none.
    func sandboxOrderCount(_ base: String) async throws -> Int {
        let stats = try await client.execute(HTTPClientRequest(url: "\(base)/sandbox/stats"), timeout: .seconds(60))
        let statsBody = try await stats.body.collect(upTo: 1 << 20)
        if stats.status == .ok, let object = try JSONSerialization.jsonObject(with: Data(buffer: statsBody)) as? [String: Any],
            let orders = object["orders"] as? Int
        {
            return orders
        }
        let response = try await client.execute(HTTPClientRequest(url: "\(base)/sandbox/orders"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 30)
        let array = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [Any]
        return array?.count ?? -1
    }

    enum Database {
        case sqlite
        case postgres(String)
        var label: String {
            switch self {
            case .sqlite: "SQLite"
            case .postgres: "PostgreSQL"
            }
        }
    }

    /// Opens the benchmark's store for `database` (a fresh SQLite file, or an emptied PostgreSQL schema).
    func withStore<T: Sendable>(_ database: Database, file: String, _ body: (any GatewayStore) async throws -> T) async throws -> T {
        switch database {
        case .sqlite:
            let store = try await SQLiteGatewayStore.open(path: file, logger: logger)
            do {
                let result = try await body(store)
                try await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
        case .postgres(let url):
            return try await PostgresGatewayStore.withStore(url: url, logger: logger) { store in try await body(store) }
        }
    }

    /// Pending orders bench-<from> ..< bench-<to>, in bulk.
    func seedPending(_ store: any GatewayStore, _ range: Range<Int>, createdAt: Date = Date()) async throws {
        let far = createdAt.addingTimeInterval(86_400 * 30)
        for start in stride(from: range.lowerBound, to: range.upperBound, by: 20_000) {
            let orders = (start..<min(start + 20_000, range.upperBound)).map { i in
                GatewayOrder(
                    id: "ord_bench_\(i)", provider: "kaspi-pay", providerOrderID: "bench-\(i)", kind: .redirect, amount: Self.amount,
                    description: "Bench order", state: .pending, paymentURL: "https://pay.example/\(i)", createdAt: createdAt, nextPollAt: far)
            }
            try await store.insert(contentsOf: orders)
        }
    }

    /// Paid orders from the past (history that the hot path must not slow down on).
    func seedHistory(_ store: any GatewayStore, count: Int) async throws {
        let base = Date().addingTimeInterval(-86_400 * 365)
        var done = 0
        while done < count {
            let n = min(50_000, count - done)
            let orders = (done..<done + n).map { i in
                GatewayOrder(
                    id: "ord_old_\(i)", provider: "kaspi-pay", providerOrderID: "old-\(i)", kind: .redirect, amount: 1000 + i % 9000,
                    description: "Past order", state: .paid, transactionID: "tx-old-\(i)", createdAt: base.addingTimeInterval(Double(i) * 30))
            }
            try await store.insert(contentsOf: orders)
            done += n
            if done % 200_000 == 0 || done == count { progress("history: \(done) of \(count) orders stored") }
        }
    }

    /// Resets the PostgreSQL schema.
    func resetPostgres(_ url: String) async throws {
        try await PostgresGatewayStore.withStore(url: url, logger: logger) { store in
            try await store.client.query("DROP SCHEMA IF EXISTS public CASCADE", logger: logger)
            try await store.client.query("CREATE SCHEMA public", logger: logger)
        }
    }

    /// Counts what the webhooks changed: paid orders, paid transitions, order.paid outbox rows.
    func countEffects(_ database: Database, file: String) async throws -> (paid: Int, transitions: Int, outbox: Int) {
        let queries = [
            "SELECT count(*) AS n FROM orders WHERE state = 'paid' AND provider_order_id LIKE 'bench-%'",
            "SELECT count(*) AS n FROM order_events WHERE kind = 'transition' AND to_state = 'paid'",
            "SELECT count(*) AS n FROM outbox WHERE type = 'order.paid'",
        ]
        var counts: [Int] = []
        switch database {
        case .sqlite:
            let connection = try await SQLiteConnection.open(storage: .file(path: file), logger: logger)
            for q in queries { counts.append(try await connection.query(q, []).first?.column("n")?.integer ?? -1) }
            try await connection.close()
        case .postgres(let url):
            try await PostgresGatewayStore.withStore(url: url, logger: logger) { store in
                for q in queries {
                    for try await n in try await store.client.query(PostgresQuery(unsafeSQL: q), logger: logger).decode(Int64.self) {
                        counts.append(Int(n))
                    }
                }
            }
        }
        return (counts[0], counts[1], counts[2])
    }

    func gatewayWebhooks(database: Database) async throws {
        let total = poolTotal
        let file = out.appendingPathComponent("gateway-webhooks.sqlite").path
        removeDatabase(file)
        if case .postgres(let url) = database { try await resetPostgres(url) }
        progress("gateway on \(database.label): storing \(total) pending orders")
        try await withStore(database, file: file) { store in
            _ = try await store.migrate()
            try await seedPending(store, 0..<total)
            if let postgres = store as? PostgresGatewayStore {
                // Settle after the bulk load, as a database in service would be: statistics
                // and visibility maps current, so autovacuum does not run during the load.
                try await postgres.client.query("VACUUM ANALYZE", logger: logger)
                _ = try? await postgres.client.query("CHECKPOINT", logger: logger)
            }
            if let sqlite = store as? SQLiteGatewayStore {
                let mode = try await sqlite.journalMode()
                let synchronous = try await sqlite.synchronousSetting()
                report.note("SQLite as the gateway opens it: journal_mode=\(mode), synchronous=\(synchronous) (2 = FULL).")
            }
        }
        let connection: String
        if case .postgres(let url) = database { connection = url } else { connection = file }
        let (child, base, ready) = try await gatewayProcess(
            "gateway-\(database.label.lowercased())", database: connection, sandbox: "http://127.0.0.1:9")
        let (results, issued, acknowledged) = try await measured("webhooks-\(database.label.lowercased())", lines: webhookLines) { file, seconds in
            try await wrk.once(url: base, file: file, method: "POST", path: "/webhooks/kaspi", seconds: seconds)
        }
        let memory = child.memory()
        await child.stop()
        if case .sqlite = database {
            let synchronous = (try? String(contentsOf: child.log, encoding: .utf8))?.split(separator: "\n").first { $0.contains("synchronous=") }
            if let synchronous { report.note("The gateway's own log: \(synchronous.trimmingCharacters(in: .whitespaces))") }
        }
        let effects = try await countEffects(database, file: file)
        report.row(named("Gateway: webhook, full path, \(database.label)"), results, key: keyed("webhook-\(database.label.lowercased())"))
        report.check(named("\(database.label): orders paid"), expected: issued, found: effects.paid, acknowledged: acknowledged)
        report.check(
            named("\(database.label): paid transitions in the audit trail"), expected: issued, found: effects.transitions, acknowledged: acknowledged)
        report.check(named("\(database.label): order.paid outbox rows"), expected: issued, found: effects.outbox, acknowledged: acknowledged)
        report.process(named("gateway (kaspi gateway, \(database.label), \(total) orders)"), ready: ready, memory: memory, ours: measuringOurs)
    }

    func checkout() async throws {
        let (sandbox, sandboxBase, _) = try await sandboxProcess("sandbox-checkout")
        let file = out.appendingPathComponent("gateway-checkout.sqlite").path
        removeDatabase(file)
        let (gateway, base, _) = try await gatewayProcess("gateway-checkout", database: file, sandbox: sandboxBase)
        let (results, issued, acknowledged) = try await measured(
            "checkout",
            lines: { range in
                // Each with its own Idempotency-Key, as a merchant's retry-safe checkout sends it.
                range.map { "bench-checkout-\($0)\t" + #"{"amount":\#(Self.amount),"description":"Bench order"}"# }
            },
            send: { file, seconds in
                try await wrk.once(
                    url: base, file: file, method: "POST", path: "/v1/checkouts", seconds: seconds,
                    headers: ["Authorization: Bearer \(Self.gatewayKey)"])
            })
        let memory = gateway.memory()
        await gateway.stop()
        let inSandbox = try await sandboxOrderCount(sandboxBase)
        await sandbox.stop()
        let connection = try await SQLiteConnection.open(storage: .file(path: file), logger: logger)
        let stored =
            try await connection.query("SELECT count(*) AS n FROM orders WHERE state = 'pending' AND payment_url IS NOT NULL", []).first?.column("n")?
            .integer ?? -1
        let answers =
            try await connection.query("SELECT count(*) AS n FROM idempotency_keys WHERE state = 'done' AND status = 201", []).first?.column("n")?
            .integer ?? -1
        try await connection.close()
        report.row(named("Gateway: checkout through the gateway to the sandbox (SQLite)"), results, key: keyed("checkout"))
        report.check(named("checkout: orders pending with a payment URL"), expected: issued, found: stored, acknowledged: acknowledged)
        report.check(named("checkout: orders in the sandbox"), expected: issued, found: inSandbox, acknowledged: acknowledged)
        report.check(named("checkout: idempotent answers stored"), expected: issued, found: answers, acknowledged: acknowledged)
        report.process(named("gateway (kaspi gateway, SQLite, during checkouts)"), ready: nil, memory: memory, ours: measuringOurs)
    }

    func peer() async throws {
        let directory = root.appendingPathComponent("benchmarks/peers/python")
        guard (try? await Command.output(python, ["-c", "import fastapi, uvicorn, httpx"])) != nil else {
            report.note("Python peer skipped: \(python) lacks fastapi, uvicorn or httpx (scripts/bench installs them).")
            return
        }
        let total = poolTotal
        let database = out.appendingPathComponent("peer.sqlite").path
        _ = try await Command.output(python, [directory.appendingPathComponent("app.py").path, "seed", database, "\(total)"])
        let (sandbox, sandboxBase, _) = try await sandboxProcess("sandbox-peer")
        let port = port()
        let child = try Child(
            "peer", executable: "/usr/bin/env",
            arguments: [python, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "\(port)", "--log-level", "warning", "--no-access-log"],
            environment: [
                "KASPI_API_KEY": Self.kaspiKey, "KASPI_TRADE_POINT_ID": Self.tradePoint, "KASPI_BASE_URL": sandboxBase, "PEER_DB": database,
            ],
            workDirectory: out, currentDirectory: directory)
        let base = "http://127.0.0.1:\(port)"
        let ready = try await child.waitReady("\(base)/health", client: client)
        let webhooks = try await measured("peer-webhooks", lines: webhookLines) { file, seconds in
            try await wrk.once(url: base, file: file, method: "POST", path: "/webhooks/kaspi", seconds: seconds)
        }
        let checkouts = try await measured(
            "peer-checkout",
            lines: { range in
                range.map { #"{"cartTotal":\#(Self.amount),"orderId":"c\#($0)"}"# }
            },
            send: { file, seconds in
                try await wrk.once(url: base, file: file, method: "POST", path: "/checkout", seconds: seconds)
            })
        let memory = child.memory()
        await child.stop()
        await sandbox.stop()
        let connection = try await SQLiteConnection.open(storage: .file(path: database), logger: logger)
        let paid = try await connection.query("SELECT count(*) AS n FROM orders WHERE status = 'paid'", []).first?.column("n")?.integer ?? -1
        let created =
            try await connection.query("SELECT count(*) AS n FROM orders WHERE kaspi_order_id LIKE 'ORDER-%'", []).first?.column("n")?.integer ?? -1
        try await connection.close()
        report.row("Peer (Python, FastAPI + uvicorn + sqlite3): webhook", webhooks.results, key: "peer-webhook")
        report.row("Peer (Python, FastAPI + uvicorn + sqlite3): checkout to the sandbox", checkouts.results, key: "peer-checkout")
        report.check("peer: orders paid", expected: webhooks.issued, found: paid, acknowledged: webhooks.acknowledged)
        report.check("peer: checkout orders stored", expected: checkouts.issued, found: created, acknowledged: checkouts.acknowledged)
        report.process("peer (uvicorn, 1 worker; not a target)", ready: ready, memory: memory, ours: false)
    }

    /// Webhook latency with few and with many orders stored, at a paced load (8 connections,
    /// each waiting 5 ms before each request) so that both runs do the same work.
    func flatCost() async throws {
        let pool = 2000 * (runs + 1) + 1000
        var p50: [Int: Double] = [:]
        for stored in [10_000, flatOrders] where stored > pool {
            let file = out.appendingPathComponent("flat-\(stored).sqlite").path
            progress("flat cost: storing \(stored) orders")
            try await withStore(.sqlite, file: file) { store in
                _ = try await store.migrate()
                try await seedHistory(store, count: stored - pool)
                try await seedPending(store, 0..<pool)
            }
            let (child, base, _) = try await gatewayProcess("gateway-flat-\(stored)", database: file, sandbox: "http://127.0.0.1:9")
            let (results, issued, acknowledged) = try await measured("flat-\(stored)", warmup: 2000, perRun: 2000, seconds: 1, lines: webhookLines) {
                file, seconds in
                try await wrk.once(url: base, file: file, method: "POST", path: "/webhooks/kaspi", seconds: seconds, connections: 8, delayMs: 5)
            }
            await child.stop()
            let effects = try await countEffects(.sqlite, file: file)
            report.check("flat cost, \(stored.formatted()) orders: orders paid", expected: issued, found: effects.paid, acknowledged: acknowledged)
            report.row("Gateway: webhook, SQLite, \(stored.formatted()) orders stored, paced (8 connections)", results, key: "flat-\(stored)")
            p50[stored] = Report.median(results.map { Double($0.p50Us) })
        }
        if let small = p50[10_000], let large = p50[flatOrders] {
            report.flat(small: small, large: large, largeCount: flatOrders)
        }
    }

    /// The reconciliation claim's cost against pending and stored orders.
    func reconciliation() async throws {
        progress("reconciliation")
        var lines: [String] = []
        let cases: [(stored: String, file: String, due: Int)] = [
            ("10,000", out.appendingPathComponent("flat-10000.sqlite").path, 1000),
            ("\(flatOrders.formatted())", out.appendingPathComponent("flat-\(flatOrders).sqlite").path, 1000),
            ("\(flatOrders.formatted())", out.appendingPathComponent("flat-\(flatOrders).sqlite").path, 10_000),
        ]
        var offset = 10_000_000
        for c in cases where FileManager.default.fileExists(atPath: c.file) {
            let store = try await SQLiteGatewayStore.open(path: c.file, logger: logger)
            let past = Date().addingTimeInterval(-60)
            let orders = (offset..<offset + c.due).map { i in
                GatewayOrder(
                    id: "ord_due_\(i)", provider: "kaspi-pay", providerOrderID: "due-\(i)", kind: .redirect, amount: Self.amount,
                    state: .pending, createdAt: past, nextPollAt: past)
            }
            offset += c.due
            try await store.insert(contentsOf: orders)
            let clock = ContinuousClock()
            var claimed = 0
            let elapsed = try await clock.measure {
                while true {
                    let batch = try await store.claimOrdersToPoll(now: Date(), limit: 50, owner: "bench", lease: 600)
                    if batch.isEmpty { break }
                    claimed += batch.count
                }
            }
            try await store.close()
            lines.append(
                "| \(c.stored) | \(c.due.formatted()) | \(claimed.formatted()) | \(Report.ms(elapsed)) | \(String(format: "%.1f", Double(elapsed.components.attoseconds / 1_000_000_000 + elapsed.components.seconds * 1_000_000_000) / 1000 / Double(max(claimed, 1)))) µs |"
            )
        }
        var plan = ""
        if let file = cases.last?.file, FileManager.default.fileExists(atPath: file) {
            let connection = try await SQLiteConnection.open(storage: .file(path: file), logger: logger)
            let rows = try await connection.query(
                "EXPLAIN QUERY PLAN SELECT id FROM orders WHERE next_poll_at IS NOT NULL AND next_poll_at <= 0 AND state IN ('created', 'pending') AND (lease_until IS NULL OR lease_until < 0) ORDER BY next_poll_at LIMIT 50",
                [])
            plan = rows.compactMap { $0.column("detail")?.string }.joined(separator: "; ")
            try await connection.close()
        }
        report.reconciliation(lines, plan: plan)
    }
}
