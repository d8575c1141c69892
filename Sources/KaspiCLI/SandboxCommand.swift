import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiSandbox
import Logging
import NIOCore

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local Kaspi Pay emulator: API, payment page, QR codes, signed webhooks.",
        discussion: """
            With no trade point configured, one test trade point is created and its id and key
            are printed. Configure more with --config FILE (JSON, see docs/sandbox.md). Test
            helpers live under /sandbox/ (open it in a browser).
            """)

    @Option(help: "A JSON configuration file (default: $KASPI_SANDBOX_CONFIG).")
    var config: String?

    @Option(help: "Address to listen on.")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default 8181, or $KASPI_SANDBOX_PORT).")
    var port: Int?

    @Option(help: "Keep state in this SQLite file across restarts (default: in memory, or $KASPI_SANDBOX_DATA).")
    var data: String?

    @Option(name: .customLong("public-url"), help: "Base URL for payment links, if not the listening address.")
    var publicURL: String?

    @Option(name: .customLong("trade-point-id"), help: "The test trade point's id (with --api-key).")
    var tradePointID: String?

    @Option(name: .customLong("api-key"), help: "The test trade point's API key.")
    var apiKey: String?

    @Option(name: .customLong("webhook-url"), help: "Where the test trade point's webhooks go.")
    var webhookURL: String?

    @Option(name: .customLong("return-url-prefix"), help: "A registered return/fail URL prefix (repeatable).")
    var returnURLPrefixes: [String] = []

    @Option(name: .customLong("rate-limit"), help: "Requests a minute per trade point; 0 switches the limit off.")
    var rateLimit: Int?

    @Option(name: .customLong("qr-lifetime"), help: "Seconds an unpaid QR lives.")
    var qrLifetime: Double?

    @Option(name: .customLong("webhook-retries"), help: "Seconds between webhook retries, comma-separated, e.g. 1,2,5.")
    var webhookRetries: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await Console.run(json: false) {
            var configuration = SandboxConfiguration()
            if let path = config ?? environment["KASPI_SANDBOX_CONFIG"] {
                configuration = try SandboxConfiguration.load(file: path)
            }
            if let host { configuration.host = host }
            if let port = port ?? environment["KASPI_SANDBOX_PORT"].flatMap(Int.init) { configuration.port = port }
            if let data = data ?? environment["KASPI_SANDBOX_DATA"] { configuration.dataPath = data }
            if let publicURL { configuration.publicURL = publicURL }
            if let rateLimit { configuration.rateLimitPerMinute = rateLimit }
            if let qrLifetime { configuration.qrLifetimeSeconds = qrLifetime }
            if let webhookRetries {
                let delays = webhookRetries.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard delays.allSatisfy({ $0 != nil }) else {
                    throw CLIError.invalidInput("--webhook-retries must be comma-separated seconds, e.g. 1,2,5")
                }
                configuration.webhookRetrySeconds = delays.compactMap { $0 }
            }
            if tradePointID != nil || apiKey != nil || webhookURL != nil || !returnURLPrefixes.isEmpty {
                var point = SandboxConfiguration.defaultTradePoint()
                if let tradePointID { point.id = tradePointID }
                if let apiKey { point.apiKey = apiKey }
                point.webhookURL = webhookURL
                point.returnURLPrefixes = returnURLPrefixes
                configuration.tradePoints.removeAll { $0.id == point.id }
                configuration.tradePoints.append(point)
            }
            var logger = Logger(label: "kaspi-sandbox")
            logger.logLevel = environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            let sandbox = try await Sandbox(configuration: configuration, logger: logger)
            let points = sandbox.configuration.tradePoints
            let app = try sandbox.application { port in
                let base = "http://\(sandbox.configuration.host):\(port)"
                var lines = ["Kaspi sandbox listening on \(base)", "Helpers and webhook log: \(base)/sandbox/"]
                for point in points {
                    lines.append("Trade point \(point.id) (\(point.displayName)), API key \(point.apiKey)")
                }
                if let point = points.first {
                    lines.append("Try it: export KASPI_BASE_URL=\(base) KASPI_TRADE_POINT_ID=\(point.id) KASPI_API_KEY=\(point.apiKey)")
                }
                if sandbox.configuration.dataPath == nil { lines.append("State is in memory; use --data FILE to keep it.") }
                Console.out(lines.joined(separator: "\n"))
            }
            try await app.runService()
        }
    }
}

struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract: "Settle a sandbox order without the payment page: approved, declined or cancelled.")

    @Argument(help: "approved, declined or cancelled.")
    var outcome: String

    @Argument(help: "The order id.")
    var orderID: String

    @Option(name: .customLong("sandbox-url"), help: "The sandbox (default: $KASPI_BASE_URL, else http://127.0.0.1:8181).")
    var sandboxURL: String?

    @Option(name: .customLong("trade-point-id"), help: "The trade point, when several have this order id.")
    var tradePointID: String?

    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let action: String
            switch outcome.lowercased() {
            case "approved", "approve", "paid", "pay": action = "approve"
            case "declined", "decline": action = "decline"
            case "cancelled", "cancel", "canceled": action = "cancel"
            default: throw CLIError.invalidInput("the outcome must be approved, declined or cancelled, not \(outcome)")
            }
            var base = sandboxURL ?? ProcessInfo.processInfo.environment["KASPI_BASE_URL"] ?? "http://127.0.0.1:8181"
            while base.hasSuffix("/") { base.removeLast() }
            let id = orderID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? orderID
            var url = "\(base)/sandbox/orders/\(id)/\(action)"
            if let tradePointID { url += "?tradePointId=\(tradePointID.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? tradePointID)" }
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            let (status, body): (Int, String)
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                let buffer = try await response.body.collect(upTo: 1 << 20)
                (status, body) = (Int(response.status.code), String(buffer: buffer))
            } catch {
                throw CLIError.io("could not reach the sandbox at \(base): \(error)")
            }
            let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
            guard status == 200 else {
                throw TriggerError(code: object["code"] as? String ?? "HTTP_\(status)", message: object["message"] as? String ?? body)
            }
            if output.json {
                Console.out(body.replacingOccurrences(of: "\n", with: ""))
            } else {
                Console.out("\(orderID): \(object["status"] as? String ?? "?")")
            }
        }
    }
}

struct TriggerError: Error, CustomStringConvertible {
    var code: String
    var message: String
    var description: String { message }
}
