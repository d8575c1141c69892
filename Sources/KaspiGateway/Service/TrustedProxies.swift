import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The networks whose requests may say who the client is: the TLS proxies (nginx, a load
/// balancer) in front of the gateway. A request from anywhere else is its own client, whatever
/// its `X-Forwarded-For` or `Forwarded` headers claim.
public struct TrustedProxies: Sendable, Hashable {
    struct Network: Sendable, Hashable {
        let bytes: [UInt8]
        let prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    let networks: [Network]

    /// No proxy is trusted: every request's client is its TCP peer.
    public static let none = TrustedProxies(networks: [])

    private init(networks: [Network]) { self.networks = networks }

    /// Parses addresses and CIDR networks (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`).
    ///
    /// - Throws: ``GatewayConfigurationError`` naming the first entry that is neither.
    public init(_ list: [String]) throws(GatewayConfigurationError) {
        var networks: [Network] = []
        for entry in list {
            let text = entry.trimmingCharacters(in: .whitespaces)
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.bytes(String(parts[0])) else {
                throw .invalid("trustedProxies", "must be IP addresses or CIDR networks such as 10.0.0.0/8 (\"\(text.prefix(64))\" is neither)")
            }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let value = Int(parts[1]), (0...bytes.count * 8).contains(value), parts[1].allSatisfy(\.isNumber) else {
                    throw .invalid("trustedProxies", "has a network prefix out of range in \"\(text.prefix(64))\"")
                }
                prefix = value
            }
            networks.append(Network(bytes: bytes, prefix: prefix))
        }
        self.networks = networks
    }

    /// Whether no proxy is trusted.
    public var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` (text, as a socket reports it) is in one of the networks.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client of a request that came from `peer` with these headers: the peer itself
    /// unless it is a trusted proxy; then, walking `X-Forwarded-For` (or, without it,
    /// `Forwarded`'s `for=`) from the right, the first hop that is not a trusted proxy. Each
    /// proxy appends the address it saw, so only the hops right of that one were written by
    /// someone trusted; what the client wrote further left is never read. An unreadable hop
    /// stops the walk at the last trusted one.
    ///
    /// - Returns: the client's address in canonical text, or the peer's text when unreadable.
    public func client(peer: String, forwardedFor: [String], forwarded: [String]) -> String {
        guard !networks.isEmpty, var current = Self.canonical(peer), contains(current) else { return Self.canonical(peer) ?? peer }
        var hops = forwardedFor.flatMap { $0.split(separator: ",") }.map(String.init)
        if hops.isEmpty { hops = Self.forwardedFor(forwarded) }
        // Headers are bounded by the server; the walk is bounded too.
        for hop in hops.reversed().prefix(64) {
            guard let address = Self.canonical(Self.stripPort(hop)) else { return current }
            current = address
            if !contains(address) { return address }
        }
        return current
    }

    /// The `for=` values of `Forwarded` headers (RFC 7239), left to right.
    static func forwardedFor(_ headers: [String]) -> [String] {
        var hops: [String] = []
        for element in headers.flatMap({ $0.split(separator: ",") }) {
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "for" else { continue }
                hops.append(parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
            }
        }
        return hops
    }

    /// `[2001:db8::1]:4711` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`; others unchanged.
    static func stripPort(_ hop: String) -> String {
        let text = hop.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { return String(text[text.index(after: text.startIndex)..<close]) }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") { return String(text[..<colon]) }
        return text
    }

    /// One text per address (an IPv4-mapped IPv6 address is its IPv4 one), so that a limit
    /// keyed on it cannot be dodged by spelling the same address another way.
    static func canonical(_ text: String) -> String? {
        guard let bytes = bytes(text) else { return nil }
        return format(bytes)
    }

    /// The address's 4 or 16 bytes; an IPv4-mapped IPv6 address gives its 4.
    static func bytes(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    static func format(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
