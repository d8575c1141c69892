/// Percent-encoding of URL path segments and query values, as Foundation's
/// `addingPercentEncoding(withAllowedCharacters:)` does with ASCII letters and digits plus a
/// few marks allowed, without building a `CharacterSet` for every call (profiles of the
/// polling path showed it: some 9% of a poll's CPU).
enum PercentEncoding {
    /// Which ASCII bytes go through as they are: letters, digits and `marks`.
    struct Allowed: Sendable {
        private let table: [Bool]

        init(marks: String) {
            var table = [Bool](repeating: false, count: 128)
            for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(byte)] = true }
            for byte in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(byte)] = true }
            for byte in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(byte)] = true }
            for byte in marks.utf8 where byte < 128 { table[Int(byte)] = true }
            self.table = table
        }

        func contains(_ byte: UInt8) -> Bool { byte < 128 && table[Int(byte)] }
    }

    /// Unreserved characters and the marks RFC 3986 allows in a path segment.
    static let segment = Allowed(marks: "-._~:@!$&'()*+,;=")
    /// Unreserved characters only, for query names and values.
    static let query = Allowed(marks: "-._~")

    /// `text` with every byte of its UTF-8 that `allowed` does not contain written as `%XX`.
    static func escape(_ text: String, allowing allowed: Allowed) -> String {
        guard !text.utf8.allSatisfy(allowed.contains) else { return text }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3)
        for byte in text.utf8 {
            if allowed.contains(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
