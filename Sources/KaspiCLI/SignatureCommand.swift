import ArgumentParser
import Foundation
import KaspiPay

struct SignatureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signature", abstract: "Compute and verify Kaspi Pay signatures.",
        subcommands: [Compute.self, Verify.self])

    /// The key for signatures: only the API key is needed.
    struct KeyOptions: ParsableArguments {
        @Option(name: .customLong("api-key"), help: "The API key (default: $KASPI_API_KEY).")
        var apiKey: String?

        func key() throws -> APIKey {
            guard let text = apiKey ?? ProcessInfo.processInfo.environment["KASPI_API_KEY"], !text.isEmpty else {
                throw ConfigurationError.missingVariable("KASPI_API_KEY")
            }
            return try APIKey(text)
        }
    }

    struct Compute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the signature of a request or webhook.",
            discussion: "order, qr, refund: sha256(amount + orderId + apiKey); webhook: sha256(orderId + amount + apiKey).")

        @Option(help: "order, qr, refund or webhook.")
        var kind: Signature.Kind = .createOrder

        @Option(help: "Amount in whole tenge.")
        var amount: Int

        @Option(name: .customLong("order-id"), help: "The order id.")
        var orderID: String

        @OptionGroup var key: KeyOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let amount = try parseAmount(amount)
                let signature = Signature.compute(kind, amount: amount.tenge, orderID: orderID, apiKey: try key.key())
                if output.json {
                    Console.json(["kind": kind.rawValue, "signature": signature])
                } else {
                    Console.out(signature)
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a signature, or a whole webhook body with --webhook FILE (- for standard input).",
            discussion: "Exits 0 when valid, 1 when not.")

        @Option(help: "order, qr, refund or webhook.")
        var kind: Signature.Kind = .webhook

        @Option(help: "Amount in whole tenge.")
        var amount: Int?

        @Option(name: .customLong("order-id"), help: "The order id.")
        var orderID: String?

        @Option(help: "The signature to check.")
        var signature: String?

        @Option(help: "A file holding a webhook's raw body, or - for standard input.")
        var webhook: String?

        @OptionGroup var key: KeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if webhook == nil, amount == nil || orderID == nil || signature == nil {
                throw ValidationError("give --amount, --order-id and --signature, or --webhook FILE")
            }
        }

        func run() async throws {
            try await Console.run(json: output.json) {
                let apiKey = try key.key()
                if let webhook {
                    let body: Data
                    if webhook == "-" {
                        body = FileHandle.standardInput.readDataToEndOfFile()
                    } else {
                        do { body = try Data(contentsOf: URL(fileURLWithPath: webhook)) } catch {
                            throw CLIError.io("could not read \(webhook): \(error.localizedDescription)")
                        }
                    }
                    let event = try WebhookVerifier(apiKey: apiKey).verify(body: body)
                    if output.json {
                        Console.json([
                            "valid": true, "orderId": event.orderID.rawValue, "amount": event.amount.tenge,
                            "status": event.status.rawValue, "transactionId": event.transactionID,
                        ])
                    } else {
                        Console.out("valid: \(event.orderID) \(event.status) \(event.amount) tenge")
                    }
                    return
                }
                let amount = try parseAmount(amount ?? 0)
                let valid = Signature.isValid(signature ?? "", kind: kind, amount: amount.tenge, orderID: orderID ?? "", apiKey: apiKey)
                if output.json {
                    Console.json(["valid": valid, "kind": kind.rawValue])
                } else {
                    Console.out(valid ? "valid" : "invalid")
                }
                if !valid { throw ExitCode(1) }
            }
        }
    }
}

extension Signature.Kind: ExpressibleByArgument {}
