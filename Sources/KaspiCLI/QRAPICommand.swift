import ArgumentParser
import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient
import Logging
import QRCodeEncoder

/// `kaspi qr-api`: Kaspi's real partner API (the Kaspi QR API, schemes r1, r2, r3).
struct QRAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qr-api",
        abstract: "Kaspi's partner API (the Kaspi QR API, r1/r2/r3): devices, QR payments and links, status, refunds, remote invoices.",
        discussion: """
            Not to be confused with `kaspi qr`, which creates QR payments on the integration \
            guide's API. Credentials come from flags or the environment: KASPI_QR_SCHEME (r1, r2, \
            r3); KASPI_ENV (test, the default: Kaspi's test host; production) or KASPI_BASE_URL \
            (a sandbox); r1: KASPI_QR_API_KEY; r2/r3: KASPI_QR_CERT and KASPI_QR_KEY, or \
            KASPI_QR_PKCS12 and KASPI_QR_PKCS12_PASSWORD, plus KASPI_QR_CA_BUNDLE; r3: \
            KASPI_QR_ORGANIZATION_BIN; and KASPI_QR_DEVICE_TOKEN for the calls that need a device.

            Exit codes: 0 success; 1 the request failed; 2 invalid input or configuration; 3 the \
            purchase ended in Error; 4 a deadline passed.
            """,
        subcommands: [
            Ping.self, TradePoints.self, Device.self, Create.self, Status.self, Details.self, Return.self, Refund.self,
            Remote.self, TestAction.self,
        ])

    struct Ping: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the connection and the credentials (health/ping).")
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                try await connection.withClient { try await $0.ping() }
                if output.json { Console.json(["ok": true]) } else { Console.out("Kaspi QR API answers; the credentials are accepted.") }
            }
        }
    }

    struct TradePoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tradepoints", abstract: "List the organization's trade points.")
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let points = try await connection.withClient { try await $0.tradePoints() }
                if output.json {
                    struct Point: Encodable {
                        var tradePointID: Int64
                        var name: String

                        enum CodingKeys: String, CodingKey {
                            case tradePointID = "tradePointId"
                            case name
                        }
                    }
                    Console.json(encoding: points.map { Point(tradePointID: $0.id, name: $0.name) })
                } else {
                    for point in points { Console.out("\(point.id)\t\(point.name)") }
                }
            }
        }
    }

    struct Device: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register or delete a device.", subcommands: [Register.self, Delete.self])

        struct Register: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Register a device on a trade point and print its token.")
            @Option(help: "Your device id: Latin letters, digits, - and _.")
            var id: String
            @Option(name: .customLong("trade-point"), help: "The trade point id (see tradepoints).")
            var tradePoint: Int64
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try await connection.withClient { try await $0.registerDevice(id: id, tradePointID: tradePoint) }
                    if output.json {
                        Console.json(["deviceToken": token.value, "deviceId": id, "tradePointId": tradePoint])
                    } else {
                        // Standard output is only the export line: eval "$(kaspi qr-api device register …)" sets it.
                        Console.err("Device \(id) registered on trade point \(tradePoint).")
                        Console.out("export KASPI_QR_DEVICE_TOKEN=\(token.value)")
                    }
                }
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a device; its token stops working.")
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try connection.device()
                    try await connection.withClient { try await $0.deleteDevice(token) }
                    if output.json { Console.json(["deleted": true]) } else { Console.out("Device \(token) deleted.") }
                }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a QR purchase (qr/create) or a payment link (--link); save the QR image with --out.")
        @Option(help: "Amount in tenge, up to two decimals.")
        var amount: String
        @Option(name: .customLong("external-id"), help: "Your order id (default: a new one), to find a purchase whose answer was lost.")
        var externalID: String?
        @Flag(help: "Create a payment link instead of a QR.")
        var link = false
        @Option(help: "Write the QR code here (.png or .svg).")
        var out: String?
        @Flag(help: "Then wait for the outcome, following Kaspi's interval and deadlines.")
        var wait = false
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var exit: Int32 = 0
            try await Console.run(json: output.json) {
                let amount = try parseDecimalAmount(amount)
                let token = try connection.device()
                try await connection.withClient { client in
                    let paymentID: Int64
                    let content: String
                    var fields: [String: (any Encodable)?]
                    let pollable: any KaspiQRAPI.PollablePurchase
                    let expireDate: Date
                    if link {
                        let purchase = try await client.createLink(device: token, amount: amount, externalID: externalID)
                        (paymentID, content, pollable, expireDate) = (purchase.paymentID, purchase.paymentLink, purchase, purchase.expireDate)
                        fields = ["paymentId": purchase.paymentID, "paymentLink": purchase.paymentLink]
                    } else {
                        let purchase = try await client.createQR(device: token, amount: amount, externalID: externalID)
                        (paymentID, content, pollable, expireDate) = (purchase.paymentID, purchase.qrToken, purchase, purchase.expireDate)
                        fields = ["paymentId": purchase.paymentID, "qrToken": purchase.qrToken]
                    }
                    fields["expireDate"] = KaspiQRAPI.DateParser.format(expireDate)
                    fields["statusPollingInterval"] = pollable.options.statusPollingInterval
                    fields["scanTimeout"] = pollable.options.scanTimeout
                    fields["confirmationTimeout"] = pollable.options.confirmationTimeout
                    if let out { try writeQR(content, to: out) }
                    fields["file"] = out
                    if !output.json {
                        Console.out(link ? "Payment link \(paymentID): \(content)" : "QR purchase \(paymentID); QR token \(content)")
                        Console.out(out.map { "QR code written to \($0)." } ?? "Use --out FILE.png to save the QR code.")
                        // Kaspi's own hosts have no page for a QR token; a sandbox has one for each.
                        if !link, case .custom(let base) = try connection.settings().host {
                            let root = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
                            if base.scheme == "http" {
                                Console.out(
                                    "On a sandbox, pay it at \(root)/pay/\(content), or: kaspi trigger scan \(paymentID) && kaspi trigger confirm \(paymentID)"
                                )
                            } else {
                                Console.out(
                                    "On a sandbox, play the payer from its HTTP address: kaspi trigger scan \(paymentID) --sandbox-url http://HOST:PORT, then confirm"
                                )
                            }
                        }
                    }
                    if wait {
                        let outcome = try await client.waitForPayment(pollable, progress: progressPrinter(json: output.json))
                        exit = report(outcome, paymentID: paymentID, fields: &fields, json: output.json)
                    }
                    if output.json { Console.json(fields) }
                }
            }
            if exit != 0 { throw ExitCode(exit) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a purchase's status, or wait for its outcome with --wait.")
        @Argument(help: "The payment id (QrPaymentId or PaymentId).")
        var paymentID: Int64
        @Flag(help: "Ask v01 only (Status alone).")
        var v01 = false
        @Flag(help: "Poll until final or a deadline passes (never for remote invoices).")
        var wait = false
        @Option(name: .customLong("polling-interval"), help: "Seconds between polls with --wait (Kaspi's StatusPollingInterval).")
        var pollingInterval: Int = 5
        @Option(name: .customLong("scan-timeout"), help: "Seconds from creation to scan or open it, with --wait.")
        var scanTimeout: Int = 180
        @Option(name: .customLong("confirmation-timeout"), help: "Seconds from the first Wait to confirm, with --wait.")
        var confirmationTimeout: Int = 65
        @Option(name: .customLong("created-ago"), help: "Seconds since the purchase was created, with --wait.")
        var createdAgo: Int = 0
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func validate() throws {
            for (name, value) in [
                ("--polling-interval", pollingInterval), ("--scan-timeout", scanTimeout), ("--confirmation-timeout", confirmationTimeout),
            ]
            where !(1...86_400).contains(value) {
                throw ValidationError("\(name) must be between 1 and 86400 seconds")
            }
            guard (0...86_400).contains(createdAgo) else { throw ValidationError("--created-ago must be between 0 and 86400 seconds") }
        }

        func run() async throws {
            var exit: Int32 = 0
            try await Console.run(json: output.json) {
                try await connection.withClient { client in
                    var fields: [String: (any Encodable)?] = ["paymentId": paymentID]
                    if wait {
                        let purchase = PurchaseToWatch(
                            paymentID: paymentID,
                            options: .init(statusPollingInterval: pollingInterval, scanTimeout: scanTimeout, confirmationTimeout: confirmationTimeout)
                        )
                        let outcome = try await client.waitForPayment(
                            purchase, elapsedSinceCreation: .seconds(createdAgo), progress: progressPrinter(json: output.json))
                        exit = report(outcome, paymentID: paymentID, fields: &fields, json: output.json)
                    } else {
                        let details = v01 ? try await client.statusV01(paymentID: paymentID) : try await client.status(paymentID: paymentID)
                        describe(details, into: &fields)
                        if !output.json {
                            Console.out("\(paymentID): \(details.status)\(details.transactionID.map { " (transaction \($0))" } ?? "")")
                        }
                    }
                    if output.json { Console.json(fields) }
                }
            }
            if exit != 0 { throw ExitCode(exit) }
        }
    }

    struct Details: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a purchase's total and what can still be refunded (r2, r3).")
        @Argument(help: "The payment id.")
        var paymentID: Int64
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let token = try connection.device()
                let details = try await connection.withClient { client -> KaspiQRAPI.PaymentDetails in
                    switch client {
                    case .r1: throw CLIError.invalidInput("payment/details exists on r2 and r3 only")
                    case .r2(let c): return try await c.paymentDetails(paymentID: paymentID, device: token)
                    case .r3(let c): return try await c.paymentDetails(paymentID: paymentID, device: token)
                    }
                }
                if output.json {
                    Console.json([
                        "paymentId": details.paymentID, "totalAmount": details.totalAmount, "availableReturnAmount": details.availableReturnAmount,
                        "transactionDate": details.transactionDate.map { KaspiQRAPI.DateParser.format($0) },
                    ])
                } else {
                    Console.out("\(details.paymentID): total \(details.totalAmount) ₸, refundable \(details.availableReturnAmount) ₸")
                }
            }
        }
    }

    struct Return: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "r2's refund with the customer present: a return QR, its status, the customer's purchases.",
            subcommands: [CreateReturn.self, ReturnStatus.self, Operations.self])

        struct CreateReturn: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a return QR for the customer to scan.")
            @Option(name: .customLong("external-id"), help: "Your return id.")
            var externalID: String?
            @Option(help: "Write the QR code here (.png or .svg).")
            var out: String?
            @Flag(help: "Then wait until the customer scans it.")
            var wait = false
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try connection.device()
                    try await connection.withClient { client in
                        guard case .r2(let c) = client else { throw CLIError.invalidInput("return/create exists on r2 only") }
                        let returnQR = try await c.createReturn(device: token, externalID: externalID)
                        if let out { try writeQR(returnQR.qrToken, to: out) }
                        var fields: [String: (any Encodable)?] = ["returnId": returnQR.returnID, "qrToken": returnQR.qrToken, "file": out]
                        if !output.json { Console.out("Return QR \(returnQR.returnID); QR token \(returnQR.qrToken)") }
                        if wait {
                            let status = try await c.waitForCustomer(returnQR) { status in
                                if !output.json { Console.err("return \(returnQR.returnID): \(status)") }
                            }
                            fields["status"] = status.rawValue
                            if !output.json { Console.out("Return \(returnQR.returnID): \(status)") }
                        }
                        if output.json { Console.json(fields) }
                    }
                }
            }
        }

        struct ReturnStatus: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "status", abstract: "Print a return QR's status.")
            @Argument(help: "The return id (QrReturnId).")
            var returnID: Int64
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let status = try await connection.withClient { client -> KaspiQRAPI.ReturnStatus in
                        guard case .r2(let c) = client else { throw CLIError.invalidInput("return/status exists on r2 only") }
                        return try await c.returnStatus(returnID: returnID)
                    }
                    if output.json { Console.json(["returnId": returnID, "status": status.rawValue]) } else { Console.out("\(returnID): \(status)") }
                }
            }
        }

        struct Operations: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the customer's purchases once they scanned the return QR.")
            @Argument(help: "The return id (QrReturnId).")
            var returnID: Int64
            @Option(help: "How many, 1 to 10.")
            var max: Int = 10
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try connection.device()
                    let purchases = try await connection.withClient { client -> [KaspiQRAPI.ReturnablePurchase] in
                        guard case .r2(let c) = client else { throw CLIError.invalidInput("return/operations exists on r2 only") }
                        return try await c.returnOperations(device: token, returnID: returnID, maxResult: max)
                    }
                    if output.json {
                        Console.json(
                            encoding: purchases.map {
                                JSONOutput.Fields([
                                    "paymentId": $0.paymentID, "amount": $0.amount,
                                    "transactionDate": $0.transactionDate.map { KaspiQRAPI.DateParser.format($0) },
                                ])
                            })
                    } else {
                        if purchases.isEmpty { Console.out("No purchases yet: has the customer scanned the return QR?") }
                        for p in purchases {
                            Console.out("\(p.paymentID)\t\(p.amount) ₸\t\(p.transactionDate.map { KaspiQRAPI.DateParser.format($0) } ?? "")")
                        }
                    }
                }
            }
        }
    }

    struct Refund: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refund a purchase: on r2 with --return-id (the customer scanned a return QR), on r3 without the customer.")
        @Argument(help: "The payment id.")
        var paymentID: Int64
        @Option(help: "Amount in tenge, up to two decimals.")
        var amount: String
        @Option(name: .customLong("return-id"), help: "r2: the scanned return QR's id.")
        var returnID: Int64?
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let amount = try parseDecimalAmount(amount)
                let token = try connection.device()
                let refund = try await connection.withClient { client -> KaspiQRAPI.Refund in
                    switch client {
                    case .r1: throw CLIError.invalidInput("r1 has no refunds through the API: refund in the Kaspi Pay app")
                    case .r2(let c):
                        guard let returnID else { throw CLIError.invalidInput("r2 refunds need --return-id (see `kaspi qr-api return create`)") }
                        return try await c.refund(device: token, paymentID: paymentID, returnID: returnID, amount: amount)
                    case .r3(let c):
                        guard returnID == nil else { throw CLIError.invalidInput("r3 refunds without the customer: drop --return-id") }
                        return try await c.refund(device: token, paymentID: paymentID, amount: amount)
                    }
                }
                if output.json {
                    Console.json(["paymentId": paymentID, "amount": amount, "returnOperationId": refund.returnOperationID])
                } else {
                    Console.out("Refunded \(amount) ₸ of \(paymentID); operation \(refund.returnOperationID).")
                }
            }
        }
    }

    struct Remote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "r3's remote invoices: bill a phone number.", subcommands: [ClientInfo.self, CreateInvoice.self, Cancel.self])

        struct ClientInfo: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "client-info", abstract: "Show whom an invoice to this number would bill.")
            @Option(help: "The phone number, e.g. 87071234567.")
            var phone: String
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try connection.device()
                    let info = try await connection.withClient { client -> KaspiQRAPI.ClientInfo in
                        guard case .r3(let c) = client else { throw CLIError.invalidInput("remote invoices exist on r3 only") }
                        return try await c.clientInfo(phoneNumber: phone, device: token)
                    }
                    if output.json { Console.json(["clientName": info.clientName]) } else { Console.out(info.clientName) }
                }
            }
        }

        struct CreateInvoice: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "create", abstract: "Bill a phone number; payable for 24 hours.")
            @Option(help: "The phone number, e.g. 87071234567.")
            var phone: String
            @Option(help: "Amount in tenge, up to two decimals.")
            var amount: String
            @Option(help: "A comment the payer sees.")
            var comment: String?
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let amount = try parseDecimalAmount(amount)
                    let token = try connection.device()
                    let invoice = try await connection.withClient { client -> KaspiQRAPI.RemoteInvoice in
                        guard case .r3(let c) = client else { throw CLIError.invalidInput("remote invoices exist on r3 only") }
                        return try await c.createRemoteInvoice(device: token, phoneNumber: phone, amount: amount, comment: comment)
                    }
                    if output.json {
                        Console.json(["paymentId": invoice.paymentID])
                    } else {
                        Console.out(
                            "Invoice \(invoice.paymentID) sent. Read its status on request (`kaspi qr-api status \(invoice.paymentID)`), never on a timer."
                        )
                    }
                }
            }
        }

        struct Cancel: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Cancel an unpaid remote invoice.")
            @Argument(help: "The invoice's payment id.")
            var paymentID: Int64
            @OptionGroup var connection: QRAPIConnection
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await Console.run(json: output.json) {
                    let token = try connection.device()
                    let status = try await connection.withClient { client -> KaspiQRAPI.PaymentStatus in
                        guard case .r3(let c) = client else { throw CLIError.invalidInput("remote invoices exist on r3 only") }
                        return try await c.cancelRemoteInvoice(device: token, paymentID: paymentID)
                    }
                    if output.json {
                        Console.json(["paymentId": paymentID, "status": status.rawValue])
                    } else {
                        Console.out("\(paymentID): \(status)")
                    }
                }
            }
        }
    }

    struct TestAction: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test", abstract: "Play the payer on Kaspi's test host or a sandbox: scan, confirm, scanerror, confirmerror.")
        @Argument(help: "scan, confirm, scanerror or confirmerror.")
        var action: String
        @Argument(help: "The payment id.")
        var paymentID: Int64
        @OptionGroup var connection: QRAPIConnection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                guard let chosen = KaspiQRAPI.Client<KaspiQRAPI.R1>.TestAction(rawValue: action.lowercased()) else {
                    throw CLIError.invalidInput("the action must be scan, confirm, scanerror or confirmerror, not \(action)")
                }
                try await connection.withClient { client in
                    switch client {
                    case .r1(let c): try await c.simulate(chosen, paymentID: paymentID)
                    case .r2(let c): try await c.simulate(.init(rawValue: chosen.rawValue) ?? .scan, paymentID: paymentID)
                    case .r3(let c): try await c.simulate(.init(rawValue: chosen.rawValue) ?? .scan, paymentID: paymentID)
                    }
                }
                if output.json {
                    Console.json(["paymentId": paymentID, "action": chosen.rawValue])
                } else {
                    Console.out("\(paymentID): \(chosen.rawValue) done.")
                }
            }
        }
    }
}

