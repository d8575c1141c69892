import Foundation
import Mustache

/// A product's words in each page language: `messages/<language>.json` beside its templates,
/// one flat object of keys (`[a-z0-9_]`) to text. A text may name the page's values the
/// Mustache way (`Оплатить {{amount}}`), which are escaped as everywhere else.
///
/// Templates write a message as `{{#t}}key{{/t}}`; Swift code asks ``text(_:_:_:)``.
package struct MessageCatalog: Sendable {
    /// Texts by language, then key.
    package let messages: [PageLanguage: [String: String]]

    /// Why a catalog could not be loaded.
    package struct LoadError: Error, CustomStringConvertible {
        package let message: String
        package var description: String { "PAGES_UNAVAILABLE: \(message)" }
    }

    /// An empty catalog (a product without words of its own).
    package init() { messages = [:] }

    package init(messages: [PageLanguage: [String: String]]) { self.messages = messages }

    /// Reads `<folder>/<language>.json` for every language.
    package init(folder: String) throws(LoadError) {
        var messages: [PageLanguage: [String: String]] = [:]
        for language in PageLanguage.allCases {
            let path = folder + "/\(language.rawValue).json"
            guard let data = FileManager.default.contents(atPath: path) else { throw LoadError(message: "\(path) is missing.") }
            guard let table = try? JSONDecoder().decode([String: String].self, from: data) else {
                throw LoadError(message: "\(path) is not a JSON object of strings.")
            }
            for (key, text) in table {
                guard (try? MustacheTemplate(string: text)) != nil else { throw LoadError(message: "\(path): \(key) is not a valid template.") }
            }
            messages[language] = table
        }
        self.messages = messages
    }

    /// The raw text of `key` in `language`, falling back to English, then to the key itself
    /// (a test keeps every key in every language).
    package func raw(_ key: String, _ language: PageLanguage) -> String {
        messages[language]?[key] ?? messages[.en]?[key] ?? key
    }

    /// The text of `key` in `language`, with `values` put in for its `{{name}}`s, unescaped:
    /// the page that shows it escapes it.
    package func text(_ key: String, _ language: PageLanguage, _ values: [String: String] = [:]) -> String {
        // One pass, so that a value holding `{{…}}` is never read as a placeholder.
        var rest = Substring(raw(key, language))
        var text = ""
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            text += rest[..<open.lowerBound]
            let name = String(rest[open.upperBound..<close.lowerBound])
            text += values[name] ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return text + rest
    }

    /// The `t` lambda templates call: `{{#t}}key{{/t}}`.
    ///
    /// A text with `{{value}}`s is handed back as a String, which Mustache renders against the
    /// innermost section's object. A text without any is handed back as it is (``Words``): so
    /// it shows even where that object renders nothing, as an empty list does inside
    /// `{{^list}}…{{/list}}`.
    func lambda(_ language: PageLanguage) -> MustacheLambda {
        MustacheLambda { key in
            let text = raw(key.trimmingCharacters(in: .whitespacesAndNewlines), language)
            return text.contains("{{") ? text : Words(text: text)
        }
    }

    /// A catalog's text without values, written into the page as it is.
    struct Words: CustomStringConvertible {
        let text: String
        var description: String { text }
    }
}
