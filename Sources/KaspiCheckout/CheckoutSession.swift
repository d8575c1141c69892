import Foundation
import KaspiPay

/// How a checkout ended, as the gateway confirmed it.
public enum CheckoutOutcome: Sendable, Hashable {
    /// Paid: the gateway has Kaspi's confirmation. Fulfil the order on the server, not here.
    case paid(CheckoutOrder)
    /// Declined or cancelled.
    case failed(CheckoutOrder)
    /// Not paid by its deadline: the gateway expired it, or the deadline passed and it was
    /// still unpaid when asked after it.
    case expired(CheckoutOrder)
    /// The payer came back without paying, and the order is still open until its deadline:
    /// offer to pay again (``CheckoutSession/open()``) or to cancel, and ask again with
    /// ``CheckoutSession/result(progress:)``.
    case notCompleted(CheckoutOrder)

    /// The order as last read.
    public var order: CheckoutOrder {
        switch self {
        case .paid(let order), .failed(let order), .expired(let order), .notCompleted(let order): order
        }
    }

    /// Whether the gateway confirmed the payment.
    public var isPaid: Bool {
        if case .paid = self { return true }
        return false
    }
}

/// What a session is doing, for the app to show.
public enum CheckoutProgress: Sendable, Hashable {
    /// Asking the gateway.
    case checking
    /// Waiting for the payer, with the order as last read and the time left before its
    /// deadline (nil when the gateway gave none).
    case waiting(CheckoutOrder, timeLeft: Duration?)
    /// The payer is back (a deep link, or the app came to the foreground); asking at once.
    case payerReturned
    /// The gateway could not be asked; asking again after the delay.
    case retrying(CheckoutError, after: Duration)
}

