import AsyncHTTPClient
import Foundation
import Histogram
import Hummingbird
import KaspiEvents
import KaspiGateway
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import NIOCore
import SQLiteNIO
import Synchronization

/// The merchant's receiver of the gateway's events in the live QR benchmark: verifies each
/// delivery (KaspiEvents), and notes when each order's `order.paid` first arrived and how many
/// times.
final class EventReceiver: Sendable {
    private struct State {
        var firstPaid: [String: ContinuousClock.Instant] = [:]
        var deliveries: [String: Int] = [:]
        var refused = 0
    }
    private let state = Mutex(State())
    let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 251) }).base64EncodedString()

    /// Takes one delivery: 204 when it verifies, 400 when not.
    func take(_ body: ByteBuffer, headers: [String: String]) -> HTTPResponse.Status {
        let arrived = ContinuousClock.now
        guard let verifier = try? EventVerifier(secret: secret),
            let verified = try? verifier.verify(payload: body.readableBytesView, headers: headers)
        else {
            state.withLock { $0.refused += 1 }
            return .badRequest
        }
        guard case .orderPaid(let order) = verified.event else { return .noContent }
        state.withLock { state in
            state.deliveries[verified.id, default: 0] += 1
            if state.firstPaid[order.id] == nil { state.firstPaid[order.id] = arrived }
        }
        return .noContent
    }

    /// When each order's `order.paid` first arrived, the deliveries per event id, the refusals.
    var snapshot: (firstPaid: [String: ContinuousClock.Instant], deliveries: [String: Int], refused: Int) {
        state.withLock { ($0.firstPaid, $0.deliveries, $0.refused) }
    }

    func reset() { state.withLock { $0 = State() } }
}

extension Bench {
    /// Kaspi's real profile end to end: `kaspi gateway --profile qr` processes (the earlier
    /// build's too, with `--before`) polling `kaspi sandbox` and delivering signed events to a
    /// receiver in this process. Two figures per database: polls a second with a backlog larger
    /// than the gateway can keep up with (its capacity), and, with 10,000 orders pending at
    /// Kaspi's 5 s, the time from the sandbox marking a purchase `Processed` to the receiver
    /// holding the verified `order.paid`.
    ///
    /// With `checkout`, the QR profile's checkout too (``qrCheckout(_:)``); with `polling` false, that alone.
    func qrLive(polling: Bool = true, checkout: Bool = false) async throws {
        if checkout { try await qrCheckout() }
        guard polling else { return }
        try await withLiveSandbox("sandbox-live") { live in
            var databases: [Database] = [.sqlite]
            if let postgres { databases.append(.postgres(postgres)) }
            for database in databases {
                try await beforeAndAfter { try await qrCapacity(database, live) }
            }
            // Two gateways on one PostgreSQL database share the polling by their leases.
            if let postgres { try await qrCapacity(.postgres(postgres), live, instances: 2) }
            for database in databases {
                try await beforeAndAfter { try await qrLatency(database, live) }
            }
        }
        report.qrLive(capacity: liveCapacityLines, latency: liveLatencyLines)
    }