/// A purchase known by its id and options only (`status --wait`).
struct PurchaseToWatch: KaspiQRAPI.PollablePurchase {
    var paymentID: Int64
    var options: KaspiQRAPI.BehaviorOptions
}

/// The connection flags of `kaspi qr-api`: flags first, then the environment.
/// The Kaspi QR API's scheme and credential flags: shared by `kaspi qr-api`, `kaspi gateway
/// --profile qr` and the gateway's device commands, so each spells them the same way.
struct QRCredentialOptions: ParsableArguments {
    @Option(help: "r1, r2 or r3 (default: $KASPI_QR_SCHEME).")
    var scheme: String?
    @Option(help: "r2/r3: the client certificate, PEM (default: $KASPI_QR_CERT).")
    var cert: String?
    @Option(help: "r2/r3: the client certificate's key, PEM (default: $KASPI_QR_KEY).")
    var key: String?
    @Option(help: "r2/r3: the client certificate and key as PKCS#12 (default: $KASPI_QR_PKCS12).")
    var pkcs12: String?
    @Option(name: .customLong("pkcs12-password"), help: "The PKCS#12 password (default: $KASPI_QR_PKCS12_PASSWORD).")
    var pkcs12Password: String?
    @Option(name: .customLong("ca-bundle"), help: "PEM CAs to trust for the server (default: $KASPI_QR_CA_BUNDLE).")
    var caBundle: String?
    @Option(name: .customLong("organization-bin"), help: "r3: the organization's BIN (default: $KASPI_QR_ORGANIZATION_BIN).")
    var organizationBIN: String?
    @Option(
        name: .customLong("proxy"),
        help: "An HTTP proxy Kaspi calls leave through, with CONNECT (default: $KASPI_QR_PROXY, else $HTTPS_PROXY).")
    var proxy: String?

