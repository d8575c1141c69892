import Logging
import Synchronization

/// A log handler that keeps every record in memory, for tests that check what is logged.
public struct InMemoryLogHandler: LogHandler {
    /// One log record, as it would be printed.
    public struct Entry: Sendable {
        /// The entry's level.
        public var level: Logger.Level
        /// The message, as logged.
        public var message: String
        /// The metadata, the handler's merged with the call's.
        public var metadata: Logger.Metadata
        /// The message and all metadata as one line.
        public var rendered: String {
            let meta = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "\(level) \(message) \(meta)"
        }
    }

    /// The shared store of a handler and its copies.
    public final class Store: Sendable {
        private let entries = Mutex<[Entry]>([])
        /// Creates an empty store.
        public init() {}
        func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
        /// Every record so far.
        public var all: [Entry] { entries.withLock { $0 } }
        /// Every record rendered as a line.
        public var lines: [String] { all.map(\.rendered) }
    }

    /// Where the entries go.
    public let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    /// Creates a handler that writes to `store`.
    public init(store: Store) { self.store = store }

    /// A logger at `trace` level that writes into a new store.
    public static func logger(label: String = "test") -> (Logger, Store) {
        let store = Store()
        var logger = Logger(label: label) { _ in InMemoryLogHandler(store: store) }
        logger.logLevel = .trace
        return (logger, store)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        store.append(Entry(level: event.level, message: "\(event.message)", metadata: merged))
    }
}
