import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import KaspiPay
import KaspiSandbox
import Logging
import NIOCore

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local Kaspi Pay emulator: API, payment page, QR codes, signed webhooks.",
        discussion: """
            With no trade point configured, one test trade point is created and its id and key \
            are printed. Configure more with --config FILE (JSON, see docs/sandbox.md). Test \
            helpers live under /sandbox/ (open it in a browser).

            The Kaspi QR API (kaspi qr-api) is served too: r1 on the same port; r1, r2 and r3 \
            on TLS ports (--qr-tls-port, e.g. 8543 8544 8545 like Kaspi's test host) with \
            client certificates from --qr-certs DIR (made there on first start, or with \
            `kaspi sandbox certs`). See docs/kaspi-qr.md.
            """,
        subcommands: [Serve.self, CertsCommand.self],
        defaultSubcommand: Serve.self)
}

extension SandboxCommand {
    /// `kaspi sandbox [serve]`: its flags live here, not on the parent, so that a subcommand's
    /// own flag of the same name (`certs --host`) reaches the subcommand.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the sandbox (the default).")

        @Option(help: "A JSON configuration file (default: $KASPI_SANDBOX_CONFIG).")
        var config: String?

        @Option(help: "Address to listen on.")
        var host: String?

        @Option(help: "Port to listen on; 0 picks a free one (default 8181, or $KASPI_SANDBOX_PORT).")
        var port: Int?

        @Option(help: "Keep state in this SQLite file across restarts (default: a throwaway file, or $KASPI_SANDBOX_DATA).")
        var data: String?

        @Option(name: .customLong("memory-orders"), help: "Orders kept in memory at most; the others are read back from SQLite (default 5000).")
        var memoryOrders: Int?

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

        @Option(name: .customLong("qr-tls-port"), help: "A TLS port for the Kaspi QR API (repeatable; 0 picks a free one).")
        var qrTLSPorts: [Int] = []

        @Option(
            name: .customLong("qr-certs"), help: "The Kaspi QR API's certificates directory (default: $KASPI_SANDBOX_QR_CERTS; made on first start).")
        var qrCertificates: String?

        @Flag(
            name: .customLong("qr-verify-client-certificates"),
            help: "Refuse foreign or expired client certificates in the TLS handshake, as a TLS front does (default: accept, answer -10000).")
        var verifyClientCertificates = false

        @Option(name: .customLong("qr-link-base"), help: "Base of QR API payment links, e.g. https://pay.kaspi.kz (default: this sandbox).")
        var qrLinkBase: String?

        @OptionGroup var logs: LogOptions

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            try await Console.run(json: false) {
                try logs.bootstrap()
                var configuration = SandboxConfiguration()
                if let path = config ?? environment["KASPI_SANDBOX_CONFIG"] {
                    configuration = try SandboxConfiguration.load(file: path)
                }
                if let host { configuration.host = host }
                if let port = port ?? environment["KASPI_SANDBOX_PORT"].flatMap(Int.init) { configuration.port = port }
                if let data = data ?? environment["KASPI_SANDBOX_DATA"] { configuration.dataPath = data }
                if let memoryOrders { configuration.memoryOrderLimit = memoryOrders }
                if let publicURL { configuration.publicURL = publicURL }
                if let rateLimit { configuration.rateLimitPerMinute = rateLimit }
                if let qrLifetime { configuration.qrLifetimeSeconds = qrLifetime }
                if !qrTLSPorts.isEmpty { configuration.qrAPI.tlsPorts = qrTLSPorts }
                if let directory = qrCertificates ?? environment["KASPI_SANDBOX_QR_CERTS"] { configuration.qrAPI.certificatesDirectory = directory }
                if !configuration.qrAPI.tlsPorts.isEmpty, configuration.qrAPI.certificatesDirectory == nil {
                    configuration.qrAPI.certificatesDirectory = "kaspi-sandbox-certs"
                }
                if let qrLinkBase { configuration.qrAPI.linkBase = qrLinkBase }
                if verifyClientCertificates { configuration.qrAPI.verifyClientCertificates = true }
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
                    if let org = sandbox.configuration.qrAPI.organizations.first {
                        lines.append("Kaspi QR API: r1 at \(base)/r1/v01 with Api-Key \(org.apiKey) (organization \(org.bin))")
                    }
                    if let directory = sandbox.configuration.qrAPI.certificatesDirectory, !sandbox.configuration.qrAPI.tlsPorts.isEmpty {
                        lines.append("Kaspi QR API over TLS (r1, r2, r3): client certificates and CA in \(directory)")
                    }
                    if sandbox.configuration.dataPath == nil { lines.append("State is in memory; use --data FILE to keep it.") }
                    Console.out(lines.joined(separator: "\n"))
                } onQRTLSServerRunning: { port in
                    Console.out("Kaspi QR API over TLS (r1, r2, r3) on https://\(sandbox.configuration.host):\(port)")
                }
                try await app.runService()
            }
        }
    }
}

