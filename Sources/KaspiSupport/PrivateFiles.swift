import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files that hold secrets (keys, tokens, databases): created with their final permissions from
/// the first byte, never through a link someone planted. `package`, not public API.
package enum PrivateFiles {
    /// A file could not be written or its permissions read.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Replaces whatever is at `path` with `bytes`, in a new file made with `O_EXCL` and
    /// `O_NOFOLLOW` and `mode` (owner-only by default): a link planted at the path is removed,
    /// never followed, and nobody else can open the file while it is written.
    package static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(Failure) {
        if unlink(path) != 0, errno != ENOENT { throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))") }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The mode given to open() is narrowed by the umask; set exactly what was asked.
        _ = fchmod(fd, mode)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            written += result
        }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    private static func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, buffer, count)
        #else
        Darwin.write(fd, buffer, count)
        #endif
    }

    /// Makes sure the file at `path`, if there, is its owner's only: a new database file is
    /// created empty with mode 0600 (SQLite gives its `-wal` and `-shm` files the database's
    /// mode); an existing one, or its `-wal`/`-shm`, that others may read is narrowed to 0600.
    ///
    /// - Returns: the files whose permissions were narrowed, with their old modes, for a line in the log.
    package static func prepareDatabase(at path: String) throws(Failure) -> [(path: String, mode: mode_t)] {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 {
            _ = fchmod(fd, 0o600)
            close(fd)
            return []
        }
        guard errno == EEXIST else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        var narrowed: [(path: String, mode: mode_t)] = []
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard stat(file, &info) == 0 else { continue }
            let mode = info.st_mode & 0o777
            guard mode & 0o077 != 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            guard chmod(file, mode & 0o700) == 0 else {
                throw Failure(description: "cannot narrow the permissions of \(file): \(String(cString: strerror(errno)))")
            }
            narrowed.append((file, mode))
        }
        return narrowed
    }
}
