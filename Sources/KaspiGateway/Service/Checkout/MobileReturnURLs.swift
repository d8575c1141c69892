import Foundation

/// The places a checkout's `mobileReturnUrl` may send the payer back to: prefixes the merchant
/// configured (`mobileReturnUrls`). A return URL must start with one of them, its scheme and
/// host compared without case; schemes that run code or read files are never allowed.
struct MobileReturnURLs: Sendable {
    /// Schemes a return URL may never have, configured or not.
    static let forbiddenSchemes: Set<String> = ["javascript", "data", "vbscript", "file", "blob", "about"]

    private let prefixes: [String]

    /// Nowhere: mobile returns are off.
    static let none = MobileReturnURLs(prefixes: [])

    private init(prefixes: [String]) { self.prefixes = prefixes }

    /// - Throws: ``GatewayConfigurationError`` for a prefix that is not an absolute URL, has a
    ///   forbidden scheme, or names a host without the path's `/` after it (which would also
    ///   allow `https://shop.example.kz.evil.example`).
    init(_ list: [String]) throws(GatewayConfigurationError) {
        var prefixes: [String] = []
        for entry in list {
            guard let normalized = Self.normalized(entry), let components = URLComponents(string: normalized), let scheme = components.scheme,
                !Self.forbiddenSchemes.contains(scheme)
            else {
                throw .invalid(
                    "mobileReturnUrls",
                    "must be absolute URL prefixes such as yourapp:// or https://shop.example.kz/app/ (\"\(entry.prefix(64))\" is not)")
            }
            if let host = components.host, !host.isEmpty, !normalized.dropFirst(scheme.count + 3).contains("/") {
                throw .invalid("mobileReturnUrls", "must end the host with a / (\"\(entry.prefix(64))\"), so that no other host starts the same way")
            }
            prefixes.append(normalized)
        }
        self.prefixes = prefixes
    }

    /// Whether `url` may be a checkout's return URL.
    func allows(_ url: String) -> Bool {
        guard let normalized = Self.normalized(url), let scheme = URLComponents(string: normalized)?.scheme,
            !Self.forbiddenSchemes.contains(scheme)
        else { return false }
        return prefixes.contains { normalized.hasPrefix($0) }
    }

    /// The URL with its scheme and authority in lower case (they compare without case); nil
    /// when it is not absolute or holds characters a URL cannot.
    static func normalized(_ text: String) -> String? {
        guard text.count <= 512, !text.contains(where: { $0.isWhitespace || $0.isNewline }),
            let components = URLComponents(string: text), let scheme = components.scheme, !scheme.isEmpty,
            let range = text.range(of: "://") ?? text.range(of: ":")
        else { return nil }
        let head = text[..<range.upperBound]
        let rest = text[range.upperBound...]
        // The authority (up to the first /, ? or #) compares without case too.
        let end = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
        return head.lowercased() + rest[..<end].lowercased() + rest[end...]
    }
}