    /// The flags given, by the variable each stands for.
    var given: [(flag: String, variable: String, value: String)] {
        let all: [(String, String, String?)] = [
            ("--scheme", "KASPI_QR_SCHEME", scheme), ("--cert", "KASPI_QR_CERT", cert), ("--key", "KASPI_QR_KEY", key),
            ("--pkcs12", "KASPI_QR_PKCS12", pkcs12), ("--pkcs12-password", "KASPI_QR_PKCS12_PASSWORD", pkcs12Password),
            ("--ca-bundle", "KASPI_QR_CA_BUNDLE", caBundle), ("--organization-bin", "KASPI_QR_ORGANIZATION_BIN", organizationBIN),
            ("--proxy", "KASPI_QR_PROXY", proxy),
        ]
        return all.compactMap { flag, variable, value in value.map { (flag, variable, $0) } }
    }

    /// The settings from these flags over `variables`, with the connection flags every profile
    /// shares (`--env`, `--base-url`, `--api-key`, `--device-token`).
    func settings(
        environment variables: [String: String], env: String?, baseURL: String?, apiKey: String?, deviceToken: String? = nil
    ) throws -> KaspiQRAPI.Settings {
        var merged = variables
        for (_, variable, value) in given { merged[variable] = value }
        if let apiKey { merged["KASPI_QR_API_KEY"] = apiKey }
        if let deviceToken { merged["KASPI_QR_DEVICE_TOKEN"] = deviceToken }
        if let env {
            merged["KASPI_ENV"] = env
            if baseURL == nil { merged["KASPI_BASE_URL"] = nil }
        }
        if let baseURL { merged["KASPI_BASE_URL"] = baseURL }
        if pkcs12 != nil, cert == nil { merged["KASPI_QR_CERT"] = nil }
        return try KaspiQRAPI.Settings(environment: merged)
    }
}