/// `kaspi sandbox certs`: the CA, server and client certificates, as Kaspi's cert.request flow hands them out.
struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Write a CA, a server certificate and a client certificate (PEM and PKCS#12) for the sandbox's Kaspi QR API.")

    @Option(help: "Where to write them.")
    var dir: String = "kaspi-sandbox-certs"

    @Option(name: .customLong("organization"), help: "A BIN the client certificate may act for (repeatable; default: the sandbox's organizations).")
    var organizations: [String] = []

    @Option(
        name: .customLong("host"),
        help: "A name or IP the server certificate is valid for (repeatable; default: localhost, 127.0.0.1, ::1, mtokentest.kaspi.kz).")
    var hosts: [String] = []

    @Option(help: "The PKCS#12 password (default: a random one, written to client.p12.password).")
    var password: String?

    @Flag(help: "Replace certificates already in the directory.")
    var force = false

    @Option(
        name: .customLong("client-days"),
        help: "Days the client certificate stays valid, 1 to 3650 (default 1825); a short one tests the gateway's expiry warnings.")
    var clientDays: Int = 1825

    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let bins = organizations.isEmpty ? SandboxQRAPIConfiguration.defaultOrganizations.map(\.bin) : organizations
            for bin in bins where (try? KaspiQRAPI.OrganizationBIN(bin)) == nil {
                throw CLIError.invalidInput("--organization \(bin) is not a 12-digit BIN")
            }
            guard (1...3650).contains(clientDays) else { throw CLIError.invalidInput("--client-days must be 1 to 3650") }
            let validity = TimeInterval(clientDays) * 86_400
            let paths = SandboxCertificates.Paths(directory: dir)
            if FileManager.default.fileExists(atPath: paths.caCertificate), !force {
                throw CLIError.invalidInput("\(dir) already holds certificates: pass --force to replace them")
            }
            do {
                if hosts.isEmpty {
                    try SandboxCertificates.generate(in: dir, organizations: bins, password: password, clientValidity: validity)
                } else {
                    try SandboxCertificates.generate(in: dir, organizations: bins, hosts: hosts, password: password, clientValidity: validity)
                }
            } catch {
                throw CLIError.io("could not write the certificates to \(dir): \(error)")
            }
            if output.json {
                Console.json([
                    "directory": paths.directory, "caCertificate": paths.caCertificate, "serverCertificate": paths.serverCertificate,
                    "clientCertificate": paths.clientCertificate, "clientKey": paths.clientKey, "clientPkcs12": paths.clientPKCS12,
                    "clientPkcs12Password": paths.clientPKCS12Password, "organizations": bins,
                ])
            } else {
                Console.out(
                    """
                    Certificates written to \(paths.directory) for \(bins.joined(separator: ", ")).
                    Client: export KASPI_QR_CERT=\(paths.clientCertificate) KASPI_QR_KEY=\(paths.clientKey) KASPI_QR_CA_BUNDLE=\(paths.caCertificate)
                    or:     export KASPI_QR_PKCS12=\(paths.clientPKCS12) KASPI_QR_PKCS12_PASSWORD=$(cat \(paths.clientPKCS12Password))
                    Server: kaspi sandbox --qr-certs \(paths.directory) --qr-tls-port 8543 --qr-tls-port 8544 --qr-tls-port 8545
                    """)
            }
        }
    }
}

struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract:
            "Settle a sandbox order without the payment page: approved, declined or cancelled; or play the payer on a Kaspi QR API purchase: scan, confirm, confirm-loan, scanerror, confirmerror."
    )

    @Argument(help: "approved, declined or cancelled (an order); scan, confirm, confirm-loan, scanerror or confirmerror (a QR API purchase).")
    var outcome: String

    @Argument(help: "The order id, or the QR API purchase's payment id.")
    var orderID: String

    @Option(name: .customLong("sandbox-url"), help: "The sandbox (default: $KASPI_BASE_URL, else http://127.0.0.1:8181).")
    var sandboxURL: String?

    @Option(name: .customLong("trade-point-id"), help: "The trade point, when several have this order id.")
    var tradePointID: String?

    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await Console.run(json: output.json) {
            let action: String
            var qrAction: SandboxQRAction? = nil
            switch outcome.lowercased() {
            case "approved", "approve", "paid", "pay": action = "approve"
            case "declined", "decline": action = "decline"
            case "cancelled", "cancel", "canceled": action = "cancel"
            default:
                guard let chosen = SandboxQRAction(rawValue: outcome.lowercased()) else {
                    throw CLIError.invalidInput(
                        "the outcome must be approved, declined or cancelled (an order), or scan, confirm, confirm-loan, scanerror or confirmerror (a QR API purchase), not \(outcome)"
                    )
                }
                guard Int64(orderID) != nil else {
                    throw CLIError.invalidInput("a QR API purchase is named by its numeric payment id, not \(orderID)")
                }
                qrAction = chosen
                action = chosen.rawValue
            }
            var base = sandboxURL ?? ProcessInfo.processInfo.environment["KASPI_BASE_URL"] ?? "http://127.0.0.1:8181"
            while base.hasSuffix("/") { base.removeLast() }
            let id = orderID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? orderID
            var url = qrAction == nil ? "\(base)/sandbox/orders/\(id)/\(action)" : "\(base)/sandbox/qr/purchases/\(id)/\(action)"
            if let tradePointID {
                url += "?tradePointId=\(tradePointID.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? tradePointID)"
            }
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
