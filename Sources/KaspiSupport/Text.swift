import Foundation

/// Small text helpers shared by KaspiKit's modules; `package`, not public API.
package enum JSONText {
    /// A JSON string literal: RFC 8259 escaping (quote, backslash, control characters), `/`
    /// and non-ASCII left as they are.
    package static func string(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

package enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of bytes.
    package static func encode(_ bytes: [UInt8]) -> String {
        let table = digits
        var out = [UInt8](repeating: 0, count: bytes.count * 2)
        for (index, byte) in bytes.enumerated() {
            out[2 * index] = table[Int(byte >> 4)]
            out[2 * index + 1] = table[Int(byte & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Host names in URLs.
package enum URLHost {
    /// `host` as it stands in a URL's authority: an IPv6 address in brackets (`[::1]`).
    package static func authority(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}

/// An optional that is encoded as `null` when it is nil, where synthesized `Encodable` would
/// leave the key out: for JSON fields that a contract says are always present (`"detail": null`).
@propertyWrapper
package struct EncodedAsNull<Value: Encodable & Sendable>: Encodable, Sendable {
    package var wrappedValue: Value?

    package init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

/// JSON the way KaspiKit writes it wherever no dates are involved: keys sorted (so the same value
/// is always the same bytes) and slashes unescaped. One encoder, made once.
package enum CanonicalJSON {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// `value` as JSON text.
    ///
    /// - Throws: what `JSONEncoder` throws (a value it cannot encode, such as NaN).
    package static func text(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
