/// A Kaspi Pay API key: the merchant's secret.
///
/// The key never appears in `description`, `debugDescription`, `dump` output, string
/// interpolation or a reflected mirror: all of them print `APIKey(redacted)`. Read the
/// value only where it is needed, through ``revealed``.
public struct APIKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    /// Creates an API key, checking its shape.
    ///
    /// - Throws: ``ConfigurationError`` when the key is empty, longer than 512 characters,
    ///   or holds whitespace or control characters (usually a copy-paste mistake).
    public init(_ value: String) throws(ConfigurationError) {
        guard !value.isEmpty else { throw .invalidAPIKey(reason: "it is empty") }
        guard value.utf8.count <= 512 else {
            throw .invalidAPIKey(reason: "it is longer than 512 bytes")
        }
        guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw .invalidAPIKey(reason: "it contains whitespace or control characters")
        }
        self.value = value
    }

    /// The secret itself. Use it to compute a signature or an `Authorization` header, never
    /// to log or display.
    public var revealed: String { value }

    public var description: String { "APIKey(redacted)" }
    /// Redacted, as `description` is.
    public var debugDescription: String { "APIKey(redacted)" }
    /// Redacted: `dump` shows no key.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
