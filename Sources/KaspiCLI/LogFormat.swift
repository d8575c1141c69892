import ArgumentParser
import Foundation
import KaspiGateway
import Logging
import Synchronization

/// `--log-format`: how the long-running commands (`gateway`, `sandbox`, `demo`) write their logs
/// to standard error.
struct LogOptions: ParsableArguments {
    @Option(
        name: .customLong("log-format"),
        help: "text (the default) or json: one JSON object a line, for a log shipper (default: $KASPI_LOG_FORMAT, else text).")
    var format: String?

    /// The chosen format.
    enum Format: String {
        case text, json
    }

    /// The format from the flag, then `KASPI_LOG_FORMAT`.
    func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Format {
        let text = (format ?? environment["KASPI_LOG_FORMAT"] ?? "text").trimmingCharacters(in: .whitespaces).lowercased()
        guard let chosen = Format(rawValue: text.isEmpty ? "text" : text) else {
            throw CLIError.invalidInput("--log-format (or KASPI_LOG_FORMAT) must be text or json, not \(String(text.prefix(20)))")
        }
        return chosen
    }

    /// Sets the process's log handler once, with each request's id on the lines written
    /// while it is handled.
    func bootstrap() throws {
        let format = try resolved()
        LogBootstrap.once {
            switch format {
            case .text:
                LoggingSystem.bootstrap(
                    { label, provider in StreamLogHandler.standardError(label: label, metadataProvider: provider) },
                    metadataProvider: RequestLogContext.metadataProvider)
            case .json:
                LoggingSystem.bootstrap(
                    { label, provider in JSONLogHandler(label: label, metadataProvider: provider) },
                    metadataProvider: RequestLogContext.metadataProvider)
            }
        }
    }
}

/// swift-log allows one bootstrap a process.
enum LogBootstrap {
    private static let done = Mutex(false)

    static func once(_ body: () -> Void) {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { body() }
    }
}

/// One JSON object a line on standard error: `time` (UTC, milliseconds), `level`, `message`,
/// `logger`, `order_id` and `request_id` when known, and the line's other metadata by name.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .info

    init(label: String, metadataProvider: Logger.MetadataProvider?) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let lock = Mutex(())

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        var object: [String: Any] = [
            "time": Self.timestamp(Date()), "level": event.level.rawValue, "message": "\(event.message)", "logger": label,
        ]
        for (key, value) in merged {
            switch key {
            case "order": object["order_id"] = Self.json(value)
            default: object[key] = Self.json(value)
            }
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(#"{"level":"error","message":"a log line could not be encoded"}"#.utf8)
        Self.lock.withLock { _ in FileHandle.standardError.write(data + Data("\n".utf8)) }
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let value): value.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC") ?? .gmt))
    }
}