/// A payment in an iOS app, from the hand-off to the Kaspi app to the verified outcome.
///
/// The app's backend creates the checkout on its gateway (`POST /v1/checkouts`, with the
/// merchant's API key) and passes the order id and its `clientSecret` to the app. The app never
/// holds the API key.
///
/// ```swift
/// let session = CheckoutSession(gatewayURL: gateway, orderID: id, clientSecret: secret, returnURL: URL(string: "yourapp://payment"))
/// try await session.open()                      // the Kaspi app, or the browser
/// // .onOpenURL { session.handle(url: $0) }     // the way back proves nothing…
/// // scenePhase == .active → session.payerReturned()
/// switch try await session.result() {          // …the gateway says what happened
/// case .paid: showReceipt()
/// case .notCompleted: offerToPayAgain()
/// case .failed, .expired: showFailure()
/// }
/// ```
///
/// Keep ``snapshot`` (in the Keychain) while a payment runs: after the app is killed,
/// ``init(resuming:returnURL:opener:transport:clock:options:)`` picks it up by its order id.
public actor CheckoutSession {
    /// What a session needs to be resumed after a relaunch.
    public struct Snapshot: Codable, Sendable, Hashable {
        /// The gateway's public base URL.
        public var gatewayURL: URL
        /// The gateway's order id.
        public var orderID: String
        /// The order's client secret.
        public var clientSecret: String

        /// A snapshot.
        public init(gatewayURL: URL, orderID: String, clientSecret: String) {
            self.gatewayURL = gatewayURL
            self.orderID = orderID
            self.clientSecret = clientSecret
        }
    }

    /// How patiently a session waits.
    public struct Options: Sendable, Hashable {
        /// Reads after the payer came back before the session reports
        /// ``CheckoutOutcome/notCompleted(_:)``: Kaspi's confirmation may trail the payer by
        /// a moment. The session also keeps reading until one of the order's polling intervals
        /// (its `pollAfter`, at most 30 s) has passed since the return, since the gateway asks
        /// Kaspi at most once in each.
        public var checksAfterReturn: Int
        /// The spacing of those reads.
        public var returnCheckInterval: Duration
        /// How long after the order's deadline the session asks a last time.
        public var deadlineGrace: Duration
        /// How long after that an unreachable gateway ends the wait with its error.
        public var unreachableGrace: Duration
        /// The longest pause between retries when the gateway cannot be reached.
        public var maximumRetryDelay: Duration

        /// The defaults: three reads two seconds apart after a return, five seconds' grace
        /// after the deadline, a minute more when the gateway cannot be reached, retries at
        /// most 30 s apart.
        public init(
            checksAfterReturn: Int = 3, returnCheckInterval: Duration = .seconds(2), deadlineGrace: Duration = .seconds(5),
            unreachableGrace: Duration = .seconds(60), maximumRetryDelay: Duration = .seconds(30)
        ) {
            self.checksAfterReturn = max(0, checksAfterReturn)
            self.returnCheckInterval = max(.zero, returnCheckInterval)
            self.deadlineGrace = max(.zero, deadlineGrace)
            self.unreachableGrace = max(.zero, unreachableGrace)
            self.maximumRetryDelay = max(.milliseconds(1), maximumRetryDelay)
        }
    }

    /// What resumes this session.
    public nonisolated let snapshot: Snapshot
    /// The gateway's order id.
    public nonisolated var orderID: String { snapshot.orderID }
    /// The app's return URL (the checkout's `mobileReturnUrl`), to tell its links from others.
    public nonisolated let returnURL: URL?
    /// The order as last read from the gateway.
    public private(set) var lastOrder: CheckoutOrder?

    private let opener: any PaymentOpener
    private let transport: any CheckoutTransport
    private let clock: ElapsedClock
    private let options: Options
    private let returned = WakeSignal()
    private let endpoint: URL?

    /// A session for an order the app's backend created.
    ///
    /// - Parameters:
    ///   - gatewayURL: the gateway's public base URL, e.g. `https://pay.shop.kz`.
    ///   - orderID: the order's id (`id` in the checkout's answer).
    ///   - clientSecret: the order's `clientSecret`.
    ///   - returnURL: the `mobileReturnUrl` the checkout was created with, if any.
    ///   - opener: hands the payment URL to the system; the default opens the Kaspi app or
    ///     the browser.
    ///   - transport: reaches the gateway; the default is `URLSession`.
    ///   - clock: the clock deadlines and pauses follow; injectable for tests.
    public init(
        gatewayURL: URL, orderID: String, clientSecret: String, returnURL: URL? = nil, opener: any PaymentOpener = SystemPaymentOpener(),
        transport: any CheckoutTransport = URLSessionCheckoutTransport(), clock: some Clock<Duration> = ContinuousClock(),
        options: Options = Options()
    ) {
        self.snapshot = Snapshot(gatewayURL: gatewayURL, orderID: orderID, clientSecret: clientSecret)
        self.returnURL = returnURL
        self.opener = opener
        self.transport = transport
        self.clock = ElapsedClock(clock)
        self.options = options
        self.endpoint = Self.endpoint(gatewayURL: gatewayURL, orderID: orderID)
    }

    /// A session resumed after the app was relaunched, from its ``snapshot``.
    public init(
        resuming snapshot: Snapshot, returnURL: URL? = nil, opener: any PaymentOpener = SystemPaymentOpener(),
        transport: any CheckoutTransport = URLSessionCheckoutTransport(), clock: some Clock<Duration> = ContinuousClock(),
        options: Options = Options()
    ) {
        self.init(
            gatewayURL: snapshot.gatewayURL, orderID: snapshot.orderID, clientSecret: snapshot.clientSecret, returnURL: returnURL,
            opener: opener, transport: transport, clock: clock, options: options)
    }

    /// Whether the client secret may be sent to `url`: `https://`, or `http://` to this machine.
    static func isSecure(_ url: URL) -> Bool {
        switch url.scheme?.lowercased() {
        case "https": return true
        case "http":
            let host = (url.host ?? "").lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
        default: return false
        }
    }

    /// `{gateway}/client/v1/orders/{id}`, the id percent-encoded so that it stays one segment.
    static func endpoint(gatewayURL: URL, orderID: String) -> URL? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.")
        guard !orderID.isEmpty, orderID.count <= 128, let id = orderID.addingPercentEncoding(withAllowedCharacters: allowed) else {
            return nil
        }
        var base = gatewayURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        return URL(string: base + "/client/v1/orders/" + id)
    }

    // MARK: Reading the order

    /// Reads the order from the gateway once (the gateway asks Kaspi if it is unsettled).
    public func refresh() async throws(CheckoutError) -> CheckoutOrder {
        guard Self.isSecure(snapshot.gatewayURL) else { throw .insecureGateway(snapshot.gatewayURL) }
        guard let endpoint else { throw .checkoutNotFound }
        let response: CheckoutHTTPResponse
        do {
            response = try await transport.get(endpoint, headers: ["Client-Secret": snapshot.clientSecret, "Accept": "application/json"])
        } catch {
            throw .unreachable(reason: Self.reason(error))
        }
        if (300..<400).contains(response.status) {
            throw .invalidAnswer(reason: "the gateway answered with a redirect, which is not followed: the client secret goes to the gateway only")
        }
        guard response.status == 200 else { throw Self.failure(response) }
        let order: CheckoutOrder
        do {
            order = try JSONDecoder().decode(CheckoutOrder.self, from: response.body)
        } catch {
            throw .invalidAnswer(reason: "\(type(of: error)): the body is not a client order")
        }
        guard order.id == orderID else { throw .invalidAnswer(reason: "the answer is about another order") }
        lastOrder = order
        return order
    }

    private static func failure(_ response: CheckoutHTTPResponse) -> CheckoutError {
        struct Body: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        let detail = (try? JSONDecoder().decode(Body.self, from: response.body))?.error
        if response.status == 404, detail?.code == "CHECKOUT_NOT_FOUND" { return .checkoutNotFound }
        return .gateway(
            status: response.status, code: detail?.code ?? "HTTP_\(response.status)",
            message: String((detail?.message ?? "no error body").prefix(300)), retryAfter: response.headers["retry-after"].flatMap { Int($0) })
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? URLError { return "URLError \(error.code.rawValue)" }
        return String(describing: type(of: error))
    }

    // MARK: The hand-off

    /// Hands the payment URL to the system: the Kaspi app when it is installed, else the
    /// browser. Never in a web view.
    ///
    /// - Throws: ``CheckoutError/nothingToOpen(state:)`` for a QR order or a final one (show
    ///   the QR code or the outcome instead), ``CheckoutError/couldNotOpen`` when the system
    ///   could not open it, and the errors of ``refresh()``.
    @discardableResult
    public func open() async throws(CheckoutError) -> OpenResult {
        let order = try await refresh()
        guard !order.state.isFinal, let url = order.paymentURL else { throw .nothingToOpen(state: order.state) }
        let result = await opener.open(url)
        guard result != .failed else { throw .couldNotOpen }
        return result
    }

    /// Takes a deep link the app was opened with. A return link for this order (the guide's
    /// `yourapp://payment?status=…&orderId=…`) only wakes the session, which asks the gateway:
    /// its `status` is never believed.
    ///
    /// - Returns: whether the link was this session's; pass others on.
    @discardableResult
    public nonisolated func handle(url: URL) -> Bool {
        guard let link = CheckoutReturnLink(url: url, prefix: returnURL), link.mayConcern(orderID: orderID) else { return false }
        returned.fire()
        return true
    }

    /// Tells the session the payer is back in the app (it came to the foreground): the Kaspi
    /// QR API gives no way back, so this is how the session learns it.
    public nonisolated func payerReturned() {
        returned.fire()
    }

    // MARK: The outcome

    /// Waits for the outcome the gateway confirms: asks at the order's pace, at once when the
    /// payer comes back, and once more after its deadline. Network failures are retried
    /// until the deadline and its grace.
    ///
    /// - Parameter progress: called with what the session is doing.
    /// - Throws: a ``CheckoutError`` that asking again cannot fix, a transient one that lasted
    ///   past the deadline's grace, or `CancellationError`.
    public func result(progress: @escaping @Sendable (CheckoutProgress) -> Void = { _ in }) async throws -> CheckoutOutcome {
        var checksSinceReturn: Int? = nil
        var returnedAt: Duration? = nil
        var failures = 0
        var deadline: Duration? = nil
        while true {
            try Task.checkCancellation()
            progress(.checking)
            let wait: Duration
            do {
                let order = try await refresh()
                failures = 0
                switch order.state {
                case .paid: return .paid(order)
                case .declined, .cancelled: return .failed(order)
                case .expired: return .expired(order)
                case .created, .pending, .other: break
                }
                let now = clock.now()
                // A later deadline is a new phase (the Kaspi QR API's confirmation after the
                // scan); a passed one stays where it was, or it would move with every read.
                if let seconds = order.expiresIn, seconds > 0 || deadline == nil { deadline = now + .seconds(seconds) }
                if let deadline, now >= deadline + options.deadlineGrace { return .expired(order) }
                // The gateway reads Kaspi at most once per polling interval (the order's
                // `pollAfter`): when the spaced checks end sooner, one last read waits for an
                // interval to have passed since the return (at most 30 s), so that the gateway
                // has surely asked since the payer came back.
                var lastRead: Duration? = nil
                if let checks = checksSinceReturn {
                    if checks >= options.checksAfterReturn {
                        let settled = returnedAt.map { $0 + .seconds(min(order.pollAfter, 30)) }
                        guard let settled, now < settled else { return .notCompleted(order) }
                        lastRead = settled - now
                        returnedAt = nil
                    } else {
                        checksSinceReturn = checks + 1
                    }
                }
                var pause = lastRead ?? (checksSinceReturn == nil ? Duration.seconds(order.pollAfter) : options.returnCheckInterval)
                if let deadline { pause = min(pause, max(.zero, deadline + options.deadlineGrace - now)) }
                progress(.waiting(order, timeLeft: deadline.map { max(.zero, $0 - now) }))
                wait = pause
            } catch {
                guard error.isTransient else { throw error }
                failures += 1
                if let deadline, clock.now() >= deadline + options.deadlineGrace + options.unreachableGrace { throw error }
                var delay = min(options.maximumRetryDelay, .milliseconds(500) * (1 << min(failures, 10)))
                if let retryAfter = error.retryAfter { delay = max(delay, .seconds(min(retryAfter, 300))) }
                progress(.retrying(error, after: delay))
                wait = delay
            }
            if await returned.wait(for: wait, clock: clock) {
                checksSinceReturn = 0
                returnedAt = clock.now()
                progress(.payerReturned)
            }
        }
    }
}
