import Foundation
import PropertyBased
import Testing

@testable import KaspiPay

/// The hand-written percent-encoding answers what Foundation's does with the same characters
/// allowed, for any text: the paths and queries sent to Kaspi stay byte for byte the same.
@Suite struct PercentEncodingTests {
    static func foundation(_ text: String, marks: String) -> String? {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: "\u{0}"..."\u{7F}"))
        allowed.insert(charactersIn: marks)
        return text.addingPercentEncoding(withAllowedCharacters: allowed)
    }

    @Test func segmentsAndQueriesAreEncodedAsFoundationEncodesThem() async {
        // ASCII, Latin, Cyrillic and Kazakh letters, marks, spaces and controls.
        let text = Gen.character(in: "\u{0}"..."\u{4FF}").string(of: 0...24)
        await propertyCheck(count: 3000, input: text) { text in
            #expect(PercentEncoding.escape(text, allowing: PercentEncoding.segment) == Self.foundation(text, marks: "-._~:@!$&'()*+,;="))
            #expect(PercentEncoding.escape(text, allowing: PercentEncoding.query) == Self.foundation(text, marks: "-._~"))
        }
        for text in ["", "12000000001", "a b/c?d#e%f", "Қазақстан", "😀", "tp-19_x.y~z"] {
            #expect(PercentEncoding.escape(text, allowing: PercentEncoding.query) == Self.foundation(text, marks: "-._~"))
        }
        #expect(PercentEncoding.escape("a b/ä", allowing: PercentEncoding.segment) == "a%20b%2F%C3%A4")
    }
}