struct QRAPIConnection: ParsableArguments {
    @OptionGroup var credentials: QRCredentialOptions
    @Option(name: .customLong("env"), help: "test (Kaspi's test host), production, or a URL (default: $KASPI_ENV, else test).")
    var environment: String?
    @Option(name: .customLong("base-url"), help: "Any host root, e.g. a sandbox: https://127.0.0.1:8544 (default: $KASPI_BASE_URL).")
    var baseURL: String?
    @Option(name: .customLong("api-key"), help: "r1's Api-Key (default: $KASPI_QR_API_KEY; prefer the variable, flags show in ps).")
    var apiKey: String?
    @Option(name: .customLong("device-token"), help: "The registered device (default: $KASPI_QR_DEVICE_TOKEN).")
    var deviceToken: String?
    @Option(name: .customLong("timeout"), help: "Seconds to wait for each HTTP exchange.")
    var timeout: Double = 30
    @Flag(name: .customLong("no-retry"), help: "Send each request once, without retries.")
    var noRetry = false
    @Flag(name: .customLong("verbose"), help: "Print each request, retry and response to standard error.")
    var verbose = false

    func settings(environment variables: [String: String] = ProcessInfo.processInfo.environment) throws -> KaspiQRAPI.Settings {
        try credentials.settings(environment: variables, env: environment, baseURL: baseURL, apiKey: apiKey, deviceToken: deviceToken)
    }

