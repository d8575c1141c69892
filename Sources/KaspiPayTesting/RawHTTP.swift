import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends exact bytes to a loopback server and reads what comes back, for tests that must send
/// what no well-behaved HTTP client would: a bad `Host`, a `Content-Length` that disagrees
/// with the body, bytes that are not UTF-8, headers larger than any server accepts.
public enum RawHTTP {
    /// What the server answered.
    public struct Answer: Sendable, Hashable {
        /// The status code of the first response, or nil when the server closed the
        /// connection (or stayed silent) without answering.
        public var status: Int?
        /// Everything received, as text (invalid UTF-8 repaired).
        public var text: String
    }

    /// Connects to `127.0.0.1:port`, writes `bytes`, half-closes the connection when
    /// `finish` is true, and reads until the server closes or `timeoutSeconds` pass. The
    /// blocking socket calls run on a Dispatch thread, never on Swift's cooperative pool, so
    /// a server in the same process keeps running meanwhile.
    ///
    /// - Returns: nil when no connection could be made.
    public static func send(_ bytes: [UInt8], port: Int, finish: Bool = true, timeoutSeconds: Int = 15) async -> Answer? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: blockingSend(bytes, port: port, finish: finish, timeoutSeconds: timeoutSeconds))
            }
        }
    }

    private static func blockingSend(_ bytes: [UInt8], port: Int, finish: Bool, timeoutSeconds: Int) -> Answer? {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // A server that refuses a request early stops reading it: stop sending soon after.
        var sendTimeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { raw in
                #if canImport(Glibc)
                Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(fd, raw.baseAddress, raw.count, 0)
                #endif
            }
            // The server may answer and close before reading everything (a header too large).
            guard written > 0 else { break }
            offset += written
        }
        if finish { _ = shutdown(fd, Int32(SHUT_WR)) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while received.count < 8 << 20 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += chunk[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        return Answer(status: statusCode(text), text: text)
    }

    /// A request as text, with `Connection: close` added, sent as UTF-8 bytes.
    public static func send(_ request: String, port: Int, finish: Bool = true) async -> Answer? {
        await send(Array(request.utf8), port: port, finish: finish)
    }

    /// The status code in the first status line (`HTTP/1.1 404 Not Found`).
    static func statusCode(_ text: String) -> Int? {
        guard text.hasPrefix("HTTP/1."), let line = text.split(separator: "\r\n", maxSplits: 1).first else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count >= 2 else { return nil }
        return Int(parts[1])
    }
}
