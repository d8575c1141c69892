import Foundation
import KaspiPay
import KaspiPayTesting
import Synchronization
import Testing

@Suite("Retries and recovery")
struct RetryTests {
    @Test func statusReadsRetryTransientFailuresWithBackoff() async throws {
        let (client, transport, clock) = scriptedClient([
            .fail(.timedOut), .respond(status: 503, body: "busy"), .fail(.failed("reset")), .json(#"{"status":"APPROVED"}"#),
        ])
        let status = try await clock.run { try await client.orders.status(of: "A") }
        #expect(status.status == .approved)
        #expect(transport.requests.count == 4)
        // 100 ms, 200 ms, 400 ms (jitter 0).
        #expect(clock.now.offset == .milliseconds(700))
    }

    @Test func retriesStopAtMaxAttempts() async throws {
        let (client, transport, clock) = scriptedClient(Array(repeating: .respond(status: 500, body: "x"), count: 10))
        let error = await kaspiError { _ = try await clock.run { try await client.orders.status(of: "A") } }
        #expect(error == .unexpectedStatus(500, bodySnippet: "x"))
        #expect(transport.requests.count == 4)
    }

    @Test func permanentErrorsAreNotRetried() async throws {
        let (client, transport, _) = scriptedClient([.error("ORDER_NOT_FOUND", status: 404), .json(#"{"status":"PENDING"}"#)])
        #expect(await kaspiError { _ = try await client.orders.status(of: "A") }?.code == "ORDER_NOT_FOUND")
        #expect(transport.requests.count == 1)
    }

    @Test func retryAfterIsHonoured() async throws {
        let (client, transport, clock) = scriptedClient([
            .error("RATE_LIMITED", status: 429, headers: ["Retry-After": "7"]), .json(#"{"status":"PENDING"}"#),
        ])
        _ = try await clock.run { try await client.orders.status(of: "A") }
        #expect(transport.requests.count == 2)
        #expect(clock.now.offset == .seconds(7))
    }

    @Test func retryAfterBeyondTheCapIsReturned() async throws {
        let (client, transport, clock) = scriptedClient([.error("RATE_LIMITED", status: 429, headers: ["Retry-After": "3600"])])
        let error = await kaspiError { _ = try await clock.run { try await client.orders.status(of: "A") } }
        #expect(error?.code == "RATE_LIMITED")
        #expect(transport.requests.count == 1)
    }

    @Test func createIsResentAfterATimeout() async throws {
        let (client, transport, clock) = scriptedClient([
            .fail(.timedOut), .json(#"{"paymentUrl":"https://pay.example/p/1","orderId":"ORDER-1"}"#),
        ])
        let created = try await clock.run { try await client.orders.create(newOrder()) }
        #expect(!created.recovered)
        #expect(transport.requests.count == 2)
        #expect(transport.requests[0].bodyText == transport.requests[1].bodyText)
    }

    @Test func aDuplicateAfterOurOwnRetryIsConfirmedThroughStatus() async throws {
        let (client, transport, clock) = scriptedClient([
            .respond(status: 502, body: "lost"),
            .error("ORDER_ALREADY_EXISTS", status: 409),
            .json(#"{"status":"PENDING","amount":5000,"paymentUrl":"https://pay.example/p/ORDER-1"}"#),
        ])
        let created = try await clock.run { try await client.orders.create(newOrder()) }
        #expect(created.recovered)
        #expect(created.paymentURL.absoluteString == "https://pay.example/p/ORDER-1")
        #expect(transport.requests.map(\.request.path) == ["/api/v1/orders/create", "/api/v1/orders/create", "/api/v1/orders/ORDER-1/status"])
    }

    @Test func aDuplicateWithAnotherAmountIsReported() async throws {
        let (client, _, clock) = scriptedClient([
            .fail(.timedOut), .error("ORDER_ALREADY_EXISTS", status: 409),
            .json(#"{"status":"PENDING","amount":777,"paymentUrl":"https://pay.example/p/ORDER-1"}"#),
        ])
        let error = await kaspiError { _ = try await clock.run { try await client.orders.create(newOrder()) } }
        #expect(error?.code == "ORDER_ALREADY_EXISTS")
    }

    @Test func aDuplicateWithoutOurRetryIsReported() async throws {
        let (client, transport, _) = scriptedClient([.error("ORDER_ALREADY_EXISTS", status: 409)])
        #expect(await kaspiError { _ = try await client.orders.create(newOrder()) }?.code == "ORDER_ALREADY_EXISTS")
        #expect(transport.requests.count == 1)
    }

    @Test func aRecoveredCreateWithoutPaymentDetailsIsUnknown() async throws {
        let (client, _, clock) = scriptedClient([
            .fail(.timedOut), .error("ORDER_ALREADY_EXISTS", status: 409), .json(#"{"status":"PENDING"}"#),
        ])
        let error = await kaspiError { _ = try await clock.run { try await client.orders.create(newOrder()) } }
        #expect(error == .createOutcomeUnknown("ORDER-1"))
    }

    @Test func qrCreateRecovers() async throws {
        let png = Data([0x89, 0x50, 0x4E, 0x47]).base64EncodedString()
        let (client, _, clock) = scriptedClient([
            .fail(.timedOut), .error("ORDER_ALREADY_EXISTS", status: 409),
            .json(#"{"status":"PENDING","amount":100,"qrToken":"tok","qrCode":"\#(png)"}"#),
        ])
        let qr = try await clock.run { try await client.qr.create(amount: 100, orderID: "Q-1") }
        #expect(qr.recovered && qr.token == "tok" && qr.png == [0x89, 0x50, 0x4E, 0x47])
    }

    @Test func aRefundWhoseResponseWasLostButWentThroughIsNotResent() async throws {
        let (client, transport, clock) = scriptedClient([
            .json(#"{"status":"APPROVED","amount":5000,"refundedAmount":1000}"#),
            .fail(.timedOut),
            .json(#"{"status":"APPROVED","amount":5000,"refundedAmount":3000}"#),
        ])
        let refund = try await clock.run { try await client.refunds.create(orderID: "ORDER-1", amount: 2000) }
        #expect(refund == Refund(orderID: "ORDER-1", refundID: nil, amount: 2000, refundedAmount: 3000, recovered: true))
        #expect(transport.requests.filter { $0.request.path!.hasSuffix("/refund") }.count == 1)
    }

    @Test func aRefundThatDidNotGoThroughIsSentAgainAfterTheCheck() async throws {
        let (client, transport, clock) = scriptedClient([
            .json(#"{"status":"APPROVED","amount":5000,"refundedAmount":0}"#),
            .respond(status: 503, body: "busy"),
            .json(#"{"status":"APPROVED","amount":5000,"refundedAmount":0}"#),
            .json(#"{"orderId":"ORDER-1","refundId":"RF-2","amount":2000,"refundedAmount":2000}"#),
        ])
        let refund = try await clock.run { try await client.refunds.create(orderID: "ORDER-1", amount: 2000) }
        #expect(refund.refundID == "RF-2" && !refund.recovered)
        #expect(transport.requests.map { $0.request.path!.hasSuffix("/refund") } == [false, true, false, true])
    }

    @Test func aRefundIsNeverResentWhenItsOutcomeCannotBeTold() async throws {
        // The server does not report refundedAmount (a real server may not).
        let (client, transport, clock) = scriptedClient([.json(#"{"status":"APPROVED"}"#), .fail(.timedOut)])
        let error = await kaspiError { _ = try await clock.run { try await client.refunds.create(orderID: "ORDER-1", amount: 2000) } }
        #expect(error == .refundOutcomeUnknown("ORDER-1", 2000))
        #expect(transport.requests.filter { $0.request.path!.hasSuffix("/refund") }.count == 1)

        // The refunded amount moved, but not by this refund's amount: someone else refunded.
        let (other, otherTransport, otherClock) = scriptedClient([
            .json(#"{"status":"APPROVED","refundedAmount":0}"#), .fail(.timedOut), .json(#"{"status":"APPROVED","refundedAmount":500}"#),
        ])
        let otherError = await kaspiError { _ = try await otherClock.run { try await other.refunds.create(orderID: "ORDER-1", amount: 2000) } }
        #expect(otherError == .refundOutcomeUnknown("ORDER-1", 2000))
        #expect(otherTransport.requests.filter { $0.request.path!.hasSuffix("/refund") }.count == 1)
    }

    @Test func refundsAreRetriedWhenRateLimited() async throws {
        let (client, transport, clock) = scriptedClient([
            .json(#"{"status":"APPROVED","refundedAmount":0}"#),
            .error("RATE_LIMITED", status: 429, headers: ["Retry-After": "2"]),
            .json(#"{"orderId":"ORDER-1","refundId":"RF-1","amount":100,"refundedAmount":100}"#),
        ])
        let refund = try await clock.run { try await client.refunds.create(orderID: "ORDER-1", amount: 100) }
        #expect(refund.refundID == "RF-1")
        #expect(transport.requests.count == 3)
    }

    @Test func refundBusinessErrorsAreNotRetried() async throws {
        let (client, transport, _) = scriptedClient([
            .json(#"{"status":"APPROVED","refundedAmount":0}"#), .error("REFUND_NOT_ALLOWED", status: 409),
        ])
        #expect(await kaspiError { _ = try await client.refunds.create(orderID: "ORDER-1", amount: 100) }?.code == "REFUND_NOT_ALLOWED")
        #expect(transport.requests.count == 2)
    }
}

@Suite("Rate limiting")
struct RateLimitTests {
    @Test func callersWaitForAFreeSlot() async throws {
        let clock = TestClock()
        let limiter = RateLimiter(limit: 2, per: .seconds(60), clock: clock)
        try await limiter.acquire()
        try await limiter.acquire()
        let done = Mutex(false)
        let third = Task {
            try await limiter.acquire()
            done.withLock { $0 = true }
        }
        #expect(await clock.waitForSleepers(1))
        #expect(!done.withLock { $0 })
        await clock.advance(by: .seconds(59))
        #expect(!done.withLock { $0 })
        await clock.advance(by: .seconds(1))
        try await third.value
        #expect(done.withLock { $0 })
        #expect(await limiter.inFlightWindowCount() == 1)
    }

    @Test func waitingIsCancellable() async throws {
        let clock = TestClock()
        let limiter = RateLimiter(limit: 1, per: .seconds(60), clock: clock)
        try await limiter.acquire()
        let waiting = Task { try await limiter.acquire() }
        #expect(await clock.waitForSleepers(1))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }

    @Test func oneLimiterIsSharedByEveryCallOfAClient() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport(handler: { _, _ in .json(#"{"status":"PENDING"}"#) })
        let client = KaspiClient(
            configuration: testConfiguration(rateLimit: .init(requests: 3, per: .seconds(60))), transport: transport, clock: clock)
        async let a = client.orders.status(of: "A")
        async let b = client.qr.status(token: "t")
        async let c = client.orders.status(of: "C")
        _ = try await (a, b, c)
        let fourth = Task { try await client.orders.status(of: "D") }
        #expect(await clock.waitForSleepers(1))
        #expect(transport.requests.count == 3)
        await clock.advance(by: .seconds(60))
        _ = try await fourth.value
        #expect(transport.requests.count == 4)
    }

    @Test func theDefaultIsKaspisHundredAMinute() async throws {
        let clock = TestClock()
        let transport = ScriptedTransport(handler: { _, _ in .json(#"{"status":"PENDING"}"#) })
        var configuration = testConfiguration()
        configuration.rateLimit = .kaspi
        let client = KaspiClient(configuration: configuration, transport: transport, clock: clock)
        for _ in 0..<100 { _ = try await client.orders.status(of: "A") }
        let extra = Task { try await client.orders.status(of: "A") }
        #expect(await clock.waitForSleepers(1))
        #expect(transport.requests.count == 100)
        await clock.advance(by: .seconds(60))
        _ = try await extra.value
        #expect(transport.requests.count == 101)
    }
}

@Suite("Polling")
struct PollingTests {
    @Test func waitsUntilPaidWithTheGuidesInterval() async throws {
        let (client, transport, clock) = scriptedClient([
            .json(#"{"status":"PENDING"}"#), .json(#"{"status":"PENDING"}"#), .json(#"{"status":"APPROVED"}"#),
        ])
        let steps = Mutex<[PollProgress]>([])
        let outcome = try await clock.run {
            try await client.qr.waitForPayment(token: "tok") { step in steps.withLock { $0.append(step) } }
        }
        #expect(outcome == .paid(OrderStatus(status: .approved, amount: nil, transactionID: nil, refundedAmount: nil)))
        #expect(transport.requests.count == 3)
        #expect(clock.now.offset == .seconds(9))
        #expect(steps.withLock { $0.map(\.attempt) } == [1, 2, 3])
        #expect(steps.withLock { $0.allSatisfy { $0.maxAttempts == 60 } })
    }

    @Test func endsDeclinedOrCancelled() async throws {
        let (client, _, clock) = scriptedClient([.json(#"{"status":"DECLINED"}"#), .json(#"{"status":"CANCELLED"}"#)])
        #expect(try await clock.run { try await client.qr.waitForPayment(token: "t") }.name == "declined")
        #expect(try await clock.run { try await client.orders.waitForOutcome(of: "A") }.name == "cancelled")
    }

    @Test func timesOutAsUnknownNotFailed() async throws {
        let (client, transport, clock) = scriptedClient(
            Array(repeating: .json(#"{"status":"PENDING"}"#), count: 5) + [.json(#"{"status":"APPROVED"}"#)])
        let outcome = try await clock.run {
            try await client.orders.waitForOutcome(of: "A", options: PollingOptions(interval: .seconds(1), maxAttempts: 5))
        }
        guard case .timedOut(let last) = outcome else {
            Issue.record("expected timedOut")
            return
        }
        #expect(last?.status == .pending)
        #expect(transport.requests.count == 5)
    }

    @Test func transientErrorsCountAsAttemptsAndPollingGoesOn() async throws {
        let (client, _, clock) = scriptedClient(
            [.respond(status: 500, body: "x"), .json(#"{"status":"APPROVED"}"#)],
            configuration: testConfiguration(retry: .none))
        let steps = Mutex<[PollProgress]>([])
        let outcome = try await clock.run {
            try await client.qr.waitForPayment(token: "t") { step in steps.withLock { $0.append(step) } }
        }
        #expect(outcome.name == "paid")
        #expect(steps.withLock { $0.first?.error?.code } == "UNEXPECTED_STATUS")
    }

    @Test func permanentErrorsEndTheWait() async throws {
        let (client, _, clock) = scriptedClient([.error("ORDER_NOT_FOUND", status: 404)])
        await #expect(throws: KaspiError.self) { try await clock.run { try await client.qr.waitForPayment(token: "t") } }
    }

    @Test func waitingHonoursCancellation() async throws {
        let (client, transport, clock) = scriptedClient([])
        let task = Task { try await client.qr.waitForPayment(token: "t") }
        #expect(await clock.waitForSleepers(1))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.requests.isEmpty)
    }
}
