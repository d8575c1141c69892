import Foundation

extension KaspiQRAPI {
    /// Reads the dates Kaspi sends, which vary: `2020-01-16T10:30:00+06`,
    /// `2025-10-22T17:10:50.717+05:00`, `2021-12-08T11:35:48.1566667` (no offset: Almaty
    /// time) and `2021-11-3T11:55:14.166+06:00` (a day without its zero).
    public enum DateParser {
        /// Parses a date: 1-2 digit month and day, 0-7 fraction digits, an offset of `Z`,
        /// `±HH`, `±HHMM` or `±HH:MM`, or none (then the time is in `Asia/Almaty`). A space
        /// may stand for the `T`.
        public static func parse(_ text: String) -> Date? {
            var scanner = Scan(Array(text.trimmingCharacters(in: .whitespaces).utf8))
            guard let year = scanner.number(digits: 4...4), scanner.take(UInt8(ascii: "-")),
                let month = scanner.number(digits: 1...2), scanner.take(UInt8(ascii: "-")),
                let day = scanner.number(digits: 1...2)
            else { return nil }
            var hour = 0
            var minute = 0
            var second = 0
            var nanos = 0
            if scanner.take(UInt8(ascii: "T")) || scanner.take(UInt8(ascii: "t")) || scanner.take(UInt8(ascii: " ")) {
                guard let h = scanner.number(digits: 1...2), scanner.take(UInt8(ascii: ":")),
                    let m = scanner.number(digits: 1...2)
                else { return nil }
                hour = h
                minute = m
                if scanner.take(UInt8(ascii: ":")) {
                    guard let s = scanner.number(digits: 1...2) else { return nil }
                    second = s
                    if scanner.take(UInt8(ascii: ".")) || scanner.take(UInt8(ascii: ",")) {
                        var digits = 0
                        var value = 0
                        while let digit = scanner.digit() {
                            digits += 1
                            guard digits <= 9 else { return nil }
                            value = value * 10 + digit
                        }
                        guard digits >= 1 else { return nil }
                        for _ in digits..<9 { value *= 10 }
                        nanos = value
                    }
                }
            }
            var offset: Int? = nil
            if scanner.take(UInt8(ascii: "Z")) || scanner.take(UInt8(ascii: "z")) {
                offset = 0
            } else if let sign = scanner.sign() {
                guard let hours = scanner.number(digits: 2...2), hours <= 14 else { return nil }
                var minutes = 0
                if scanner.take(UInt8(ascii: ":")) {
                    guard let m = scanner.number(digits: 2...2) else { return nil }
                    minutes = m
                } else if let m = scanner.number(digits: 2...2) {
                    minutes = m
                }
                guard minutes < 60 else { return nil }
                offset = sign * (hours * 3600 + minutes * 60)
            }
            guard scanner.atEnd, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
            else { return nil }
            var components = DateComponents()
            components.year = year
            components.month = month
            components.day = day
            components.hour = hour
            components.minute = minute
            components.second = second
            components.nanosecond = nanos
            var calendar = Calendar(identifier: .gregorian)
            if let offset {
                guard let zone = TimeZone(secondsFromGMT: offset) else { return nil }
                calendar.timeZone = zone
            } else {
                calendar.timeZone = almaty
            }
            guard let date = calendar.date(from: components),
                calendar.component(.day, from: date) == day
            else { return nil }
            return date
        }

        /// `Asia/Almaty`, or UTC+5 where the time zone database lacks it.
        static let almaty: TimeZone = TimeZone(identifier: "Asia/Almaty") ?? TimeZone(secondsFromGMT: 5 * 3600) ?? .gmt

        /// Formats a date the way production does today: `yyyy-MM-dd'T'HH:mm:ss.SSS+05:00`
        /// (in the given offset).
        public static func format(_ date: Date, offsetSeconds: Int = 5 * 3600) -> String {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(secondsFromGMT: offsetSeconds) ?? .gmt
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
            func pad(_ value: Int?, _ width: Int) -> String {
                let text = String(value ?? 0)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            let millis = min(999, (c.nanosecond ?? 0) / 1_000_000)
            let sign = offsetSeconds < 0 ? "-" : "+"
            let hours = abs(offsetSeconds) / 3600
            let minutes = abs(offsetSeconds) % 3600 / 60
            return
                "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2)).\(pad(millis, 3))\(sign)\(pad(hours, 2)):\(pad(minutes, 2))"
        }

        private struct Scan {
            let bytes: [UInt8]
            var index = 0
            init(_ bytes: [UInt8]) { self.bytes = bytes }
            var atEnd: Bool { index == bytes.count }
            mutating func take(_ byte: UInt8) -> Bool {
                guard index < bytes.count, bytes[index] == byte else { return false }
                index += 1
                return true
            }
            mutating func digit() -> Int? {
                guard index < bytes.count, (48...57).contains(bytes[index]) else { return nil }
                defer { index += 1 }
                return Int(bytes[index] - 48)
            }
            mutating func number(digits range: ClosedRange<Int>) -> Int? {
                let start = index
                var value = 0
                while index - start < range.upperBound, let d = digit() { value = value * 10 + d }
                guard range.contains(index - start) else {
                    index = start
                    return nil
                }
                return value
            }
            mutating func sign() -> Int? {
                if take(UInt8(ascii: "+")) { return 1 }
                if take(UInt8(ascii: "-")) { return -1 }
                return nil
            }
        }
    }
}

/// Keys matched the way Kaspi's (ASP.NET) server matches them: any case.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { self.stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A tolerant reader over one JSON object: keys in any case, numbers sent as strings,
/// strings sent as numbers.
struct LenientObject {
    let container: KeyedDecodingContainer<AnyKey>
    private let keys: [String: AnyKey]

