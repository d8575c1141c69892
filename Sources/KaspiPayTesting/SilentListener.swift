import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback TCP port that takes connections and never answers: each is accepted, counted
/// and held open, and nothing sent is read. A merchant endpoint that hangs.
public final class SilentListener: Sendable {
    /// The port it listens on.
    public let port: Int
    private let descriptor: Int32
    private let accepted = Accepted()

    private final class Accepted: Sendable {
        /// The connections open now.
        let list = Mutex<[Int32]>([])
        /// How many were accepted in all.
        let count = Mutex(0)

        /// The open connections, forgotten here (the caller closes them).
        func takeAll() -> [Int32] {
            list.withLock { list in
                defer { list = [] }
                return list
            }
        }
    }

    /// How many connections were made to it so far.
    public var connections: Int { accepted.count.withLock { $0 } }

    /// Listens on a free loopback port.
    ///
    /// - Throws: ``SilentListenerError`` when no socket could be bound.
    public init() throws(SilentListenerError) {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SilentListenerError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw SilentListenerError()
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.descriptor = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        // The thread owns the listening socket and closes it when accept fails (after deinit's
        // shutdown), so its number is never reused while the thread may still accept on it.
        let thread = Thread { [accepted] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 {
                    // Interrupted, or a client gave up before it was taken: keep listening.
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    break
                }
                accepted.list.withLock { $0.append(connection) }
                accepted.count.withLock { $0 += 1 }
            }
            close(fd)
            for connection in accepted.takeAll() { close(connection) }
        }
        thread.start()
    }

    deinit {
        // Wakes the thread's accept with an error; the thread then closes the socket.
        _ = shutdown(descriptor, Int32(SHUT_RDWR))
        for connection in accepted.takeAll() { close(connection) }
    }
}

/// No loopback socket could be bound.
public struct SilentListenerError: Error, Sendable {}
