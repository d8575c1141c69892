import Foundation

/// Where credentials read from the environment may be sent: never in the clear beyond this
/// machine, r2 and r3 only over TLS, and production credentials only to Kaspi's hosts or to a
/// host `KASPI_TRUSTED_HOST` names (comma-separated).
enum CredentialDestination {
    /// Whether `host` is this machine: `localhost`, `127.0.0.0/8` or `::1`.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    /// Whether `host` is one of Kaspi's: `kaspi.kz` or below it.
    static func isKaspi(_ host: String) -> Bool {
        let host = host.lowercased()
        return host == "kaspi.kz" || host.hasSuffix(".kaspi.kz")
    }

    /// Checks where credentials are about to go.
    ///
    /// - Parameters:
    ///   - production: a production key or certificate is involved (`KASPI_ENV=production`, or a
    ///     `prod_` key).
    ///   - requiresTLS: the credential is a client certificate, which only TLS carries.
    ///   - trusted: `KASPI_TRUSTED_HOST`'s value.
    /// - Throws: ``ConfigurationError/insecureBaseURL(_:reason:)`` or
    ///   ``ConfigurationError/untrustedHost(_:)``.
    static func check(_ url: URL, production: Bool, requiresTLS: Bool, trusted: String?) throws(ConfigurationError) {
        let host = url.host ?? ""
        let secure = url.scheme?.lowercased() == "https"
        if requiresTLS, !secure {
            throw .insecureBaseURL(
                url.absoluteString, reason: "r2 and r3 authenticate with a client certificate, which only TLS carries; use https://")
        }
        if !secure, !isLoopback(host) {
            throw .insecureBaseURL(url.absoluteString, reason: "use https://, or http:// to this machine (127.0.0.1, localhost) only")
        }
        if production, !isKaspi(host) {
            let names = (trusted ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard names.contains(host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) else { throw .untrustedHost(host) }
        }
    }
}