    /// The device token from the flag or the environment.
    func device() throws -> KaspiQRAPI.DeviceToken {
        guard let token = try settings().deviceToken else {
            throw CLIError.invalidInput(
                "this call needs a device: pass --device-token or set KASPI_QR_DEVICE_TOKEN (see `kaspi qr-api device register`)")
        }
        return token
    }

    /// Runs `body` with a client of the configured scheme, shutting the transport down after.
    func withClient<T>(_ body: (KaspiQRAPI.AnyClient) async throws -> T) async throws -> T {
        let settings = try settings()
        guard timeout.isFinite, timeout > 0, timeout <= 600 else { throw CLIError.invalidInput("--timeout must be between 0 and 600 seconds") }
        let readTimeout = Duration.milliseconds(Int64(timeout * 1000))
        let transport: AsyncHTTPClientTransport
        if let files = settings.certificates {
            transport = try AsyncHTTPClientTransport(tls: KaspiTLSSettings(files), readTimeout: readTimeout, proxy: settings.proxy)
        } else {
            transport = AsyncHTTPClientTransport(readTimeout: readTimeout, proxy: settings.proxy)
        }
        var logger = Logger(label: "kaspi", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = verbose ? .debug : .critical
        let configuration = KaspiQRAPI.Configuration(host: settings.host, requestTimeout: readTimeout, retryPolicy: noRetry ? .none : .default)
        do {
            let client: KaspiQRAPI.AnyClient
            switch settings.scheme {
            case .r1:
                guard let apiKey = settings.apiKey else { throw ConfigurationError.missingVariable("KASPI_QR_API_KEY") }
                client = .r1(try .init(apiKey: apiKey, configuration: configuration, transport: transport, logger: logger))
            case .r2:
                client = .r2(try .init(configuration: configuration, transport: transport, logger: logger))
            case .r3:
                guard let bin = settings.organizationBin else { throw ConfigurationError.missingVariable("KASPI_QR_ORGANIZATION_BIN") }
                client = .r3(try .init(organizationBin: bin, configuration: configuration, transport: transport, logger: logger))
            }
            let result = try await body(client)
            try? await transport.shutdown()
            return result
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }
}

/// Parses a tenge amount with up to two decimals.
func parseDecimalAmount(_ text: String) throws -> Decimal {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
        let amount = Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX")), amount > 0,
        trimmed.split(separator: ".").count <= 2, (trimmed.split(separator: ".").dropFirst().first?.count ?? 0) <= 2
    else { throw CLIError.invalidInput("the amount must be positive tenge with at most two decimals, e.g. 1500 or 99.90, not \(text)") }
    return amount
}

/// Writes a QR code of `content` as PNG or SVG, by the file's extension.
func writeQR(_ content: String, to path: String) throws {
    let code: QRCode
    do { code = try QRCode(encoding: content) } catch { throw CLIError.io("could not encode the QR code: \(error)") }
    let bytes: [UInt8] = path.lowercased().hasSuffix(".svg") ? Array(code.svg().utf8) : code.png(scale: 8)
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CLIError.io("could not write \(path): \(error.localizedDescription)")
    }
}

/// A progress line on standard error (not with --json).
func progressPrinter(json: Bool) -> @Sendable (KaspiQRAPI.PollProgress) async -> Void {
    { progress in
        guard !json else { return }
        let left = progress.remaining.components.seconds
        Console.err("status \(progress.status) · \(progress.phase.rawValue) phase · \(left) s left · poll \(progress.polls)")
    }
}

func describe(_ details: KaspiQRAPI.PaymentStatusDetails, into fields: inout [String: (any Encodable)?]) {
    fields["status"] = details.status.rawValue
    fields["version"] = details.version
    fields["transactionId"] = details.transactionID
    fields["productType"] = details.productType
    fields["amount"] = details.amount
}

/// Prints a wait's outcome and returns the exit code: 0 paid, 3 Error, 4 a deadline passed.
func report(_ outcome: KaspiQRAPI.PaymentOutcome, paymentID: Int64, fields: inout [String: (any Encodable)?], json: Bool) -> Int32 {
    switch outcome {
    case .processed(let details):
        describe(details, into: &fields)
        if !json { Console.out("\(paymentID): Processed\(details.transactionID.map { " (transaction \($0))" } ?? "")") }
        return 0
    case .failed(let details):
        describe(details, into: &fields)
        if !json { Console.out("\(paymentID): Error (cancelled, declined or failed)") }
        return 3
    case .expired(let phase, let last):
        fields["status"] = last.rawValue
        fields["expired"] = phase.rawValue
        if !json { Console.out("\(paymentID): the \(phase.rawValue) deadline passed (last status \(last)); Kaspi cancels it.") }
        return 4
    }
}
