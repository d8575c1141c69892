import Foundation

/// Which server a ``KaspiClient`` (the integration guide's API) talks to.
///
/// Kaspi has confirmed no host for the guide's API: ``production`` and ``test`` are the
/// guide's guesses, kept for code that names them, and configuration from the environment
/// refuses them without an explicit URL. Use ``custom(_:)`` with the server you were given
/// or a local `kaspi sandbox`. Kaspi's real partner API is ``KaspiQRAPI``.
public enum KaspiEnvironment: Sendable, Hashable, CustomStringConvertible {
    /// `https://pay.kaspi.kz`: the guide's guess, not a host Kaspi has confirmed.
    case production
    /// `https://testpay.kaspi.kz`: the guide's guess, not a host Kaspi has confirmed.
    case test
    /// Any server that follows the contract, for example a local `kaspi sandbox`.
    case custom(URL)

    /// The base URL requests are sent to; API paths such as `/api/v1/orders/create` are
    /// appended to it.
    public var baseURL: URL {
        switch self {
        // Literals that always parse; the fallback only keeps a force unwrap off this path.
        case .production: URL(string: "https://pay.kaspi.kz") ?? URL(fileURLWithPath: "/")
        case .test: URL(string: "https://testpay.kaspi.kz") ?? URL(fileURLWithPath: "/")
        case .custom(let url): url
        }
    }

    public var description: String {
        switch self {
        case .production: "production"
        case .test: "test"
        case .custom(let url): url.absoluteString
        }
    }

    /// Parses an environment name: `production` (or `prod`), `test`, or an absolute
    /// `http(s)` URL for a custom server.
    ///
    /// - Throws: ``ConfigurationError/invalidEnvironment(_:)`` for anything else.
    public init(parsing text: String) throws(ConfigurationError) {
        switch text.lowercased() {
        case "production", "prod": self = .production
        case "test", "testing": self = .test
        default:
            guard let url = try? HTTPURLValidation.validate(text) else {
                throw .invalidEnvironment(text)
            }
            self = .custom(url)
        }
    }

    /// Creates a custom environment from a base URL string.
    ///
    /// - Throws: ``ConfigurationError/invalidBaseURL(_:reason:)`` unless it is an absolute
    ///   `http` or `https` URL with a host.
    public static func custom(parsing text: String) throws(ConfigurationError) -> KaspiEnvironment {
        do {
            return .custom(try HTTPURLValidation.validate(text))
        } catch {
            throw .invalidBaseURL(text, reason: error.reason)
        }
    }
}

/// Checks that a string is an absolute http(s) URL with a host.
enum HTTPURLValidation {
    struct Failure: Error { var reason: String }

    static func validate(_ text: String) throws(Failure) -> URL {
        guard !text.isEmpty else { throw Failure(reason: "it is empty") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw Failure(reason: "it contains spaces or control characters")
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw Failure(reason: "it is not an absolute URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw Failure(reason: "its scheme is \(scheme), not http or https")
        }
        guard let host = url.host, !host.isEmpty else { throw Failure(reason: "it has no host") }
        return url
    }
}
