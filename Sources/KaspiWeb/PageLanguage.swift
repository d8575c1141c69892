import Foundation
import HTTPTypes
import Hummingbird

/// A language the pages speak: Kazakh, Russian or English.
package enum PageLanguage: String, CaseIterable, Sendable, Codable {
    case kk, ru, en

    /// The language's name in itself, for the switcher.
    package var name: String {
        switch self {
        case .kk: "Қазақша"
        case .ru: "Русский"
        case .en: "English"
        }
    }

    /// The ICU locale whose formats the pages use: Kazakhstan's.
    package var locale: Locale { Locale(identifier: "\(rawValue)_KZ") }

    /// The cookie the language switcher sets.
    package static let cookieName = "kaspikit_lang"

    /// A language from a tag such as `ru`, `ru-RU`, `kk_KZ` or `KK`; nil when none of ours.
    package init?(tag: some StringProtocol) {
        let primary = tag.prefix(while: { $0 != "-" && $0 != "_" }).lowercased()
        switch primary {
        case "kk", "kaz": self = .kk
        case "ru", "rus": self = .ru
        case "en", "eng": self = .en
        default: return nil
        }
    }

    /// The first of ours an `Accept-Language` header prefers (by `q`, then order); nil when
    /// it names none. Reads at most 32 entries of a header at most 1 KiB long.
    package init?(acceptLanguage header: String) {
        guard header.utf8.count <= 1024 else { return nil }
        var ranked: [(q: Double, index: Int, language: PageLanguage)] = []
        for (index, entry) in header.split(separator: ",", omittingEmptySubsequences: true).prefix(32).enumerated() {
            let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = parts.first, let language = PageLanguage(tag: tag) else { continue }
            var q = 1.0
            for parameter in parts.dropFirst() where parameter.lowercased().hasPrefix("q=") {
                q = Double(parameter.dropFirst(2)).flatMap { $0.isFinite ? min(max($0, 0), 1) : nil } ?? 0
            }
            if q > 0 { ranked.append((q, index, language)) }
        }
        guard let best = ranked.sorted(by: { $0.q != $1.q ? $0.q > $1.q : $0.index < $1.index }).first else { return nil }
        self = best.language
    }

    /// The language of a request: `?lang=`, then the switcher's cookie, then `preferred` (what
    /// the merchant's checkout said), then `Accept-Language`, then `fallback`.
    ///
    /// - Returns: the language, and whether the query chose it (the answer then sets the cookie).
    package static func of(
        query: String?, cookie: String?, preferred: PageLanguage? = nil, acceptLanguage: String?, fallback: PageLanguage
    ) -> (language: PageLanguage, chosen: Bool) {
        if let query, let language = PageLanguage(tag: query.prefix(16)) { return (language, true) }
        if let cookie, let language = PageLanguage(tag: cookie.prefix(16)) { return (language, false) }
        if let preferred { return (preferred, false) }
        if let acceptLanguage, let language = PageLanguage(acceptLanguage: acceptLanguage) { return (language, false) }
        return (fallback, false)
    }
}

/// One entry of a page's language switcher.
package struct LanguageLink: Sendable {
    package var code: String
    package var name: String
    package var href: String
    package var current: Bool
}

/// What a page is rendered in: its language, and where the switcher's links go.
package struct PageLocale: Sendable {
    package var language: PageLanguage
    /// The switcher's links: the same page in each language.
    package var links: [LanguageLink]
    /// Whether the request chose the language with `?lang=` (the answer remembers it).
    package var chosen: Bool

    /// A locale without a switcher.
    package init(_ language: PageLanguage) {
        self.language = language
        self.links = []
        self.chosen = false
    }

    /// The language of `request` (see ``PageLanguage/of(query:cookie:preferred:acceptLanguage:fallback:)``),
    /// and the switcher's links to the same path and query in each language.
    package init(request: Request, preferred: PageLanguage? = nil, fallback: PageLanguage) {
        let query = request.uri.queryParameters
        let (language, chosen) = PageLanguage.of(
            query: query.get("lang").map { String($0) }, cookie: request.cookies[PageLanguage.cookieName]?.value, preferred: preferred,
            acceptLanguage: request.headers[.acceptLanguage], fallback: fallback)
        self.language = language
        self.chosen = chosen
        // The switcher writes the page's own query again, with another lang.
        let kept = query.filter { $0.key != "lang" }.map { (String($0.key), String($0.value)) }
        let path = request.uri.path
        self.links = PageLanguage.allCases.map { other in
            LanguageLink(
                code: other.rawValue, name: other.name, href: path + "?" + QueryString.encode(kept + [("lang", other.rawValue)]),
                current: other == language)
        }
    }

    /// The `Set-Cookie` value that keeps a language chosen with `?lang=` for a year.
    package var cookie: String? {
        chosen ? "\(PageLanguage.cookieName)=\(language.rawValue); Path=/; Max-Age=31536000; SameSite=Lax" : nil
    }
}
