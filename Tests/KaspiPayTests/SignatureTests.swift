import Foundation
import KaspiPay
import Testing

@Suite("Signatures")
struct SignatureTests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var kind: Signature.Kind
        var amount: Int
        var orderID: String
        var apiKey: String
        var expected: String
        var testDescription: String { "\(kind.rawValue) \(amount) \(orderID)" }
    }

    /// Vectors computed outside Swift with sha256sum (scripts/make-signature-vectors).
    static let vectors: [Vector] = {
        let url = Bundle.module.url(forResource: "signatures", withExtension: "tsv", subdirectory: "Vectors")!
        let text = try! String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Vector(
                kind: Signature.Kind(rawValue: fields[0])!, amount: Int(fields[1])!, orderID: fields[2],
                apiKey: fields[3], expected: fields[4])
        }
    }()

    @Test("known answers", arguments: vectors)
    func knownAnswer(_ vector: Vector) throws {
        let key = try APIKey(vector.apiKey)
        #expect(Signature.compute(vector.kind, amount: vector.amount, orderID: vector.orderID, apiKey: key) == vector.expected)
        #expect(Signature.isValid(vector.expected, kind: vector.kind, amount: vector.amount, orderID: vector.orderID, apiKey: key))
        #expect(!Signature.isValid(vector.expected.uppercased(), kind: vector.kind, amount: vector.amount, orderID: vector.orderID, apiKey: key))
    }

    @Test func vectorsCoverEveryKind() {
        #expect(Set(Self.vectors.map(\.kind)) == Set(Signature.Kind.allCases))
    }

    @Test func typedHelpersMatchTheGenericOne() throws {
        let key = try APIKey("test_key_abc")
        let amount: Amount = 5000
        let id: OrderID = "ORDER-123"
        #expect(Signature.createOrder(amount: amount, orderID: id, apiKey: key) == "656fe6a0a98dde2ee92b05823778534d628bdf0a5587468cbc809afea5e15f73")
        #expect(Signature.createQR(amount: amount, orderID: id, apiKey: key) == Signature.createOrder(amount: amount, orderID: id, apiKey: key))
        #expect(Signature.refund(amount: amount, orderID: id, apiKey: key) == Signature.createOrder(amount: amount, orderID: id, apiKey: key))
        #expect(
            Signature.webhook(orderID: "ORDER-123", amount: 5000, apiKey: key) == "60b0d08a15bd630c8fe5652d2733541052a68f1527ec00be925d5d820f72c3d2")
    }

    @Test func webhookPutsTheOrderIDFirst() throws {
        let key = try APIKey("k")
        #expect(
            Signature.compute(.webhook, amount: 100, orderID: "A", apiKey: key)
                != Signature.compute(.createOrder, amount: 100, orderID: "A", apiKey: key))
    }

    @Test func constantTimeEquality() {
        #expect(Signature.constantTimeEquals("abc", "abc"))
        #expect(!Signature.constantTimeEquals("abc", "abd"))
        #expect(!Signature.constantTimeEquals("abc", "abcd"))
        #expect(!Signature.constantTimeEquals("", "a"))
        #expect(Signature.constantTimeEquals("", ""))
    }
}
