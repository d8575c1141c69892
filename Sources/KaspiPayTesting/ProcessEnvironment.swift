import Foundation

/// Sets process environment variables for the length of a test, one test at a time: the tests
/// that show configuration from the environment (the README's examples) share one process.
public enum ProcessEnvironment {
    private actor Gate {
        private var busy = false
        private var waiters: [CheckedContinuation<Void, Never>] = []

        func enter() async {
            if !busy {
                busy = true
                return
            }
            await withCheckedContinuation { waiters.append($0) }
        }

        func leave() {
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
    }

    private static let gate = Gate()

    /// Runs `body` with `variables` set, then unsets them; other callers wait their turn.
    public static func with<T: Sendable>(_ variables: [String: String], _ body: () async throws -> T) async throws -> T {
        await gate.enter()
        for (name, value) in variables { setenv(name, value, 1) }
        do {
            let result = try await body()
            for name in variables.keys { unsetenv(name) }
            await gate.leave()
            return result
        } catch {
            for name in variables.keys { unsetenv(name) }
            await gate.leave()
            throw error
        }
    }
}
