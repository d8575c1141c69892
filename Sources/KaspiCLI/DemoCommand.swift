import ArgumentParser
import Foundation
import KaspiDemo
import Logging

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a sandbox, a gateway and a demo shop in one process, and pay a test order in a minute.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(name: .customLong("shop-port"), help: "The demo shop's port.") var shopPort = 8383
    @Option(name: .customLong("gateway-port"), help: "The gateway's port.") var gatewayPort = 8282
    @Option(name: .customLong("sandbox-port"), help: "The sandbox's port.") var sandboxPort = 8181
    @Option(name: .customLong("data-dir"), help: "Where the gateway keeps its SQLite database.") var dataDirectory = ".kaspi-demo"

    func run() async throws {
        try await Console.run(json: false) {
            var demo = Demo()
            demo.host = host
            demo.shopPort = shopPort
            demo.gatewayPort = gatewayPort
            demo.sandboxPort = sandboxPort
            demo.dataDirectory = dataDirectory
            var logger = Logger(label: "kaspi-demo")
            logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
            try await demo.run(logger: logger) { urls in
                Console.out("""
                    KaspiKit demo is running. Press Ctrl-C to stop.

                      Shop:     \(urls.shop)        pick an item, pay on the sandbox page, see the verified result
                      Admin:    \(urls.admin)  password \(urls.adminPassword)
                      Gateway:  \(urls.gateway)/v1  (API key \(urls.gatewayAPIKey))
                      Sandbox:  \(urls.sandbox)/sandbox/   (helpers, webhook log, scenario amounts)
                    """)
            }
            Console.out("KaspiKit demo stopped.")
        }
    }
}
