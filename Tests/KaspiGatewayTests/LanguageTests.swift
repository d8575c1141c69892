import Foundation
import Testing

@testable import KaspiWeb

/// The pages' languages: the catalogs complete and used, the language chosen the documented
/// way, money and times written the Kazakhstan way.
@Suite struct LanguageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modules = ["KaspiGateway", "KaspiSandbox", "KaspiDemo"]

    static func files(_ module: String, ending suffix: String, under folder: String) -> [URL] {
        let base = root.appendingPathComponent("Sources/\(module)/\(folder)")
        let paths = FileManager.default.enumerator(atPath: base.path)?.compactMap { $0 as? String } ?? []
        return paths.filter { $0.hasSuffix(suffix) }.map { base.appendingPathComponent($0) }
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }
    }

    @Test(arguments: modules)
    func everyKeyIsInEveryLanguageAndUsedAndEveryUseHasAKey(_ module: String) throws {
        let catalog = try MessageCatalog(folder: Self.root.appendingPathComponent("Sources/\(module)/Templates/messages").path)
        let english = try #require(catalog.messages[.en])
        #expect(!english.isEmpty)
        for language in PageLanguage.allCases {
            let table = try #require(catalog.messages[language])
            #expect(
                Set(table.keys) == Set(english.keys),
                "\(module) \(language): missing \(Set(english.keys).subtracting(table.keys).sorted()), extra \(Set(table.keys).subtracting(english.keys).sorted())"
            )
            for (key, text) in table {
                // The same values in every language, none forgotten or invented.
                let placeholders = Set(Self.matches(#"\{\{([a-zA-Z]+)\}\}"#, in: text))
                #expect(placeholders == Set(Self.matches(#"\{\{([a-zA-Z]+)\}\}"#, in: english[key] ?? "")), "\(module) \(language) \(key)")
                #expect(!text.trimmingCharacters(in: .whitespaces).isEmpty, "\(module) \(language) \(key) is empty")
            }
        }
        // Templates say {{#t}}key{{/t}}; Swift names a key as a string literal.
        let templates = Self.files(module, ending: ".mustache", under: "Templates").compactMap { try? String(contentsOf: $0, encoding: .utf8) }
        let swift = Self.files(module, ending: ".swift", under: "").compactMap { try? String(contentsOf: $0, encoding: .utf8) }
        let inTemplates = Set(templates.flatMap { Self.matches(#"\{\{#t\}\}([a-z0-9_]+)\{\{/t\}\}"#, in: $0) })
        let literals = Set(swift.flatMap { Self.matches(#""([a-z][a-z0-9_]*)""#, in: $0) })
        let unused = Set(english.keys).subtracting(inTemplates).subtracting(literals)
        #expect(unused.isEmpty, "\(module): keys no page uses: \(unused.sorted())")
        let missing = inTemplates.subtracting(english.keys)
        #expect(missing.isEmpty, "\(module): templates use keys no catalog has: \(missing.sorted())")
        // What Swift asks the catalog for by name: text("…"), message("…", "…").
        let asked = Set(swift.flatMap { Self.matches(#"(?:text|message)\("([a-z][a-z0-9_]*)""#, in: $0) })
            .union(swift.flatMap { Self.matches(#"message\("[a-z0-9_]+", "([a-z][a-z0-9_]*)""#, in: $0) })
            .union(swift.flatMap { Self.matches(#"nameKey: "([a-z0-9_]+)""#, in: $0) })
        #expect(asked.subtracting(english.keys).isEmpty, "\(module): Swift asks for keys no catalog has: \(asked.subtracting(english.keys).sorted())")
    }

    static func pick(_ query: String?, _ cookie: String?, _ accept: String?, _ fallback: PageLanguage) -> String {
        let chosen = PageLanguage.of(query: query, cookie: cookie, acceptLanguage: accept, fallback: fallback)
        return chosen.language.rawValue + (chosen.chosen ? " chosen" : "")
    }

    @Test func theLanguageIsTheQueryThenTheCookieThenTheBrowserThenTheDefault() {
        #expect(Self.pick("kk", "ru", "en", .ru) == "kk chosen")
        #expect(Self.pick("de", "en", "ru", .ru) == "en")
        #expect(Self.pick(nil, "xx", "kk-KZ,ru;q=0.8", .en) == "kk")
        #expect(Self.pick(nil, nil, "de-DE, fr;q=0.9", .ru) == "ru")
        #expect(Self.pick(nil, nil, nil, .kk) == "kk")
        // Accept-Language by weight, then order; q=0 means "not this".
        #expect(PageLanguage(acceptLanguage: "en;q=0.5, ru-RU;q=0.9, kk;q=0.9") == .ru)
        #expect(PageLanguage(acceptLanguage: "ru;q=0, en") == .en)
        #expect(PageLanguage(acceptLanguage: "ru;q=abc") == nil)
        #expect(PageLanguage(acceptLanguage: "*") == nil)
        #expect(PageLanguage(acceptLanguage: String(repeating: "ru,", count: 500)) == nil, "an oversized header is not read")
        #expect(PageLanguage(tag: "KK_kz") == .kk && PageLanguage(tag: "rus") == .ru && PageLanguage(tag: "") == nil)
    }

    @Test func moneyAndTimesAreWrittenTheKazakhstanWay() throws {
        // ICU's kk_KZ, ru_KZ and en_KZ group with a no-break space; the sign follows one.
        #expect(LocalFormat.tenge(15_000, .ru) == "15\u{00A0}000\u{00A0}₸")
        #expect(LocalFormat.tenge(15_000, .kk) == "15\u{00A0}000\u{00A0}₸")
        #expect(LocalFormat.tenge(1_234_567, .en) == "1\u{00A0}234\u{00A0}567\u{00A0}₸")
        #expect(LocalFormat.tenge(100, .ru) == "100\u{00A0}₸")
        // Kazakhstan has been one zone, UTC+5, since 1 March 2024.
        let moment = try #require(ISO8601DateFormatter().date(from: "2026-12-02T10:04:00Z"))
        #expect(LocalFormat.zoneName(at: moment) == "UTC+5")
        let russian = LocalFormat.time(moment, .ru)
        #expect(russian.contains("15:04") && russian.contains("декабря") && russian.hasSuffix("(UTC+5)"), "\(russian)")
        let kazakh = LocalFormat.time(moment, .kk)
        #expect(kazakh.contains("15:04") && kazakh.lowercased().contains("желтоқсан") && kazakh.hasSuffix("(UTC+5)"), "\(kazakh)")
        let english = LocalFormat.time(moment, .en)
        #expect(english.contains("December") && english.contains("15:04"), "\(english)")
    }

    @Test func aMessageTakesItsValuesOnceAndTheCatalogFallsBackToEnglish() {
        let catalog = MessageCatalog(messages: [.en: ["pay": "Pay {{amount}}", "only": "English"], .ru: ["pay": "Оплатить {{amount}}"], .kk: [:]])
        #expect(catalog.text("pay", .ru, ["amount": "5 ₸"]) == "Оплатить 5 ₸")
        // A value that looks like a placeholder stays as it is.
        #expect(catalog.text("pay", .ru, ["amount": "{{amount}}"]) == "Оплатить {{amount}}")
        #expect(catalog.text("only", .kk) == "English" && catalog.text("nope", .kk) == "nope")
    }

    @Test func wordsShowInsideAnEmptyListsInvertedSectionAndValuesAreFilledIn() throws {
        // Mustache renders a lambda's String against the innermost section's object, which an
        // empty list turns into nothing: catalog words without values must still show there.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("messages"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "{{^items}}<p>{{#t}}empty{{/t}}</p>{{/items}}{{#items}}<li>{{#t}}item{{/t}}</li>{{/items}}<b>{{#t}}pay{{/t}}</b>"
            .write(to: folder.appendingPathComponent("page.mustache"), atomically: true, encoding: .utf8)
        for (language, words) in [
            ("en", #"{"empty": "Nothing", "item": "One", "pay": "Pay {{amount}}"}"#),
            ("ru", #"{"empty": "Пусто", "item": "Один", "pay": "Оплатить {{amount}}"}"#),
            ("kk", #"{"empty": "Бос", "item": "Бір", "pay": "{{amount}} төлеу"}"#),
        ] {
            try words.write(to: folder.appendingPathComponent("messages/\(language).json"), atomically: true, encoding: .utf8)
        }
        let pages = try PageLibrary(bundle: "none.resources", folder: "none", sourceFolder: folder.path, required: ["page"])
        struct Context {
            var items: [String]
            var amount: String
        }
        #expect(pages.render("page", Context(items: [], amount: "5 ₸"), locale: PageLocale(.ru)) == "<p>Пусто</p><b>Оплатить 5 ₸</b>")
        #expect(
            pages.render("page", Context(items: ["a", "b"], amount: "<5>"), locale: PageLocale(.kk))
                == "<li>Бір</li><li>Бір</li><b>&lt;5&gt; төлеу</b>")
    }
}
