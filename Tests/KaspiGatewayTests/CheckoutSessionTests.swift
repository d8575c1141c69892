import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KaspiCheckout
import KaspiGateway
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPayTesting
import Synchronization
import Testing

/// Plays the payer: takes the payment URL the session hands to the system, and on the
/// sandbox's page pays, declines, or only looks; then comes back to the app the way a phone
/// would (the gateway's return page redirecting to the app's deep link, or the app coming to
/// the foreground).
final class PayerOpener: PaymentOpener, @unchecked Sendable {
    enum Plan {
        /// Pays (or declines) on the guide's page, then follows the way back to the deep link.
        case page(action: String)
        /// Scans and confirms on the Kaspi QR API's link page, then comes back to the foreground.
        case qrLink
        /// Looks at the page and comes back without paying.
        case looksOnly
        /// Never comes back (the app is killed, or the payer walks away).
        case nothing
    }

    let plan: Plan
    let answer: OpenResult
    private let lock = NSLock()
    private var session: CheckoutSession?
    private var links: [String] = []
    private var tasks: [Task<Void, Never>] = []

    init(_ plan: Plan, answer: OpenResult = .kaspiApp) {
        self.plan = plan
        self.answer = answer
    }

    func attach(_ session: CheckoutSession) { lock.withLock { self.session = session } }
    var deepLinks: [String] { lock.withLock { links } }
    func finish() async { for task in lock.withLock({ tasks }) { await task.value } }

    func open(_ url: URL) async -> OpenResult {
        let task = Task {
            let session = lock.withLock { self.session }
            do {
                switch plan {
                case .page(let action):
                    let posted = try await http(
                        .POST, url.absoluteString, body: "action=\(action)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
                    guard let back = posted.headers["location"] else { return }
                    // The gateway's return page sends the payer on to the app.
                    let returned = try await http(.GET, back)
                    guard let deepLink = returned.headers["location"], let link = URL(string: deepLink) else { return }
                    lock.withLock { links.append(deepLink) }
                    _ = session?.handle(url: link)
                case .qrLink:
                    for action in ["scan", "confirm"] {
                        _ = try await http(
                            .POST, url.absoluteString, body: "action=\(action)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
                    }
                    session?.payerReturned()
                case .looksOnly:
                    _ = try await http(.GET, url.absoluteString)
                    session?.payerReturned()
                case .nothing:
                    break
                }
            } catch {
                Issue.record("the payer could not play: \(error)")
            }
        }
        lock.withLock { tasks.append(task) }
        return answer
    }
}

/// KaspiCheckout against a live gateway and sandbox, over URLSession, as an app would run it.
@Suite("KaspiCheckout end to end: an app's session against the gateway and the sandbox")
struct CheckoutSessionTests {
    static let returnURL = URL(string: "kaspikit-test://payment")!
    /// Quick patience, so that the tests take moments; the logic is the same.
    static let options = CheckoutSession.Options(
        checksAfterReturn: 2, returnCheckInterval: .milliseconds(100), deadlineGrace: .milliseconds(300), unreachableGrace: .seconds(5))

    /// What the app's backend does: creates the checkout with the API key, passes on id and secret.
    static func backendCheckout(_ s: Stack, reference: String = "ORDER-1") async throws -> (id: String, secret: String) {
        let created = try await s.api(
            .POST, "/v1/checkouts", #"{"amount":3500,"merchantReference":"\#(reference)","mobileReturnUrl":"\#(returnURL.absoluteString)"}"#)
        return (try #require(created.json["id"] as? String), try #require(created.json["clientSecret"] as? String))
    }

    static func session(_ s: Stack, _ checkout: (id: String, secret: String), opener: PayerOpener) -> CheckoutSession {
        let session = CheckoutSession(
            gatewayURL: URL(string: s.gatewayURL)!, orderID: checkout.id, clientSecret: checkout.secret, returnURL: returnURL,
            opener: opener, options: options)
        opener.attach(session)
        return session
    }

    @Test(arguments: Backend.available)
    func paidInTheBrowserWhenTheKaspiAppIsMissing(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let checkout = try await Self.backendCheckout(s)
            let opener = PayerOpener(.page(action: "pay"), answer: .browser)
            let session = Self.session(s, checkout, opener: opener)
            #expect(try await session.open() == .browser)
            let progress = Mutex<[CheckoutProgress]>([])
            let outcome = try await session.result { event in progress.withLock { $0.append(event) } }
            #expect(outcome.isPaid && outcome.order.state == .paid)
            #expect(try await s.order(checkout.id)?.state == .paid)
            await opener.finish()
            // The way back was the guide's deep link, with the gateway's id.
            #expect(opener.deepLinks == ["kaspikit-test://payment?status=success&orderId=ORDER-1&gatewayOrderId=\(checkout.id)"])
            #expect(progress.withLock { $0.contains(.checking) })
        }
    }

    @Test(arguments: Backend.available)
    func declinedOnThePage(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let checkout = try await Self.backendCheckout(s)
            let session = Self.session(s, checkout, opener: PayerOpener(.page(action: "decline")))
            try await session.open()
            let outcome = try await session.result()
            guard case .failed(let order) = outcome else {
                Issue.record("expected failed, got \(outcome)")
                return
            }
            #expect(order.state == .declined)
            #expect(try await s.order(checkout.id)?.state == .declined)
        }
    }

    @Test(arguments: Backend.available)
    func thePayerComesBackWithoutPaying(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let checkout = try await Self.backendCheckout(s)
            let opener = PayerOpener(.looksOnly)
            let session = Self.session(s, checkout, opener: opener)
            try await session.open()
            let outcome = try await session.result()
            guard case .notCompleted(let order) = outcome else {
                Issue.record("expected notCompleted, got \(outcome)")
                return
            }
            #expect(order.state == .pending && order.paymentURL != nil)
            #expect(try await s.order(checkout.id)?.state == .pending)
            // Still payable: the payer tries again, pays, and the next wait sees it.
            let again = PayerOpener(.page(action: "pay"))
            let retry = Self.session(s, checkout, opener: again)
            try await retry.open()
            #expect(try await retry.result().isPaid)
        }
    }

    @Test(arguments: Backend.available)
    func aForgedDeepLinkDoesNotPay(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let checkout = try await Self.backendCheckout(s)
            let session = Self.session(s, checkout, opener: PayerOpener(.nothing))
            try await session.open()
            // Any app or page can open this link; it says success.
            let forged = URL(string: "kaspikit-test://payment?status=success&orderId=ORDER-1&gatewayOrderId=\(checkout.id)")!
            #expect(session.handle(url: forged))
            let outcome = try await session.result()
            #expect(!outcome.isPaid)
            guard case .notCompleted = outcome else {
                Issue.record("expected notCompleted, got \(outcome)")
                return
            }
            #expect(try await s.order(checkout.id)?.state == .pending)
        }
    }