    /// Runs `body` with a fresh sandbox (always this build's), a device registered there over
    /// r1, and the events receiver; stops them after.
    func withLiveSandbox(_ name: String, _ body: (LiveSetting) async throws -> Void) async throws {
        progress("qr live: a sandbox and the events receiver (\(name))")
        let (sandbox, base, _) = try await sandboxProcess(name, executable: ours)
        let transport = AsyncHTTPClientTransport(maxConnections: 64)
        let receiver = EventReceiver()
        let router = Router()
        router.post("/events") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 * 1024)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            return Response(status: receiver.take(body, headers: headers))
        }
        let receiverPort = port()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: receiverPort)), logger: logger)
        let serving = Task { try await app.runService() }
        defer { serving.cancel() }
        do {
            let keyText = "test_0f8fad5b-d9cb-469f-a165-70867728950e"
            let apiKey = try APIKey(keyText)
            guard let baseURL = URL(string: base) else { throw BenchError.failed("bad sandbox URL \(base)") }
            let r1 = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
                apiKey: apiKey, configuration: .init(host: .custom(baseURL)), transport: transport, logger: logger)
            let token = try await r1.registerDevice(id: "bench-live", tradePointID: 19)
            try await body(
                LiveSetting(
                    sandbox: base, apiKey: keyText, r1: r1, token: token, receiver: receiver, events: "http://127.0.0.1:\(receiverPort)/events"))
        } catch {
            await sandbox.stop()
            try? await transport.shutdown()
            throw error
        }
        await sandbox.stop()
        try await transport.shutdown()
    }

    struct LiveSetting: Sendable {
        let sandbox: String
        let apiKey: String
        let r1: KaspiQRAPI.Client<KaspiQRAPI.R1>
        let token: KaspiQRAPI.DeviceToken
        let receiver: EventReceiver
        let events: String
    }

    /// `count` fresh purchases at the sandbox (32 created at once), by payment id.
    func purchases(_ live: LiveSetting, count: Int) async throws -> [Int64] {
        var paymentIDs: [Int64] = []
        for start in stride(from: 0, to: count, by: 32) {
            paymentIDs += try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in start..<min(start + 32, count) {
                    group.addTask { try await live.r1.createQR(device: live.token, amount: Decimal(Self.amount)).paymentID }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
        }
        return paymentIDs
    }

    /// A fresh database with the device and one pending QR order per purchase, the i-th due
    /// at `due(i)`; returns what `kaspi gateway --database` takes.
    func seedLive(_ database: Database, name: String, _ live: LiveSetting, paymentIDs: [Int64], due: (Int) -> Date) async throws -> String {
        let file = out.appendingPathComponent("\(name).sqlite").path
        removeDatabase(file)
        if case .postgres(let url) = database { try await resetPostgres(url) }
        let now = Date()
        let created = Int64(now.timeIntervalSince1970 * 1000)
        let orders = paymentIDs.enumerated().map { i, paymentID in
            GatewayOrder(
                id: "ord_live_\(i)", provider: KaspiQRProvider.providerName, providerOrderID: "kk_live_\(i)", kind: .qr, amount: Self.amount,
                state: .pending, createdAt: now, nextPollAt: due(i),
                providerState:
                    #"{"confirmationTimeout":65,"createdAt":\#(created),"device":"dev_live","kind":"qr","paymentId":\#(paymentID),"pollInterval":5,"scanTimeout":180,"tradePointId":19}"#,
                providerPaymentID: String(paymentID))
        }
        try await withStore(database, file: file) { store in
            _ = try await store.migrate()
            try await store.save(
                ProviderDevice(
                    id: "dev_live", provider: KaspiQRProvider.providerName, organizationBin: nil, tradePointID: 19, deviceID: "bench-live",
                    token: live.token.value, isDefault: true, createdAt: now))
            for start in stride(from: 0, to: orders.count, by: 5_000) {
                try await store.insert(contentsOf: Array(orders[start..<min(start + 5_000, orders.count)]))
            }
            if let postgres = store as? PostgresGatewayStore { try await postgres.client.query("VACUUM ANALYZE", logger: logger) }
        }
        if case .postgres(let url) = database { return url }
        return file
    }

    /// A `kaspi gateway --profile qr` process (ours, or the earlier build's) on `connection`,
    /// delivering its events to the receiver; returns it with its admin and public base URLs.
    /// Each process has an instance id of its own (the default is random), so that two on one
    /// database share the work by their leases.
    func liveGateway(_ name: String, connection: String, _ live: LiveSetting) async throws -> (child: Child, admin: String, base: String) {
        let port = port()
        let adminPort = self.port()
        // The earlier build must have the admin listener too (61f1adc and later): metrics are there.
        let admin = ["--admin-port", "\(adminPort)"]
        let environment = [
            "KASPI_QR_SCHEME": "r1", "KASPI_BASE_URL": live.sandbox, "KASPI_QR_API_KEY": live.apiKey, "KASPI_GATEWAY_API_KEYS": Self.gatewayKey,
            "KASPI_GATEWAY_ADMIN_PASSWORD": "bench-admin-password", "KASPI_GATEWAY_EVENTS_URL": live.events,
            "KASPI_GATEWAY_EVENTS_SECRET": live.receiver.secret, "KASPI_RATE_LIMIT": "0",
        ]
        let child = try Child(
            name, executable: kaspi, arguments: ["gateway", "--profile", "qr", "--database", connection, "--port", "\(port)"] + admin,
            environment: environment, workDirectory: out)
        _ = try await child.waitReady("http://127.0.0.1:\(port)/ready", client: client)
        return (child, "http://127.0.0.1:\(adminPort)", "http://127.0.0.1:\(port)")
    }

    /// The gateway's status polls so far, from its metrics.
    func pollsSoFar(_ admin: String) async throws -> Int {
        var request = HTTPClientRequest(url: admin + "/metrics")
        request.method = .GET
        let response = try await client.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
        return text.split(separator: "\n").filter { $0.hasPrefix("kaspi_gateway_status_polls_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.map { Int($0) }.reduce(0, +)
    }

    /// Polls a second with more orders due than one gateway can poll: its capacity; with
    /// `instances` gateways on the database, theirs together.
    func qrCapacity(_ database: Database, _ live: LiveSetting, instances: Int = 1) async throws {
        let backlog = liveBacklog * instances
        let label = named(database.label) + (instances > 1 ? ", \(instances) gateways" : "")
        progress("qr live: capacity on \(label), \(backlog.formatted()) purchases")
        let paymentIDs = try await purchases(live, count: backlog)
        let now = Date()
        let connection = try await seedLive(database, name: "qr-capacity", live, paymentIDs: paymentIDs) { _ in now.addingTimeInterval(-1) }
        var gateways: [(child: Child, admin: String, base: String)] = []
        do {
            for n in 0..<instances {
                let suffix = instances > 1 ? "-\(n + 1)-of-\(instances)" : ""
                gateways.append(
                    try await liveGateway(keyed("gateway-qr-capacity-\(database.label.lowercased())\(suffix)"), connection: connection, live))
            }
        } catch {
            for gateway in gateways { await gateway.child.stop() }
            throw error
        }
        func polls() async throws -> Int {
            var total = 0
            for gateway in gateways { total += try await pollsSoFar(gateway.admin) }
            return total
        }
        try await Task.sleep(for: .seconds(3))
        let clock = ContinuousClock()
        let first = try await polls()
        let started = clock.now
        try await Task.sleep(for: .seconds(Double(seconds)))
        let last = try await polls()
        let elapsed = clock.now - started
        let memories = gateways.map { $0.child.memory() }
        let peak = memories.map(\.peak).max() ?? 0
        for memory in memories {
            report.process("gateway (kaspi gateway --profile qr, \(label), polling at capacity)", ready: nil, memory: memory, ours: measuringOurs)
        }
        for gateway in gateways { await gateway.child.stop() }
        let rate = Double(last - first) / elapsed.seconds
        let ofBaseline = report.baselineRPS.map { String(format: "%.1f%%", rate / $0 * 100) } ?? "–"
        let saturated = rate * 5 < Double(backlog)
        liveCapacityLines.append(
            "| \(label) | \(backlog.formatted()) | \(String(format: "%.0f", rate)) | \(ofBaseline) | \(Int(rate * 5).formatted())\(saturated ? "" : " (backlog too small: at least)") | \(String(format: "%.1f", peak)) MiB |"
        )
        if last <= first { report.invalid("QR capacity (\(label)): no poll in \(seconds) s") }
    }

    /// The QR profile's checkout, `POST /v1/checkouts` through `kaspi gateway --profile qr` to
    /// the sandbox's `qr/create-link`, against the sandbox's own `qr/create-link`; every
    /// acknowledged checkout is then counted in the gateway's database and at the sandbox.
    func qrCheckout() async throws {
        // Each measurement has a sandbox of its own, fresh: a sandbox slows as purchases pile
        // up (it writes them aside), and a build measured second must not meet the first's.
        try await withLiveSandbox("sandbox-qr-link") { live in
            let links = try await measured(
                "qr-create-link",
                lines: { range in
                    range.map { #"{"DeviceToken":"\#(live.token.value)","Amount":\#(Self.amount),"ExternalId":"bench-link-\#($0)"}"# }
                },
                send: { file, seconds in
                    try await wrk.once(
                        url: live.sandbox, file: file, method: "POST", path: "/r1/v01/qr/create-link", seconds: seconds,
                        headers: ["Api-Key: \(live.apiKey)"])
                })
            report.row("Sandbox: QR link (POST /r1/v01/qr/create-link)", links.results, key: "qr-create-link")
        }
        try await beforeAndAfter {
            try await withLiveSandbox(keyed("sandbox-qr-checkout")) { live in try await qrCheckout(live) }
        }
    }

    /// The QR profile's checkout through a gateway (ours or the earlier build's) against `live`'s sandbox.
    func qrCheckout(_ live: LiveSetting) async throws {
        let connection = try await seedLive(.sqlite, name: keyed("qr-checkout"), live, paymentIDs: []) { _ in Date() }
        let before = try await sandboxQRPurchases(live)
        let (gateway, _, base) = try await liveGateway(keyed("gateway-qr-checkout"), connection: connection, live)
        let (results, issued, acknowledged) = try await measured(
            named("qr-checkout"),
            lines: { range in
                range.map { "bench-qr-checkout-\($0)\t" + #"{"amount":\#(Self.amount),"description":"Bench order"}"# }
            },
            send: { file, seconds in
                try await wrk.once(
                    url: base, file: file, method: "POST", path: "/v1/checkouts", seconds: seconds,
                    headers: ["Authorization: Bearer \(Self.gatewayKey)"])
            })
        let memory = gateway.memory()
        await gateway.stop()
        let atSandbox = try await sandboxQRPurchases(live) - before
        let db = try await SQLiteConnection.open(storage: .file(path: connection), logger: logger)
        let stored =
            try await db.query("SELECT count(*) AS n FROM orders WHERE state = 'pending' AND payment_url IS NOT NULL", []).first?
            .column("n")?.integer ?? -1
        try await db.close()
        report.row(named("Gateway: QR checkout through the gateway to the sandbox's qr/create-link (SQLite)"), results, key: keyed("qr-checkout"))
        report.check(named("QR checkout: orders pending with a payment link"), expected: issued, found: stored, acknowledged: acknowledged)
        report.check(named("QR checkout: purchases at the sandbox"), expected: issued, found: atSandbox, acknowledged: acknowledged)
        report.process(named("gateway (kaspi gateway --profile qr, SQLite, during checkouts)"), ready: nil, memory: memory, ours: measuringOurs)
    }

    /// The sandbox's memory with `count` Kaspi QR API purchases made (32 at a time over r1),
    /// the first and the last read back; every purchase counted in its stats.
    func qrSandboxMemory(count: Int) async throws {
        progress(named("qr sandbox: \(count.formatted()) purchases"))
        let (sandbox, base, _) = try await sandboxProcess(keyed("sandbox-qr-memory"))
        let transport = AsyncHTTPClientTransport(maxConnections: 64)
        do {
            let keyText = "test_0f8fad5b-d9cb-469f-a165-70867728950e"
            guard let baseURL = URL(string: base) else { throw BenchError.failed("bad sandbox URL \(base)") }
            let r1 = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
                apiKey: try APIKey(keyText), configuration: .init(host: .custom(baseURL)), transport: transport, logger: logger)
            let token = try await r1.registerDevice(id: "bench-memory", tradePointID: 19)
            let workers = 32
            let (ids, made) = try await withThrowingTaskGroup(of: ([Int64], Int).self) { group in
                for worker in 0..<workers {
                    group.addTask { [self] in
                        var (first, last): (Int64?, Int64?) = (nil, nil)
                        var made = 0
                        for _ in stride(from: worker, to: count, by: workers) {
                            let purchase = try await r1.createQR(device: token, amount: Decimal(Self.amount))
                            first = first ?? purchase.paymentID
                            last = purchase.paymentID
                            made += 1
                            if worker == 0, made % (100_000 / workers) == 0 {
                                progress("qr sandbox: \((made * workers).formatted()) of \(count.formatted()) purchases")
                            }
                        }
                        return ([first, last].compactMap { $0 }, made)
                    }
                }
                return try await group.reduce(into: ([Int64](), 0)) {
                    $0.0 += $1.0
                    $0.1 += $1.1
                }
            }
            // The oldest (long written aside, and past its scan deadline by now) and the newest, read back.
            for id in [ids.min(), ids.max()].compactMap({ $0 }) {
                let status = try await r1.status(paymentID: id)
                if status.status != .qrTokenCreated && status.status != .error {
                    report.invalid("qr sandbox: purchase \(id) reads back as \(status.status)")
                }
            }
            let stats = try await client.execute(HTTPClientRequest(url: "\(base)/sandbox/stats"), timeout: .seconds(120))
            let body = try await stats.body.collect(upTo: 1 << 20)
            let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
            let stored = (object?["qrPurchases"] as? NSNumber)?.intValue ?? -1
            let inMemory = (object?["qrPurchasesInMemory"] as? NSNumber)?.intValue ?? -1
            let memory = sandbox.memory()
            if measuringOurs {
                report.check("qr sandbox: purchases stored", expected: count, found: stored, acknowledged: made)
                report.process(
                    "sandbox (kaspi sandbox, \(stored.formatted()) QR purchases, \(inMemory.formatted()) in memory)", ready: nil, memory: memory,
                    ours: true)
                report.qrSandboxMemory(purchases: stored, memory: memory)
            } else {
                // Earlier builds count no QR purchases in their stats: the purchases made are reported.
                report.process(named("sandbox (kaspi sandbox, \(made.formatted()) QR purchases made)"), ready: nil, memory: memory, ours: false)
            }
        } catch {
            await sandbox.stop()
            try? await transport.shutdown()
            throw error
        }
        await sandbox.stop()
        try await transport.shutdown()
    }

    /// How many QR purchases the sandbox holds (`GET /sandbox/stats`).
    func sandboxQRPurchases(_ live: LiveSetting) async throws -> Int {
        let response = try await client.execute(HTTPClientRequest(url: "\(live.sandbox)/sandbox/stats"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok, let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let count = (json["qrPurchases"] as? NSNumber)?.intValue
        else { throw BenchError.failed("the sandbox's stats have no qrPurchases: \(response.status)") }
        return count
    }

    /// With 10,000 orders pending at Kaspi's 5 s, 300 purchases paid one by one at the sandbox:
    /// the time from `Processed` to the receiver holding the verified `order.paid`, each exactly
    /// once.
    func qrLatency(_ database: Database, _ live: LiveSetting) async throws {
        let pending = 10_000
        let paid = 300
        progress(named("qr live: latency on \(database.label), \(pending.formatted()) pending, \(paid) paid"))
        let paymentIDs = try await purchases(live, count: pending)
        let now = Date()
        // Due over the next 5 s, as a steady stream of checkouts would leave them.
        let connection = try await seedLive(database, name: "qr-latency", live, paymentIDs: paymentIDs) { i in
            now.addingTimeInterval(Double(i % 5_000) / 1_000)
        }
        live.receiver.reset()
        let (child, _, _) = try await liveGateway(keyed("gateway-qr-latency-\(database.label.lowercased())"), connection: connection, live)
        try await Task.sleep(for: .seconds(6))
        // Every 33rd order, one every 50 ms: Processed at the sandbox when its confirm is sent.
        var processedAt: [String: ContinuousClock.Instant] = [:]
        for k in 0..<paid {
            let i = k * (pending / paid)
            try await sandboxAct(live.sandbox, paymentID: paymentIDs[i], action: "scan")
            processedAt["ord_live_\(i)"] = .now
            try await sandboxAct(live.sandbox, paymentID: paymentIDs[i], action: "confirm")
            try await Task.sleep(for: .milliseconds(50))
        }
        // Waits for the last ones: at most 60 s after the last payment.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let arrived = live.receiver.snapshot.firstPaid
            if processedAt.keys.allSatisfy({ arrived[$0] != nil }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(2))  // any second delivery of one event
        let memory = child.memory()
        await child.stop()
        report.process(
            named("gateway (kaspi gateway --profile qr, \(database.label), 10,000 pending)"), ready: nil, memory: memory, ours: measuringOurs)
        let snapshot = live.receiver.snapshot
        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000, numberOfSignificantValueDigits: .three)
        var missing = 0
        for (order, at) in processedAt {
            guard let arrived = snapshot.firstPaid[order] else {
                missing += 1
                continue
            }
            _ = histogram.record(min(600_000, UInt64(max(0, (arrived - at).seconds * 1000))))
        }
        let doubled = snapshot.deliveries.values.filter { $0 > 1 }.count
        let unexpected = Set(snapshot.firstPaid.keys).subtracting(processedAt.keys).count
        func ms(_ quantile: Double) -> String { String(format: "%.2f s", Double(histogram.valueAtPercentile(quantile)) / 1000) }
        liveLatencyLines.append(
            "| \(named(database.label)) | \(pending.formatted()) | \(paid - missing) of \(paid) | \(ms(50)) | \(ms(90)) | \(ms(99)) | \(String(format: "%.2f s", Double(histogram.max) / 1000)) | \(doubled) | \(String(format: "%.1f", memory.peak)) MiB |"
        )
        if measuringOurs && (missing > 0 || unexpected > 0 || snapshot.refused > 0) {
            report.invalid(
                "QR latency (\(database.label)): \(missing) payments without an order.paid, \(unexpected) order.paid for unpaid orders, \(snapshot.refused) deliveries refused"
            )
        }
    }

    /// `POST /sandbox/qr/purchases/{id}/{action}`: what the payer does in Kaspi's app.
    func sandboxAct(_ sandbox: String, paymentID: Int64, action: String) async throws {
        var request = HTTPClientRequest(url: "\(sandbox)/sandbox/qr/purchases/\(paymentID)/\(action)")
        request.method = .POST
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else { throw BenchError.failed("sandbox \(action) of \(paymentID): \(response.status)") }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
