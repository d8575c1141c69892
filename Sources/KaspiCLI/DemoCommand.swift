import ArgumentParser
import Foundation
import KaspiDemo
import KaspiPay
import Logging

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a sandbox, a gateway and a demo shop in one process, and pay a test order in a minute.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(name: .customLong("shop-port"), help: "The demo shop's port.") var shopPort = 8383
    @Option(name: .customLong("gateway-port"), help: "The gateway's port.") var gatewayPort = 8282
    @Option(name: .customLong("admin-port"), help: "The gateway's dashboard and metrics port.") var adminPort = 8283
    @Option(name: .customLong("sandbox-port"), help: "The sandbox's port.") var sandboxPort = 8181
    @Option(name: .customLong("data-dir"), help: "Where the gateway keeps its SQLite database.") var dataDirectory = ".kaspi-demo"
    @Option(help: "guide (the integration guide's API, the default) or qr (Kaspi's partner API).") var profile = "guide"
    @Option(help: "With --profile qr: r1, r2 or r3 (the default: mutual TLS with certificates made on the fly, and remote invoices).") var scheme =
        "r3"
    @Option(name: .customLong("qr-port"), help: "With --profile qr on r2/r3: the sandbox's TLS port.") var qrPort = 8545

    @OptionGroup var logs: LogOptions

    func run() async throws {
        try await Console.run(json: false) {
            try logs.bootstrap()
            var demo = Demo()
            demo.host = host
            demo.shopPort = shopPort
            demo.gatewayPort = gatewayPort
            demo.adminPort = adminPort
            demo.sandboxPort = sandboxPort
            demo.dataDirectory = dataDirectory
            switch profile.lowercased() {
            case "guide", "kaspi-pay": break
            case "qr", "kaspi-qr":
                guard let chosen = KaspiQRAPI.SchemeName(parsing: scheme) else {
                    throw CLIError.invalidInput("--scheme must be r1, r2 or r3, not \(scheme)")
                }
                demo.qrScheme = chosen
                demo.qrTLSPort = qrPort
            default: throw CLIError.invalidInput("--profile must be guide or qr, not \(profile)")
            }
            let chosenScheme = demo.qrScheme
            var logger = Logger(label: "kaspi-demo")
            logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
            try await demo.run(logger: logger) { urls in
                Console.out(
                    """
                    KaspiKit demo is running. Press Ctrl-C to stop.

                      Shop:     \(urls.shop)        pick an item, pay on the sandbox page, see the verified result
                      Admin:    \(urls.admin)  password \(urls.adminPassword)
                      Gateway:  \(urls.gateway)/v1  (API key \(urls.gatewayAPIKey))
                      Sandbox:  \(urls.sandbox)/sandbox/   (helpers, webhook log, scenario amounts)
                      Profile:  \(chosenScheme.map { "Kaspi's partner API (the Kaspi QR API), \($0)" } ?? "the integration guide's API")
                    """)
                if urls.exposed {
                    Console.err(
                        """

                        WARNING: the demo listens beyond this machine (--host \(host)): anyone who can reach it can open
                        the dashboard and the API, and the sandbox's test credentials are public. The password and
                        API key above were made for this run. It is a demo, not a gateway: for real payments run
                        `kaspi gateway` behind TLS (docs/gateway.md).
                        """)
                }
            }
            Console.out("KaspiKit demo stopped.")
        }
    }
}
