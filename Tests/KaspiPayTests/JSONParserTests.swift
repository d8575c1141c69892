import Foundation
import KaspiPay
import Testing

@Suite("JSON parsing")
struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let text =
            #" {"s":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","i":-42,"big":12345678901234,"d":1.5e2,"t":true,"f":false,"n":null,"a":[1,[],{}],"o":{"k":"v"}} "#
        let value = try #require(JSONValue.parse(Array(text.utf8)))
        guard case .object(let o) = value else {
            Issue.record("not an object")
            return
        }
        #expect(o["s"] == .string("a\"b\\c/d\n\té😀"))
        #expect(o["i"] == .integer(-42))
        #expect(o["big"] == .integer(12_345_678_901_234))
        #expect(o["d"] == .number(150))
        #expect(o["t"] == .bool(true) && o["f"] == .bool(false) && o["n"] == .null)
        #expect(o["a"] == .array([.integer(1), .array([]), .object([:])]))
        #expect(o["o"] == .object(["k": .string("v")]))
        #expect(JSONValue.parse(Array(#""plain ünïcode""#.utf8)) == .string("plain ünïcode"))
        #expect(JSONValue.parse(Array("5000.0".utf8)) == .number(5000))
    }

    @Test func refusesWhatIsNotJSON() {
        let bad = [
            "", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", ".5", "-", "1e", "tru", "nul", "\"open",
            "\"tab\there\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "{\"a\":1} x", "[1 2]", "NaN", "1e999",
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in bad { #expect(JSONValue.parse(Array(text.utf8)) == nil, "\(text.prefix(20))") }
        #expect(JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) == nil)  // invalid UTF-8
        #expect(JSONValue.parse([0x22, 0xFF, 0x22]) == nil)
    }

    @Test func agreesWithJSONDecoderOnTheSameDocuments() throws {
        let documents = [
            #"{"orderId":"ORD-1","amount":5000,"status":"APPROVED","transactionId":"tx","signature":"ab"}"#,
            #"[1,-2,3.25,"x",null,true,{"nested":[{"deep":"é"}]}]"#,
        ]
        for text in documents {
            let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(JSONValue.parse(Array(text.utf8)) == decoded)
        }
    }
}
