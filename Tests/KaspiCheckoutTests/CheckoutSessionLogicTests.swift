import Foundation
import KaspiCheckout
import KaspiPayTesting
import Testing

/// A gateway that answers from a script, and records what it was asked.
final class ScriptedGateway: CheckoutTransport, @unchecked Sendable {
    enum Answer {
        case order(state: String, expiresIn: Int? = 600, pollAfter: Int = 3, paymentURL: String? = "https://pay.kaspi.kz/pay/abc")
        case status(Int, code: String, retryAfter: Int? = nil)
        case unreachable
    }

    private let lock = NSLock()
    private var answers: [Answer]
    private(set) var requests: [(url: URL, headers: [String: String])] = []
    let orderID: String
    /// When set, `expiresIn` counts down to this moment of the clock, as a real gateway's does.
    let deadline: (clock: TestClock, at: Duration)?

    init(orderID: String = "ord_1", deadline: (clock: TestClock, at: Duration)? = nil, _ answers: [Answer]) {
        self.orderID = orderID
        self.deadline = deadline
        self.answers = answers
    }

    var requestCount: Int { lock.withLock { requests.count } }

    func get(_ url: URL, headers: [String: String]) async throws -> CheckoutHTTPResponse {
        let answer = lock.withLock { () -> Answer in
            requests.append((url, headers))
            // The last answer repeats.
            return answers.count > 1 ? answers.removeFirst() : answers[0]
        }
        switch answer {
        case .order(let state, let expiresIn, let pollAfter, let paymentURL):
            var body: [String: Any] = ["id": orderID, "state": state, "amount": 5000, "kind": "redirect", "pollAfter": pollAfter, "final": false]
            if let deadline {
                let left = deadline.at - deadline.clock.now.offset
                body["expiresIn"] = max(0, Int(left.components.seconds))
            } else if let expiresIn {
                body["expiresIn"] = expiresIn
            }
            if let paymentURL { body["paymentUrl"] = paymentURL }
            return CheckoutHTTPResponse(status: 200, body: try JSONSerialization.data(withJSONObject: body))
        case .status(let status, let code, let retryAfter):
            let body = try JSONSerialization.data(withJSONObject: ["error": ["code": code, "message": "m"]])
            return CheckoutHTTPResponse(status: status, headers: retryAfter.map { ["retry-after": String($0)] } ?? [:], body: body)
        case .unreachable:
            throw URLError(.cannotConnectToHost)
        }
    }
}

/// An opener that only records.
final class RecordingOpener: PaymentOpener, @unchecked Sendable {
    private let lock = NSLock()
    private var opened: [URL] = []
    let result: OpenResult
    init(_ result: OpenResult = .kaspiApp) { self.result = result }
    var urls: [URL] { lock.withLock { opened } }
    func open(_ url: URL) async -> OpenResult {
        lock.withLock { opened.append(url) }
        return result
    }
}

final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [CheckoutProgress] = []
    func add(_ item: CheckoutProgress) { lock.withLock { items.append(item) } }
    var all: [CheckoutProgress] { lock.withLock { items } }
}

@Suite("KaspiCheckout: the session's logic, on a test clock")
struct CheckoutSessionLogicTests {
    static let gatewayURL = URL(string: "https://pay.shop.example/")!

    static func session(_ gateway: ScriptedGateway, clock: TestClock, opener: RecordingOpener = RecordingOpener()) -> CheckoutSession {
        CheckoutSession(
            gatewayURL: gatewayURL, orderID: gateway.orderID, clientSecret: "ord_1_secret_abc", returnURL: URL(string: "myshop://payment"),
            opener: opener, transport: gateway, clock: clock)
    }

    /// Runs `result()` and moves the clock each time the session sleeps, until it ends.
    static func run(
        _ session: CheckoutSession, clock: TestClock, step: Duration = .seconds(1), log: ProgressLog = ProgressLog()
    ) async throws
        -> CheckoutOutcome
    {
        let task = Task { try await session.result { log.add($0) } }
        let driver = drive(clock, step: step)
        defer { driver.cancel() }
        return try await task.value
    }

