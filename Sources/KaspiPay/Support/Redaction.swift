/// Helpers that keep secrets and untrusted text out of messages.
enum Redaction {
    /// The text quoted for a message: control characters escaped, at most 80 characters.
    static func quoted(_ text: String, limit: Int = 80) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        if text.unicodeScalars.count > limit { out += "…" }
        return "\"" + out + "\""
    }

    /// Replaces every occurrence of `secret` in `text` with `[REDACTED]`.
    static func scrub(_ text: String, secret: String) -> String {
        guard !secret.isEmpty, text.contains(secret) else { return text }
        return text.replacingAll(secret, with: "[REDACTED]")
    }

    /// The first `limit` bytes of a body, decoded leniently, with the secret scrubbed.
    static func snippet(of body: [UInt8], limit: Int = 256, secret: String) -> String {
        // Scrub before cutting, so that a key split by the cut cannot leak either.
        let full = String(decoding: body.prefix(limit + secret.utf8.count), as: UTF8.self)
        let scrubbed = scrub(full, secret: secret)
        let cut = String(scrubbed.prefix(limit))
        let escaped = cut.unicodeScalars.map { scalar -> String in
            (scalar.value < 0x20 && scalar != "\n" && scalar != "\t") || scalar.value == 0x7F
                ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }.joined()
        return body.count > limit ? escaped + "…" : escaped
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
