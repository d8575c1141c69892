import ArgumentParser
import Foundation
import KaspiPay

struct QRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr", abstract: "Create QR payments and read or wait for their status.",
        subcommands: [Create.self, Status.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a QR payment, save its PNG and print its token.")

        @Option(help: "Amount in whole tenge (at least 100).")
        var amount: Int

        @Option(name: .customLong("order-id"), help: "Your unique order id (default: a new one).")
        var orderID: String?

        @Option(help: "Where to write the QR code PNG.")
        var out: String?

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let orderID = try OrderID(orderID ?? "QR-" + UUID().uuidString.prefix(13).lowercased())
                let amount = try parseAmount(amount)
                let qr = try await connection.withClient { try await $0.qr.create(amount: amount, orderID: orderID) }
                if let out {
                    do {
                        try Data(qr.png).write(to: URL(fileURLWithPath: out), options: .atomic)
                    } catch {
                        throw CLIError.io("could not write \(out): \(error.localizedDescription)")
                    }
                }
                if output.json {
                    Console.json([
                        "orderId": qr.orderID.rawValue, "qrToken": qr.token, "pngBytes": qr.png.count, "file": out,
                        "recovered": qr.recovered,
                    ])
                } else {
                    Console.out("QR payment \(qr.orderID) created; token \(qr.token).")
                    Console.out(out.map { "QR code written to \($0) (\(qr.png.count) bytes)." } ?? "Use --out FILE.png to save the QR code.")
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a QR payment's status, or wait for its outcome with --wait.")

        @Argument(help: "The QR token.")
        var token: String

        @Flag(help: "Poll until the payment is final (the guide's every 3 s, 60 times).")
        var wait = false

        @Option(help: "Seconds between polls with --wait.")
        var interval: Double = 3

        @Option(name: .customLong("max-attempts"), help: "Polls in all with --wait.")
        var maxAttempts: Int = 60

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard interval.isFinite, interval >= 0, interval <= 3600 else {
                throw ValidationError("--interval must be between 0 and 3600 seconds")
            }
            guard (1...10_000).contains(maxAttempts) else {
                throw ValidationError("--max-attempts must be between 1 and 10000")
            }
        }

        func run() async throws {
            var exit: Int32 = 0
            try await Console.run(json: output.json) {
                guard wait else {
                    let status = try await connection.withClient { try await $0.qr.status(token: token) }
                    if output.json {
                        Console.json(["qrToken": token, "status": status.rawValue])
                    } else {
                        Console.out("\(token): \(status)")
                    }
                    return
                }
                let options = PollingOptions(interval: .milliseconds(Int64(interval * 1000)), maxAttempts: maxAttempts)
                let showProgress = !output.json
                let outcome = try await connection.withClient { client in
                    try await client.qr.waitForPayment(token: token, options: options) { step in
                        guard showProgress else { return }
                        let state = step.error.map { "error \($0.code), retrying" } ?? step.status?.rawValue ?? "?"
                        Console.err("waiting for payment… \(step.attempt)/\(step.maxAttempts): \(state)")
                    }
                }
                switch outcome {
                case .paid: exit = 0
                case .declined, .cancelled: exit = 3
                case .timedOut: exit = 4
                }
                if output.json {
                    Console.json(["qrToken": token, "outcome": outcome.name])
                } else {
                    switch outcome {
                    case .paid: Console.out("Paid.")
                    case .declined: Console.out("Declined.")
                    case .cancelled: Console.out("Cancelled.")
                    case .timedOut: Console.out("Still not paid after \(maxAttempts) checks; the outcome is unknown.")
                    }
                }
            }
            if exit != 0 { throw ExitCode(exit) }
        }
    }
}
