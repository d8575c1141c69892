import Foundation
import KaspiSupport
import Testing

@Suite("Shared text helpers")
struct SupportTextTests {
    @Test func jsonStringLiteralsEscapeWhatJSONRequires() {
        #expect(JSONText.string("plain") == #""plain""#)
        #expect(JSONText.string("a\"b\\c") == #""a\"b\\c""#)
        #expect(JSONText.string("line\nnext\r\ttab") == #""line\nnext\r\ttab""#)
        #expect(JSONText.string("\u{01}\u{1F}") == #""\u0001\u001f""#)
        #expect(JSONText.string("/ é 😀") == "\"/ é 😀\"")
    }

    @Test func hexIsLowercaseTwoDigitsAByte() {
        #expect(Hex.encode([]) == "")
        #expect(Hex.encode([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
    }

    @Test func encodedAsNullWritesNullWhereSynthesizedCodingLeavesTheKeyOut() throws {
        struct Body: Encodable {
            @EncodedAsNull var detail: String?
            var note: String?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try encoder.encode(Body(detail: nil, note: nil)), as: UTF8.self) == #"{"detail":null}"#)
        #expect(String(decoding: try encoder.encode(Body(detail: "x", note: "y")), as: UTF8.self) == #"{"detail":"x","note":"y"}"#)
    }
}