    /// Moves `clock` by `step` whenever something sleeps on it, until cancelled.
    static func drive(_ clock: TestClock, step: Duration) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                if clock.sleeperCount > 0 { await clock.advance(by: step) }
                await Task.yield()
            }
        }
    }

    @Test func asksWithTheSecretInAHeaderAndTheIDAsOneSegment() async throws {
        let gateway = ScriptedGateway(orderID: "ord/../x y", [.order(state: "paid")])
        let session = CheckoutSession(
            gatewayURL: URL(string: "https://pay.shop.example/base/")!, orderID: "ord/../x y", clientSecret: "s3cret", transport: gateway)
        let order = try await session.refresh()
        #expect(order.state == .paid)
        let request = try #require(gateway.requests.first)
        #expect(request.url.absoluteString == "https://pay.shop.example/base/client/v1/orders/ord%2F..%2Fx%20y")
        #expect(request.headers["Client-Secret"] == "s3cret")
        #expect(!request.url.absoluteString.contains("s3cret"))
    }

    @Test func opensThePaymentURLAndWaitsForThePayment() async throws {
        let clock = TestClock()
        let gateway = ScriptedGateway([.order(state: "pending"), .order(state: "pending"), .order(state: "pending"), .order(state: "paid")])
        let opener = RecordingOpener(.browser)
        let session = Self.session(gateway, clock: clock, opener: opener)
        #expect(try await session.open() == .browser)
        #expect(opener.urls == [URL(string: "https://pay.kaspi.kz/pay/abc")!])
        let log = ProgressLog()
        let outcome = try await Self.run(session, clock: clock, log: log)
        #expect(outcome.isPaid)
        #expect(log.all.contains { if case .waiting(_, let left?) = $0 { return left <= .seconds(600) } else { return false } })
    }

    @Test func aForgedReturnLinkIsOnlyAWakeUp() async throws {
        let clock = TestClock()
        let gateway = ScriptedGateway([.order(state: "pending", pollAfter: 30)])
        let session = Self.session(gateway, clock: clock)
        let task = Task { try await session.result() }
        #expect(await eventually { clock.sleeperCount == 1 })
        // The link says success; the gateway says pending.
        #expect(session.handle(url: URL(string: "myshop://payment?status=success&orderId=ord_1&gatewayOrderId=ord_1")!))
        let driver = Self.drive(clock, step: .seconds(2))
        defer { driver.cancel() }
        let outcome = try await task.value
        guard case .notCompleted(let order) = outcome else {
            Issue.record("expected notCompleted, got \(outcome)")
            return
        }
        #expect(order.state == .pending && !outcome.isPaid)
        // One read at start, one at the wake-up, three spaced checks, and a last one once the
        // order's polling interval (30 s) has passed since the return, when the gateway has
        // surely asked Kaspi.
        #expect(gateway.requestCount == 6)
    }

    @Test func linksForOtherOrdersOrOtherURLsAreNotTaken() async throws {
        let session = Self.session(ScriptedGateway([.order(state: "pending")]), clock: TestClock())
        #expect(!session.handle(url: URL(string: "myshop://payment?status=success&gatewayOrderId=ord_2")!))
        #expect(!session.handle(url: URL(string: "othershop://payment?status=success")!))
        #expect(!session.handle(url: URL(string: "myshop://settings?status=success")!))
        #expect(!session.handle(url: URL(string: "myshop://payment")!))
        // A link that names no gateway order wakes nothing: anyone can open it.
        #expect(!session.handle(url: URL(string: "myshop://payment/?status=failed&orderId=REF-9")!))
        #expect(session.handle(url: URL(string: "myshop://payment/?status=failed&orderId=REF-9&gatewayOrderId=ord_1")!))
    }

    @Test func theClientSecretGoesOnlyOverTLSOrToThisMachine() async throws {
        let gateway = ScriptedGateway([.order(state: "pending")])
        for insecure in ["http://pay.example.kz", "http://10.0.0.5:8282", "ftp://pay.example.kz"] {
            let session = CheckoutSession(
                gatewayURL: URL(string: insecure)!, orderID: "ord_1", clientSecret: "cs_secret", transport: gateway, clock: TestClock())
            await #expect(throws: CheckoutError.insecureGateway(URL(string: insecure)!)) { _ = try await session.refresh() }
        }
        #expect(gateway.requestCount == 0)
        for secure in ["https://pay.example.kz", "http://127.0.0.1:8282", "http://localhost:8282", "http://[::1]:8282"] {
            let session = CheckoutSession(
                gatewayURL: URL(string: secure)!, orderID: "ord_1", clientSecret: "cs_secret", transport: gateway, clock: TestClock())
            #expect(try await session.refresh().state == .pending, "\(secure)")
        }
    }

    @Test func theDeadlineEndsTheWaitAfterALastQuestion() async throws {
        let clock = TestClock()
        let gateway = ScriptedGateway(deadline: (clock, .seconds(10)), [.order(state: "pending", pollAfter: 3)])
        let session = Self.session(gateway, clock: clock)
        let outcome = try await Self.run(session, clock: clock)
        guard case .expired(let order) = outcome else {
            Issue.record("expected expired, got \(outcome)")
            return
        }
        #expect(order.state == .pending)
        // 10 s of deadline and 5 s of grace, asked every 3 s at most: about six reads, not more.
        #expect((5...8).contains(gateway.requestCount), "\(gateway.requestCount)")
    }

    @Test func aGatewayThatExpiredTheOrderEndsItAtOnce() async throws {
        let gateway = ScriptedGateway([.order(state: "expired", expiresIn: nil)])
        let outcome = try await Self.run(Self.session(gateway, clock: TestClock()), clock: TestClock())
        guard case .expired(let order) = outcome else {
            Issue.record("expected expired, got \(outcome)")
            return
        }
        #expect(order.state == .expired && gateway.requestCount == 1)
    }

    @Test func declinedAndCancelledAreFailures() async throws {
        for state in ["declined", "cancelled"] {
            let outcome = try await Self.run(Self.session(ScriptedGateway([.order(state: state)]), clock: TestClock()), clock: TestClock())
            guard case .failed = outcome else {
                Issue.record("\(state): \(outcome)")
                continue
            }
        }
    }

    @Test func anUnreachableGatewayIsAskedAgainWithBackoffAndRetryAfter() async throws {
        let clock = TestClock()
        let gateway = ScriptedGateway([
            .unreachable, .status(503, code: "STORAGE_UNAVAILABLE"), .status(429, code: "CLIENT_RATE_LIMITED", retryAfter: 7), .order(state: "paid"),
        ])
        let log = ProgressLog()
        let outcome = try await Self.run(Self.session(gateway, clock: clock), clock: clock, log: log)
        #expect(outcome.isPaid)
        let delays = log.all.compactMap { progress -> Duration? in
            if case .retrying(_, let after) = progress { return after }
            return nil
        }
        #expect(delays.count == 3)
        #expect(delays[2] >= .seconds(7))
    }

    @Test func aWrongSecretStopsAtOnce() async throws {
        let gateway = ScriptedGateway([.status(404, code: "CHECKOUT_NOT_FOUND")])
        let error = await thrownError(CheckoutError.self) { _ = try await Self.session(gateway, clock: TestClock()).result() }
        #expect(error == .checkoutNotFound)
        #expect(gateway.requestCount == 1)
    }

    @Test func qrAndFinalOrdersHaveNothingToOpen() async throws {
        let qr = ScriptedGateway([.order(state: "pending", paymentURL: nil)])
        #expect(await thrownError(CheckoutError.self) { try await Self.session(qr, clock: TestClock()).open() } == .nothingToOpen(state: .pending))
        let paid = ScriptedGateway([.order(state: "paid")])
        #expect(await thrownError(CheckoutError.self) { try await Self.session(paid, clock: TestClock()).open() } == .nothingToOpen(state: .paid))
        let failing = ScriptedGateway([.order(state: "pending")])
        #expect(
            await thrownError(CheckoutError.self) { try await Self.session(failing, clock: TestClock(), opener: RecordingOpener(.failed)).open() }
                == .couldNotOpen)
    }

    @Test func anAnswerAboutAnotherOrderOrNotJSONIsRefused() async throws {
        let other = ScriptedGateway(orderID: "ord_2", [.order(state: "paid")])
        let session = CheckoutSession(gatewayURL: Self.gatewayURL, orderID: "ord_1", clientSecret: "s", transport: other)
        guard case .invalidAnswer? = await thrownError(CheckoutError.self, { _ = try await session.refresh() }) else {
            Issue.record("expected invalidAnswer")
            return
        }
    }

    @Test func aSnapshotSurvivesEncodingAndResumes() async throws {
        let session = Self.session(ScriptedGateway([.order(state: "paid")]), clock: TestClock())
        let data = try JSONEncoder().encode(session.snapshot)
        let snapshot = try JSONDecoder().decode(CheckoutSession.Snapshot.self, from: data)
        #expect(snapshot == session.snapshot)
        let resumed = CheckoutSession(resuming: snapshot, transport: ScriptedGateway([.order(state: "paid")]))
        #expect(try await resumed.result().isPaid)
    }
}
