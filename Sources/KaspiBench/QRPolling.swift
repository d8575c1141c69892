import Foundation
import KaspiGateway
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient

extension Bench {
    /// The gateway on the Kaspi QR API: the cost of one poll cycle per pending order, and how many
    /// pending orders one gateway keeps polled at Kaspi's 5-second interval, on SQLite and on
    /// PostgreSQL, with and without settled history (the polling plan must not grow with it).
    func qrPolling() async throws {
        progress("qr polling: a sandbox and its purchases")
        let (sandbox, base, _) = try await sandboxProcess("sandbox-qr")
        let transport = AsyncHTTPClientTransport(maxConnections: 64)
        do {
            try await qrPolling(base: base, transport: transport)
        } catch {
            await sandbox.stop()
            try? await transport.shutdown()
            throw error
        }
        await sandbox.stop()
        try await transport.shutdown()
    }

    private func qrPolling(base: String, transport: AsyncHTTPClientTransport) async throws {
        let apiKey = try APIKey("test_0f8fad5b-d9cb-469f-a165-70867728950e")
        guard let baseURL = URL(string: base) else { throw BenchError.failed("bad sandbox URL \(base)") }
        let r1 = try KaspiQRAPI.Client<KaspiQRAPI.R1>(
            apiKey: apiKey, configuration: .init(host: .custom(baseURL)), transport: transport, logger: logger)
        let token = try await r1.registerDevice(id: "bench-gateway", tradePointID: 19)
        let pending = 2_000
        // The purchases the orders follow, at Kaspi (the sandbox), made 32 at a time.
        var paymentIDs: [Int64] = []
        for start in stride(from: 0, to: pending, by: 32) {
            let batch = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in start..<min(start + 32, pending) {
                    group.addTask { try await r1.createQR(device: token, amount: Decimal(Self.amount)).paymentID }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            paymentIDs += batch
        }
        let client = KaspiQRAPI.AnyClient.r1(r1)
        var lines: [String] = []
        var cases: [(Database, Int, String)] = [(.sqlite, 0, "SQLite"), (.sqlite, 100_000, "SQLite")]
        if let postgres { cases += [(.postgres(postgres), 0, "PostgreSQL"), (.postgres(postgres), 100_000, "PostgreSQL")] }
        for (index, (database, history, label)) in cases.enumerated() {
            progress("qr polling: \(label), \(history.formatted()) settled orders")
            if case .postgres(let url) = database { try await resetPostgres(url) }
            let file = out.appendingPathComponent("qr-polling-\(index).sqlite").path
            let result: (elapsed: Duration, polled: Int) = try await withStore(database, file: file) { store in
                _ = try await store.migrate()
                let now = Date()
                try await store.save(
                    ProviderDevice(
                        id: "dev_bench", provider: KaspiQRProvider.providerName, organizationBin: nil, tradePointID: 19, deviceID: "bench-gateway",
                        token: token.value, isDefault: true, createdAt: now))
                if history > 0 { try await seedHistory(store, count: history) }
                let due = now.addingTimeInterval(-1)
                let orders = paymentIDs.enumerated().map { i, paymentID in
                    GatewayOrder(
                        id: "ord_qr_\(i)", provider: KaspiQRProvider.providerName, providerOrderID: "kk_qr_\(i)", kind: .qr, amount: Self.amount,
                        state: .pending, createdAt: now, nextPollAt: due,
                        providerState:
                            #"{"confirmationTimeout":65,"createdAt":\#(Int64(now.timeIntervalSince1970 * 1000)),"device":"dev_bench","kind":"qr","paymentId":\#(paymentID),"pollInterval":5,"scanTimeout":86400,"tradePointId":19}"#,
                        providerPaymentID: String(paymentID))
                }
                try await store.insert(contentsOf: orders)
                var configuration = GatewayConfiguration()
                configuration.port = 0
                configuration.workBatchSize = 100
                configuration.instanceID = "bench"
                let gateway = Gateway(
                    configuration: configuration, store: store,
                    provider: KaspiQRProvider(client: client) { try await store.devices(provider: KaspiQRProvider.providerName) }, logger: logger)
                let clock = ContinuousClock()
                var polled = 0
                // One pass: every due order polled once (a longer loop would poll the first
                // ones again, 5 s later, as the worker does).
                let elapsed = try await clock.measure {
                    while polled < pending {
                        let n = try await gateway.reconcileOnce(limit: min(100, pending - polled))
                        if n == 0 { break }
                        polled += n
                    }
                }
                await gateway.shutdown()
                // Every order polled once and scheduled at Kaspi's interval: checked, not assumed.
                var rescheduled = 0
                var cursor: OrderCursor? = nil
                repeat {
                    let page = try await store.orders(OrderQuery(states: [.pending], limit: 200, after: cursor))
                    rescheduled += page.orders.filter { ($0.nextPollAt ?? .distantPast) > now && $0.pollAttempts == 1 }.count
                    cursor = page.next
                } while cursor != nil
                if rescheduled != pending {
                    report.invalid("QR polling (\(label)): \(rescheduled) of \(pending) orders were polled once and rescheduled")
                }
                return (elapsed, polled)
            }
            let seconds = Double(result.elapsed.components.seconds) + Double(result.elapsed.components.attoseconds) / 1e18
            let perPoll = seconds / Double(max(result.polled, 1))
            let capacity = Int(5 / perPoll)
            let rate = Double(result.polled) / seconds
            let ofBaseline = report.baselineRPS.map { String(format: "%.0f%%", rate / $0 * 100) } ?? "–"
            lines.append(
                "| \(label) | \(history.formatted()) | \(result.polled.formatted()) | \(Report.ms(result.elapsed)) | \(String(format: "%.0f", perPoll * 1e6)) µs | \(String(format: "%.0f", rate)) (\(ofBaseline)) | \(capacity.formatted()) |"
            )
            if result.polled != pending { report.invalid("QR polling (\(label)): \(result.polled) polls for \(pending) due orders") }
        }
        report.qrPolling(lines, pending: pending)
    }
}
