import Foundation

/// Kaspi's partner API, the **Kaspi QR API** ("Public QR API"): the API Kaspi Bank gives its
/// QR partners, in three schemes.
///
/// Not to be confused with the QR-code *encoder* (the `QRCodeEncoder` module), which only
/// draws codes, nor with the integration guide's API (``KaspiClient``).
///
/// | scheme | authentication | refunds | remote invoices |
/// |---|---|---|---|
/// | ``R1`` | `Api-Key` header | none through the API | no |
/// | ``R2`` | mutual TLS | with the customer present (return QR) | no |
/// | ``R3`` | mutual TLS, `OrganizationBin` per call | without the customer | yes |
///
/// Start with ``Client``.
public enum KaspiQRAPI {}

/// One of the three schemes of the Kaspi QR API; the type parameter of
/// ``KaspiQRAPI/Client``. What a scheme does not offer is not callable on its client.
public protocol KaspiQRAPIScheme: Sendable {
    /// The path segment: `r1`, `r2` or `r3`.
    static var pathSegment: String { get }
    /// The test host's port for the scheme (8543, 8544, 8545).
    static var testPort: Int { get }
    /// The production host, when one is known.
    static var productionHost: String? { get }
}

/// A scheme with `payment/details` (r2 and r3).
public protocol KaspiQRAPIDetailsScheme: KaspiQRAPIScheme {}

extension KaspiQRAPI {
    /// The basic scheme ("облегчённая"): the `Api-Key` header; no refunds through the API.
    public enum R1: KaspiQRAPIScheme {
        public static let pathSegment = "r1"
        public static let testPort = 8543
        public static let productionHost: String? = "qrapi-key.kaspi.kz"
    }

    /// The standard scheme ("стандартная"): mutual TLS; refunds with the customer present.
    public enum R2: KaspiQRAPIDetailsScheme {
        public static let pathSegment = "r2"
        public static let testPort = 8544
        /// Kaspi publishes no r2 production host: it comes in the bank's e-mail.
        public static let productionHost: String? = nil
    }

    /// The enhanced scheme ("усиленная безопасность"): mutual TLS from an allow-listed IP,
    /// `OrganizationBin` on each call, refunds without the customer, remote invoices.
    public enum R3: KaspiQRAPIDetailsScheme {
        public static let pathSegment = "r3"
        public static let testPort = 8545
        public static let productionHost: String? = "qrapi-cert-ip.kaspi.kz"
    }

    /// The scheme as a value, for configuration and the CLI.
    public enum SchemeName: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case r1, r2, r3

        /// Parses `r1`, `r2` or `r3` (any case; `1`, `2`, `3` too).
        public init?(parsing text: String) {
            let lowered = text.trimmingCharacters(in: .whitespaces).lowercased()
            switch lowered {
            case "r1", "1", "basic": self = .r1
            case "r2", "2", "standard": self = .r2
            case "r3", "3", "enhanced": self = .r3
            default: return nil
            }
        }

        public var description: String { rawValue }

        /// The test host's port.
        public var testPort: Int {
            switch self {
            case .r1: R1.testPort
            case .r2: R2.testPort
            case .r3: R3.testPort
            }
        }

        /// The production host, when one is known.
        public var productionHost: String? {
            switch self {
            case .r1: R1.productionHost
            case .r2: R2.productionHost
            case .r3: R3.productionHost
            }
        }
    }

    /// Which server a client talks to.
    public enum Host: Sendable, Hashable, CustomStringConvertible {
        /// Kaspi's test host, `https://mtokentest.kaspi.kz` on the scheme's port (8543-8545).
        case test
        /// Kaspi's production host: `qrapi-key.kaspi.kz` for r1, `qrapi-cert-ip.kaspi.kz` for r3.
        /// Kaspi publishes none for r2: use ``custom(_:)`` with the address from the bank.
        case production
        /// Any server: a host root such as `https://127.0.0.1:8544` (a local `kaspi sandbox`),
        /// to which `/{r1|r2|r3}/{v01|v02}/…` is appended.
        case custom(URL)

        /// Parses `test`, `production` (or `prod`), or an absolute http(s) URL.
        ///
        /// - Throws: ``ConfigurationError/invalidEnvironment(_:)`` for anything else.
        public init(parsing text: String) throws(ConfigurationError) {
            switch text.lowercased() {
            case "production", "prod": self = .production
            case "test", "testing": self = .test
            default:
                guard let url = try? HTTPURLValidation.validate(text) else { throw .invalidEnvironment(text) }
                self = .custom(url)
            }
        }

        /// The host root for a scheme: scheme, host, port and any base path; no `/rN/…`.
        ///
        /// - Throws: ``ConfigurationError/unknownProductionHost(_:)`` for r2 in production.
        public func root(for scheme: SchemeName) throws(ConfigurationError) -> URL {
            switch self {
            case .test:
                return URL(string: "https://mtokentest.kaspi.kz:\(scheme.testPort)") ?? URL(fileURLWithPath: "/")
            case .production:
                guard let host = scheme.productionHost, let url = URL(string: "https://\(host)") else {
                    throw .unknownProductionHost(scheme.rawValue)
                }
                return url
            case .custom(let url):
                return url
            }
        }

        public var description: String {
            switch self {
            case .test: "test"
            case .production: "production"
            case .custom(let url): url.absoluteString
            }
        }
    }

    /// Which `payment/status` version a client asks.
    public enum StatusVersion: String, Sendable, Hashable {
        /// v02 (Status plus transaction, product and store fields), falling back to v01 for
        /// good when the server answers v02 with HTTP 404.
        case v02WithFallback
        /// v01 only (`Status` alone), as the guide v3.9 documents it.
        case v01
    }
}
