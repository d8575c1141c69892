import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds a loopback TCP port that is free, for servers that must know each other's address
/// before either starts.
///
/// Ports come from 20000-32767, below Linux's ephemeral range, so that a server binding port 0
/// (as many tests do) is never handed one of them meanwhile; a port is handed out once per
/// process.
public enum FreePort {
    private static let handedOut = Mutex<Set<Int>>([])

    /// A TCP port free on loopback now.
    public static func find() -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: 20000...32767)
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            if fresh, tryBind(port) != nil { return port }
        }
        return tryBind(0) ?? 0
    }

    /// Binds a loopback socket to `port` (0 for any), closes it, and returns the port it got,
    /// or nil when the port is taken.
    private static func tryBind(_ port: Int) -> Int? {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { return nil }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
