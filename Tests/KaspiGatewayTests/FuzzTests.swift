import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import KaspiPayTesting
import PropertyBased
import Synchronization
import Testing

@testable import KaspiGateway

/// Applies one mutation, chosen by `n`, to `bytes`: flip a bit, drop, insert or repeat a run,
/// truncate, splice in JSON tokens.
func mutate(_ bytes: [UInt8], _ n: Int) -> [UInt8] {
    guard !bytes.isEmpty else { return Array("{".utf8) }
    var out = bytes
    let at = (n / 16) % out.count
    let tokens = ["\"", "{", "}", "[", "]", ",", ":", "\\u0000", "\\ud800", "1e999", "-0", "null", "\"APPROVED\"", "\u{FF}", "\u{0}"]
    switch n % 8 {
    case 0: out[at] ^= UInt8(1 << (n % 7))
    case 1: out.remove(at: at)
    case 2: out.insert(UInt8(truncatingIfNeeded: n * 31), at: at)
    case 3: out = Array(out[..<at])
    case 4: out.insert(contentsOf: out[at..<min(out.count, at + 8)], at: at)
    case 5: out.insert(contentsOf: Array(tokens[n % tokens.count].utf8), at: at)
    case 6: out[at] = 0xFF
    default: out += out[at...]
    }
    return out
}

@Suite("Fuzzing: webhooks and the JSON parser")
struct FuzzTests {
    @Test("mutated webhooks: no crash, no 5xx, nothing changed", arguments: Backend.available)
    func mutatedWebhooks(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let (declinedID, declined) = try await HardeningTests.declinedOrder(s)
            let pending = try await s.api(.POST, "/v1/checkouts", #"{"amount":6000}"#)
            let pendingID = try #require(pending.json["id"] as? String)
            let before = try await s.gateway.store.orders(OrderQuery()).orders
            let answers = Counter()
            await propertyCheck(count: 300, input: Gen.int(in: 0...1_000_000).array(of: 1...6)) { mutations in
                let body = mutations.reduce(Array(declined.utf8)) { mutate($0, $1) }
                let answer = await RawHTTP.send(
                    Array(
                        "POST /webhooks/kaspi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                            .utf8) + body,
                    port: Int(s.gatewayURL.split(separator: ":").last ?? "") ?? 0)
                #expect(answer?.status != nil, "no answer")
                #expect((answer?.status ?? 500) < 500, "\(answer?.text.prefix(300) ?? "")")
                answers.add()
            }
            #expect(answers.value >= 300)
            #expect(try await s.order(declinedID)?.state == .declined)
            #expect(try await s.order(pendingID)?.state == .pending)
            let after = try await s.gateway.store.orders(OrderQuery()).orders
            #expect(after.map(\.state) == before.map(\.state))
            #expect(!after.contains { $0.state == .paid })
            #expect(try await http(.GET, s.gatewayURL + "/health").status == 200)
        }
    }

    @Test func theJSONParserTakesRandomAndMutatedInputWithoutCrashing() async {
        let seeds = [
            #"{"orderId":"ORDER-1","amount":5000,"status":"APPROVED","transactionId":"tx","signature":"ab"}"#,
            #"{"a":[1,2,{"b":null,"c":[true,false,-1.5e3,"\u00e9\ud83d\ude00"]}],"d":"\\\"x"}"#,
            "[]", "{}", #""string""#, "123",
        ].map { Array($0.utf8) }
        await propertyCheck(count: 2000, input: Gen.int(in: 0...5), Gen.int(in: 0...10_000_000).array(of: 0...8)) { seed, mutations in
            let bytes = mutations.reduce(seeds[seed]) { mutate($0, $1) }
            let parsed = JSONValue.parse(bytes)
            // Whatever parses, encodes to JSON that parses back to the same value (a number
            // may come back as an integer: 1.0 is written 1).
            if let parsed, let data = try? JSONEncoder().encode(parsed) {
                let text = String(decoding: data, as: UTF8.self)
                #expect(JSONValue.parse(Array(text.utf8)).map(Self.numbersAsDoubles) == Self.numbersAsDoubles(parsed), "\(text)")
                #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil, "\(text)")
            }
        }
        await propertyCheck(count: 2000, input: Gen.uint8(in: 0...255).array(of: 0...64)) { bytes in
            _ = JSONValue.parse(bytes)
        }
        // Deep nesting is refused or parsed, never a stack overflow.
        #expect(JSONValue.parse(Array(String(repeating: "[", count: 100_000).utf8)) == nil)
    }

    /// The value with every integer as a double, to compare numbers by value.
    static func numbersAsDoubles(_ value: JSONValue) -> JSONValue {
        switch value {
        case .integer(let n): .number(Double(n))
        case .array(let items): .array(items.map(numbersAsDoubles))
        case .object(let fields): .object(fields.mapValues(numbersAsDoubles))
        default: value
        }
    }

    /// Counts from several tasks.
    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }
}