    @Test(arguments: Backend.available)
    func theDeadlinePassesWithoutAPayment(_ backend: Backend) async throws {
        try await withStack(backend, configure: { $0.expireAfter = 8 }) { s in
            let checkout = try await Self.backendCheckout(s)
            let session = Self.session(s, checkout, opener: PayerOpener(.nothing))
            try await session.open()
            let outcome = try await session.result()
            guard case .expired = outcome else {
                Issue.record("expected expired, got \(outcome)")
                return
            }
            #expect(try await s.order(checkout.id)?.state != .paid)
        }
    }

    @Test(arguments: Backend.available)
    func aRelaunchMidPaymentResumesFromTheOrderID(_ backend: Backend) async throws {
        try await withStack(backend) { s in
            let checkout = try await Self.backendCheckout(s)
            let opener = PayerOpener(.nothing)
            let first = Self.session(s, checkout, opener: opener)
            try await first.open()
            let waiting = Task { try await first.result() }
            // The app is killed while the payer is in the Kaspi app…
            let saved = try JSONEncoder().encode(first.snapshot)
            waiting.cancel()
            #expect(await thrownError(CancellationError.self) { _ = try await waiting.value } != nil)
            // …who pays meanwhile.
            let paymentURL = try #require(try await s.order(checkout.id)?.paymentURL)
            _ = try await s.payOnPage(paymentURL)
            // Relaunched: the snapshot from the Keychain, and no deep link at all.
            let snapshot = try JSONDecoder().decode(CheckoutSession.Snapshot.self, from: saved)
            let resumed = CheckoutSession(resuming: snapshot, returnURL: Self.returnURL, options: Self.options)
            #expect(try await resumed.result().isPaid)
        }
    }

    @Test func theKaspiQRAPIsLinkIsPaidAndTheAppLearnsItInTheForeground() async throws {
        try await withQRStack(.sqlite, scheme: .r1) { s in
            let created = try await s.api(.POST, "/v1/checkouts", #"{"amount":2000}"#)
            let id = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["clientSecret"] as? String)
            let opener = PayerOpener(.qrLink)
            // The defaults' spacing after a return (three reads a second apart, here), since no
            // webhook comes: the gateway reads Kaspi for the app at most every 2 s.
            let session = CheckoutSession(
                gatewayURL: URL(string: s.gatewayURL)!, orderID: id, clientSecret: secret, opener: opener,
                options: .init(checksAfterReturn: 3, returnCheckInterval: .seconds(1)))
            opener.attach(session)
            // The Kaspi QR API's deadlines reach the app.
            let order = try await session.refresh()
            #expect(order.kind == "redirect" && (order.expiresIn ?? 0) > 0 && order.paymentURL != nil, "\(order)")
            try await session.open()
            let outcome = try await session.result()
            #expect(outcome.isPaid, "\(outcome)")
            #expect(try await s.order(id)?.state == .paid)
        }
    }
}

/// KaspiCheckout's own transport (Foundation's URLSession) never follows a redirect: it would
/// carry the `Client-Secret` header to wherever the answer points.
@Suite("KaspiCheckout's transport refuses redirects")
struct CheckoutRedirectTests {
    @Test func aRedirectIsNotFollowedAndTheSecretGoesNowhereElse() async throws {
        let seenElsewhere = Mutex<[String]>([])
        let elsewhere = Router()
        elsewhere.get("/**") { request, _ -> String in
            seenElsewhere.withLock { $0.append(request.headers[HTTPField.Name("Client-Secret")!] ?? "none") }
            return "{}"
        }
        let elsewhereApp = Application(router: elsewhere, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await elsewhereApp.test(.live) { elsewhereClient in
            let target = "http://127.0.0.1:\(elsewhereClient.port!)"
            let redirecting = Router()
            redirecting.get("/client/v1/orders/:id") { _, _ in Response(status: .found, headers: [.location: target + "/steal"]) }
            let app = Application(router: redirecting, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.live) { client in
                let session = CheckoutSession(
                    gatewayURL: URL(string: "http://127.0.0.1:\(client.port!)")!, orderID: "ord_1", clientSecret: "cs_secret_value")
                do throws(CheckoutError) {
                    _ = try await session.refresh()
                    Issue.record("a redirect was followed")
                } catch {
                    guard case .invalidAnswer(let reason) = error else {
                        Issue.record("expected invalidAnswer, got \(error)")
                        return
                    }
                    #expect(reason.contains("redirect"))
                }
            }
        }
        #expect(seenElsewhere.withLock { $0 }.isEmpty)
    }
}