    init(_ decoder: any Decoder) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
        var keys: [String: AnyKey] = [:]
        for key in container.allKeys { keys[key.stringValue.lowercased()] = keys[key.stringValue.lowercased()] ?? key }
        self.keys = keys
    }

    func key(_ name: String) -> AnyKey? { keys[name.lowercased()] }

    func has(_ name: String) -> Bool {
        guard let key = key(name) else { return false }
        return !((try? container.decodeNil(forKey: key)) ?? true)
    }

    func missing(_ name: String) -> DecodingError {
        .keyNotFound(AnyKey(name), .init(codingPath: container.codingPath, debugDescription: "missing \(name)"))
    }

    func malformed(_ name: String, _ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: container.codingPath + [AnyKey(name)], debugDescription: "\(name) is not \(what)"))
    }

    func optionalString(_ name: String) throws -> String? {
        guard has(name), let key = key(name) else { return nil }
        if let text = try? container.decode(String.self, forKey: key) { return text }
        if let number = try? container.decode(Int64.self, forKey: key) { return String(number) }
        if let number = try? container.decode(Decimal.self, forKey: key) { return "\(number)" }
        if let flag = try? container.decode(Bool.self, forKey: key) { return flag ? "true" : "false" }
        throw malformed(name, "a string")
    }

    func string(_ name: String) throws -> String {
        guard let value = try optionalString(name) else { throw missing(name) }
        return value
    }

    func optionalInt64(_ name: String) throws -> Int64? {
        guard has(name), let key = key(name) else { return nil }
        if let number = try? container.decode(Int64.self, forKey: key) { return number }
        if let text = try? container.decode(String.self, forKey: key),
            let number = Int64(text.trimmingCharacters(in: .whitespaces))
        {
            return number
        }
        if let number = try? container.decode(Double.self, forKey: key), number.rounded() == number,
            abs(number) < 9.0e15
        {
            return Int64(number)
        }
        throw malformed(name, "an integer")
    }

    func int64(_ name: String) throws -> Int64 {
        guard let value = try optionalInt64(name) else { throw missing(name) }
        return value
    }

    func optionalDecimal(_ name: String) throws -> Decimal? {
        guard has(name), let key = key(name) else { return nil }
        if let number = try? container.decode(Decimal.self, forKey: key) { return number }
        if let text = try? container.decode(String.self, forKey: key),
            let number = Decimal(string: text.trimmingCharacters(in: .whitespaces), locale: Locale(identifier: "en_US_POSIX"))
        {
            return number
        }
        throw malformed(name, "a number")
    }

    func decimal(_ name: String) throws -> Decimal {
        guard let value = try optionalDecimal(name) else { throw missing(name) }
        return value
    }

    func optionalBool(_ name: String) throws -> Bool? {
        guard has(name), let key = key(name) else { return nil }
        if let flag = try? container.decode(Bool.self, forKey: key) { return flag }
        if let text = try? container.decode(String.self, forKey: key) {
            switch text.lowercased() {
            case "true", "1": return true
            case "false", "0": return false
            default: break
            }
        }
        if let number = try? container.decode(Int64.self, forKey: key) { return number != 0 }
        throw malformed(name, "a boolean")
    }

    func optionalDate(_ name: String) throws -> Date? {
        guard let text = try optionalString(name) else { return nil }
        guard let date = KaspiQRAPI.DateParser.parse(text) else { throw malformed(name, "a date") }
        return date
    }

    func date(_ name: String) throws -> Date {
        guard let value = try optionalDate(name) else { throw missing(name) }
        return value
    }

    func stringArray(_ name: String) throws -> [String] {
        guard has(name), let key = key(name) else { return [] }
        if let values = try? container.decode([String].self, forKey: key) { return values }
        throw malformed(name, "a list of strings")
    }

    func object<T: Decodable>(_ name: String, as type: T.Type) throws -> T? {
        guard has(name), let key = key(name) else { return nil }
        return try container.decode(T.self, forKey: key)
    }
}
