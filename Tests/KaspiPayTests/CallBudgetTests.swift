import Foundation
import HTTPTypes
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import Synchronization
import Testing

/// A server that never answers: each attempt uses up its whole timeout (capped at 20 s here)
/// on the test clock, then fails as a timeout.
final class SlowFailingTransport: KaspiTransport {
    let clock: TestClock
    let timeouts = Mutex<[Duration]>([])
    init(clock: TestClock) { self.clock = clock }

    func send(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration) async throws -> (HTTPResponse, [UInt8]) {
        timeouts.withLock { $0.append(timeout) }
        await clock.advance(by: min(timeout, .seconds(20)))
        throw TransportError.timedOut
    }
}

@Suite("The retry budget covers the whole call")
struct CallBudgetTests {
    @Test func retriesStopAtTheCallsBudgetAndTheLastAttemptGetsWhatRemains() async throws {
        let clock = TestClock()
        let transport = SlowFailingTransport(clock: clock)
        let policy = RetryPolicy(maxAttempts: 10, initialDelay: .milliseconds(500), jitter: 0, maxElapsed: .seconds(45))
        let client = KaspiClient(configuration: testConfiguration(retry: policy), transport: transport, clock: clock, random: { 0 })
        let error = await kaspiError { _ = try await clock.run { try await client.orders.status(of: "A") } }
        #expect(error == .timeout)
        let timeouts = transport.timeouts.withLock { $0 }
        // 20 s, a 0.5 s wait (24.5 s of the budget remain), 20 s, a 1 s wait: 3.5 s remain for
        // the third attempt, then none.
        #expect(timeouts == [.seconds(30), .milliseconds(24500), .milliseconds(3500)])
        #expect(clock.now.offset == .seconds(45))
    }

    @Test func aRefusedConnectionFailsAtOnceInsteadOfWaitingForTheConnectTimeout() async throws {
        // Nothing listens on this port. With a 120 s connect timeout, only a refusal that is
        // reported at once can fail the call as a transport error (not a timeout).
        let port = FreePort.find()
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(120), readTimeout: .seconds(120))
        let configuration = testConfiguration(
            baseURL: "http://127.0.0.1:\(port)", retry: RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(50), jitter: 0))
        let client = KaspiClient(configuration: configuration, transport: transport)
        let error = await kaspiError { _ = try await client.orders.status(of: "A") }
        try await transport.shutdown()
        guard case .transport(let detail)? = error else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        #expect(detail.lowercased().contains("refused"), "\(detail)")
    }
}
