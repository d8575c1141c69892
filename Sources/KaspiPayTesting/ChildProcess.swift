import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A program started with `posix_spawn`, with its standard streams on pipes.
///
/// Foundation's `Process.run()` on Linux (swift-corelibs-foundation in Swift 6.3) reads past a
/// buffer while it lists `/proc/self/fd`, and crashes a test process that has many files open
/// now and then (swiftlang/swift-corelibs-foundation#5472). This spawns directly: the pipes are
/// close-on-exec, and the child closes every other descriptor from 3 up where the C library
/// can (`posix_spawn_file_actions_addclosefrom_np`).
final class ChildProcess: Sendable {
    /// The process id.
    let pid: pid_t
    /// The parent's ends of the child's standard input, output and error.
    let stdinFD: Int32
    let stdoutFD: Int32
    let stderrFD: Int32
    /// The exit status once the program ended, and a signal for waiters.
    private final class Exit: Sendable {
        let status = Mutex<Int32?>(nil)
        let done = DispatchSemaphore(value: 0)
    }
    private let exit = Exit()

    struct SpawnError: Error, CustomStringConvertible {
        var executable: String
        var code: Int32
        var description: String { "could not start \(executable): \(String(cString: strerror(code)))" }
    }

    /// Starts `executable` with `arguments` and `environment` (the whole of it).
    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        guard pipe(&input) == 0, pipe(&output) == 0, pipe(&errors) == 0 else {
            let code = errno
            // The pipes made before the one that failed.
            for fd in input + output + errors where fd >= 0 { close(fd) }
            throw SpawnError(executable: executable, code: code)
        }
        // Close-on-exec, so that no other child inherits them (the child's own copies are
        // the dup2'ed 0, 1 and 2).
        for fd in input + output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        Self.closeFrom(&actions, 3)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(input[0])
        close(output[1])
        close(errors[1])
        guard result == 0 else {
            close(input[1])
            close(output[0])
            close(errors[0])
            throw SpawnError(executable: executable, code: result)
        }
        let spawned = pid
        self.pid = spawned
        self.stdinFD = input[1]
        self.stdoutFD = output[0]
        self.stderrFD = errors[0]
        // One thread waits for the exit, so that the status is there when it ends.
        DispatchQueue.global().async { [exit] in
            var raw: Int32 = 0
            while waitpid(spawned, &raw, 0) == -1, errno == EINTR {}
            // WIFEXITED / WEXITSTATUS, WIFSIGNALED / WTERMSIG, as Foundation reports them.
            let code = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : raw & 0x7F
            exit.status.withLock { $0 = code }
            exit.done.signal()
        }
    }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34 and later), looked up at run time:
    /// Swift's Glibc module does not declare it.
    private static func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ first: Int32) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, first)
    }

    /// Whether the program still runs.
    var isRunning: Bool { exit.status.withLock { $0 == nil } }

    /// Its exit status (or the signal that ended it), once it ended.
    var terminationStatus: Int32? { exit.status.withLock { $0 } }

    /// Blocks until the program ends; call it off the cooperative pool.
    func waitUntilExit() -> Int32 {
        exit.done.wait()
        exit.done.signal()
        return terminationStatus ?? -1
    }

    /// Reads a descriptor to its end, blocking; call it off the cooperative pool.
    static func readToEnd(_ fd: Int32, _ chunk: (Data) -> Void = { _ in }) -> Data {
        var all = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                let data = Data(buffer[0..<count])
                all.append(data)
                chunk(data)
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        close(fd)
        return all
    }

    /// Writes all of `bytes` to the child's standard input, then closes it.
    func writeInput(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
            if written > 0 {
                offset += written
            } else if errno != EINTR {
                break
            }
        }
        close(stdinFD)
    }
}
