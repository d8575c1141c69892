import ArgumentParser
import Foundation
import KaspiGateway
import KaspiGatewayClient
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiSandbox
import KaspiSupport
import Logging

/// Where the credentials and server come from: flags first, then the environment.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("trade-point-id"), help: "The trade point id (default: $KASPI_TRADE_POINT_ID).")
    var tradePointID: String?

    @Option(name: .customLong("api-key"), help: "The API key (default: $KASPI_API_KEY; prefer the variable, flags show in ps).")
    var apiKey: String?

    @Option(
        name: .customLong("env"),
        help: "A base URL (default: $KASPI_ENV). The guide's API has no confirmed host, so production and test are refused: use --base-url.")
    var environment: String?

    @Option(
        name: .customLong("base-url"),
        help: "Base URL of a server that follows the guide's contract, e.g. a sandbox (default: $KASPI_BASE_URL; required).")
    var baseURL: String?

    @Option(name: .customLong("timeout"), help: "Seconds to wait for each HTTP exchange.")
    var timeout: Double = 30

    @Flag(name: .customLong("no-retry"), help: "Send each request once, without retries.")
    var noRetry = false

    @Flag(name: .customLong("verbose"), help: "Print each request, retry and response to standard error.")
    var verbose = false

    /// The configuration from flags and environment.
    func configuration(environment variables: [String: String] = ProcessInfo.processInfo.environment) throws -> KaspiConfiguration {
        var merged = variables
        if let tradePointID { merged["KASPI_TRADE_POINT_ID"] = tradePointID }
        if let apiKey { merged["KASPI_API_KEY"] = apiKey }
        if let environment {
            merged["KASPI_ENV"] = environment
            if baseURL == nil { merged["KASPI_BASE_URL"] = nil }
        }
        if let baseURL {
            merged["KASPI_BASE_URL"] = baseURL
            if environment == nil { merged["KASPI_ENV"] = nil }
        }
        guard timeout.isFinite, timeout > 0, timeout <= 600 else {
            throw CLIError.invalidInput("--timeout must be between 0 and 600 seconds")
        }
        var configuration = try KaspiConfiguration(environment: merged)
        configuration.requestTimeout = .milliseconds(Int64(timeout * 1000))
        if noRetry { configuration.retryPolicy = .none }
        return configuration
    }

    /// Runs `body` with a client over AsyncHTTPClient, shutting the transport down after.
    func withClient<T>(_ body: (KaspiClient) async throws -> T) async throws -> T {
        let configuration = try configuration()
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(10), readTimeout: configuration.requestTimeout)
        // Requests and retries are logged to standard error only when asked for.
        var logger = Logger(label: "kaspi", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = verbose ? .debug : .critical
        let client = KaspiClient(configuration: configuration, transport: transport, logger: logger)
        do {
            let result = try await body(client)
            try? await transport.shutdown()
            return result
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }
}

/// Output format.
struct OutputOptions: ParsableArguments {
    @Flag(name: .customLong("json"), help: "Print machine-readable JSON.")
    var json = false
}

/// Errors of the CLI itself.
enum CLIError: Error, CustomStringConvertible {
    case invalidInput(String)
    case io(String)

    var code: String {
        switch self {
        case .invalidInput: "INVALID_INPUT"
        case .io: "IO_ERROR"
        }
    }

    var description: String {
        switch self {
        case .invalidInput(let message): message
        case .io(let message): message
        }
    }
}

/// Printing, and turning errors into messages and exit codes.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Prints a JSON object to standard output (keys sorted; a nil value is `null`).
    static func json(_ fields: [String: (any Encodable)?]) {
        out(JSONOutput.text(JSONOutput.Fields(fields)))
    }

    /// Prints any encodable value as JSON to standard output.
    static func json(encoding value: some Encodable) {
        out(JSONOutput.text(value))
    }

    /// Runs a command body, reporting errors on standard error (or as JSON) with an exit code.
    static func run(json: Bool, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch {
            let (code, message, exit) = describe(error)
            if json {
                struct Failure: Encodable {
                    struct Detail: Encodable { var code, message: String }
                    var error: Detail
                }
                err(JSONOutput.text(Failure(error: .init(code: code, message: message))))
            } else {
                err("error: \(code): \(message)")
            }
            throw ExitCode(exit)
        }
    }

    static func describe(_ error: any Error) -> (code: String, message: String, exit: Int32) {
        switch error {
        case let error as KaspiError:
            let input: Set<String> = [
                "NEGATIVE_AMOUNT", "AMOUNT_BELOW_MINIMUM", "ZERO_REFUND", "INVALID_ORDER_ID", "INVALID_URL",
                "DESCRIPTION_TOO_LONG", "INVALID_QR_TOKEN", "INVALID_TRANSACTION_ID",
            ]
            let message = String(error.description.drop(while: { $0 != ":" }).dropFirst(2))
            return (error.code, message, input.contains(error.code) ? 2 : 1)
        case let error as ConfigurationError:
            return (error.code, error.description, 2)
        case let error as KaspiQRSetup.DeviceError:
            return (error.code, error.message, 2)
        case let error as KaspiQRAPI.APIError:
            if case .invalidRequest(let reason) = error { return (error.code, reason, 2) }
            if case .tlsRefused = error { return (error.code, error.description, 2) }
            return (error.code, error.description, 1)
        case let error as CLIError:
            return (error.code, error.description, 2)
        case let error as TriggerError:
            return (error.code, error.message, 1)
        case let error as GatewayConfigurationError:
            return (error.code, String(error.description.drop(while: { $0 != ":" }).dropFirst(2)), 2)
        case let error as SQLiteBackup.Failure:
            return (error.code, error.message, error.code == "BACKUP_FAILED" ? 1 : 2)
        case let error as StoreError:
            return (error.code, String(error.description.drop(while: { $0 != ":" }).dropFirst(2)), 1)
        case let error as SandboxConfigurationError:
            return (error.code, String(error.description.drop(while: { $0 != ":" }).dropFirst(2)), 2)
        case let error as GatewayClientError:
            if case .refused(_, let code, let message) = error { return (code, message, code == "INVALID_REQUEST" ? 2 : 1) }
            return ("GATEWAY_UNREACHABLE", error.description, 1)
        case let error as WebhookVerificationError:
            return (error.code, String(error.description.drop(while: { $0 != ":" }).dropFirst(2)), 1)
        default:
            return ("ERROR", String(describing: error), 1)
        }
    }
}

/// The CLI's JSON output, through `JSONEncoder`: keys sorted, slashes unescaped.
enum JSONOutput {
    /// `value` as JSON text.
    static func text(_ value: some Encodable) -> String {
        (try? CanonicalJSON.text(value)) ?? "{}"
    }

    /// A JSON object from named values of any encodable type.
    struct Fields: Encodable {
        let fields: [String: (any Encodable)?]
        init(_ fields: [String: (any Encodable)?]) { self.fields = fields }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (name, value) in fields {
                if let value {
                    try container.encode(value, forKey: Key(stringValue: name))
                } else {
                    try container.encodeNil(forKey: Key(stringValue: name))
                }
            }
        }
    }
}

/// Parses an amount flag.
func parseAmount(_ value: Int) throws -> Amount {
    try Amount(tenge: value)
}
