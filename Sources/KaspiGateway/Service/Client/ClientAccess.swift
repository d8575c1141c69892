import Crypto
import Foundation
import KaspiGatewayStore
import KaspiPay
import Synchronization

/// What the payer's device may know about its order: the answer of the public client endpoint
/// (`GET /client/v1/orders/{id}`), in the spirit of a Stripe PaymentIntent read with its client
/// secret. Nothing about the merchant, its other orders or Kaspi's ids.
public struct ClientOrderView: Sendable, Hashable {
    /// The gateway's order id.
    public var id: String
    /// Where the order stands.
    public var state: OrderState
    /// How the payer pays: a redirect, a QR code, a payment link or a remote invoice.
    public var kind: OrderKind
    /// The amount, in whole tenge.
    public var amount: Int
    /// Where to send the payer (Kaspi's payment page or link), once the provider has the order.
    public var paymentURL: String?
    /// The QR token to draw, for QR orders.
    public var qrToken: String?
    /// When the running phase ends (the scan or confirmation deadline, or the gateway's
    /// expiry); nil once the order is final.
    public var expiresAt: Date?
    /// The same deadline as seconds from now, so that a device with a wrong clock can follow it.
    public var expiresIn: Int?
    /// When to ask again, in seconds (the provider's polling interval where it gives one).
    public var pollAfter: Int
}

/// The payer's device's access to its order: client secrets derived from a key in the
/// database, the public client endpoint's view and rate limits, and the refresh slots the
/// payer's reads of Kaspi share with the return page.
final class ClientAccess: GatewayPart {
    let context: GatewayContext
    /// Reads Kaspi for a pending order.
    let status: StatusService
    /// When each order was last read from Kaspi for a payer, per reader.
    let lastClientRefresh = Mutex<[String: Date]>([:])
    /// Orders whose return page was viewed: the first view asks Kaspi at once.
    let firstReturns = Mutex<Set<String>>([])
    /// The key client secrets are derived from, once read from the database.
    let clientKey = Mutex<SymmetricKey?>(nil)
    /// The public client endpoint's rate limits.
    let clientThrottle = ClientThrottle()

    init(context: GatewayContext, status: StatusService) {
        self.context = context
        self.status = status
    }

    /// The setting that holds the key client secrets are derived from; shared by every
    /// instance on one database.
    static let clientSecretKeySetting = "client.secret_key.v1"

    /// How often the payer's device may read one order, and how often one address may read any:
    /// per minute. An app asks every few seconds; an address stands for many payers behind one
    /// carrier's NAT.
    static let clientReadsPerOrder = 60
    /// Wrong secrets an address may send in 15 minutes before it is refused for a while.
    static let clientSecretFailures = 20

    /// The order's client secret: a per-order secret for the payer's device, which lets it read
    /// only this order's ``ClientOrderView``. It is derived (HMAC-SHA256) from a key kept in the
    /// database, so every instance and every replay gives the same one and nothing per order is
    /// stored. Never give the merchant's API key to an app; give it this.
    func clientSecret(orderID: String) async throws(GatewayError) -> String {
        Self.clientSecret(orderID: orderID, key: try await clientSecretKey())
    }

    static func clientSecret(orderID: String, key: SymmetricKey) -> String {
        "\(orderID)_secret_\(HMACToken.mac("kaspikit.client-secret.v1:\(orderID)", key))"
    }

    func clientSecretKey() async throws(GatewayError) -> SymmetricKey {
        if let key = clientKey.withLock({ $0 }) { return key }
        let stored: String
        do {
            stored = try await store.setting(
                Self.clientSecretKeySetting, orInsert: Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString())
        } catch {
            throw GatewayError.storage(error)
        }
        guard let data = Data(base64Encoded: stored), data.count == 32 else {
            throw GatewayError(.misconfigured, "CLIENT_KEY_INVALID", "The stored client secret key is not 32 bytes of base64.")
        }
        let key = SymmetricKey(data: data)
        clientKey.withLock { $0 = key }
        return key
    }

    /// The order as its payer's device may see it, for the holder of its client secret. A
    /// pending order is read from Kaspi first (at most once every 2 s an order), since the app
    /// asks when the payer comes back and the way back proves nothing.
    ///
    /// An unknown order and a wrong secret get the same answer, so the endpoint tells nothing
    /// about which orders exist.
    ///
    /// - Parameter client: the caller's address, for the rate limits.
    func clientOrder(id: String, clientSecret: String?, client: String) async throws(GatewayError) -> ClientOrderView {
        let at = now()
        let notFound = GatewayError(.notFound, "CHECKOUT_NOT_FOUND", "No checkout has this order id and client secret.")
        // No secret at all says nothing about the order: told plainly, and not counted.
        guard clientSecret != nil else {
            throw GatewayError(.unauthenticated, "CLIENT_SECRET_REQUIRED", "Send the order's clientSecret in the Client-Secret header.")
        }
        let limited = { (wait: Int) in
            GatewayError(.tooSoon, "CLIENT_RATE_LIMITED", "Too many requests for this checkout; ask again in \(wait) s.", retryAfter: wait)
        }
        // The secret is checked first: a right one is held back only by its own order's budget,
        // never by the wrong secrets of others behind the same address (a NAT, a proxy).
        // No order id is this long: refused before its secret is even derived.
        let expected = id.utf8.count <= 128 ? Self.clientSecret(orderID: id, key: try await clientSecretKey()) : nil
        guard let expected, let clientSecret, clientSecret.utf8.count <= 512, Signature.constantTimeEquals(clientSecret, expected) else {
            if let wait = clientThrottle.failed(address: client, now: at) { throw limited(wait) }
            throw notFound
        }
        // Only a read with the right secret spends the order's budget: someone who knows an
        // order id (deep links carry it) cannot use it up for the payer's app.
        if let wait = clientThrottle.read(orderID: id, now: at) { throw limited(wait) }
        let stored: GatewayOrder?
        do { stored = try await store.order(id: id) } catch { throw GatewayError.storage(error) }
        guard var order = stored else { throw notFound }
        // Remote invoices are read only on a person's action, never on an app's timer.
        if takeRefreshSlot(for: order, at: at) {
            if let refreshed = try? await status.refreshStatus(order, source: .client) { order = refreshed }
        }
        return clientView(order, now: now())
    }

    /// The least time between two reads of one order from Kaspi on a payer's behalf, whatever
    /// the polling interval.
    static let clientRefreshSpacing: TimeInterval = 2

    /// Whether a public read (the payer's return page, the payer's app) may ask Kaspi about
    /// `order` now, taking the order's slot if so. At most once per polling interval an order
    /// (the provider's, else ``GatewayConfiguration/pollInterval``; never under 2 s), and not
    /// when the poller asked within it: the pages show what the gateway knows, which the poller
    /// keeps current. Never for remote invoices, which Kaspi's anti-abuse refuses to read on a
    /// timer, nor for finished orders.
    ///
    /// - Parameter returning: a view of the return page, where Kaspi sends the payer after
    ///   paying: its first view of each order asks Kaspi whatever the slot, so the payer sees
    ///   the outcome at once (one read an order, whoever opens the page).
    func takeRefreshSlot(for order: GatewayOrder, at: Date, returning: Bool = false) -> Bool {
        guard order.state == .created || order.state == .pending, order.kind != .remote else { return false }
        if returning,
            firstReturns.withLock({ seen in
                if seen.count > 10_000 { seen.removeAll() }
                return seen.insert(order.id).inserted
            })
        {
            lastClientRefresh.withLock { $0[order.id] = at }
            return true
        }
        let interval = provider.pollPlan(for: order, now: at).map { $0.nextPollAt.timeIntervalSince(at) } ?? configuration.pollInterval
        let spacing = max(Self.clientRefreshSpacing, interval)
        if let polled = order.lastPolledAt, at.timeIntervalSince(polled) < spacing { return false }
        return lastClientRefresh.withLock { last in
            if last.count > 1000 { last = last.filter { at.timeIntervalSince($0.value) < Self.longestSpacing(configuration) } }
            if let previous = last[order.id], at.timeIntervalSince(previous) < spacing { return false }
            last[order.id] = at
            return true
        }
    }

    /// The longest spacing a slot can have, to forget older slots by.
    private static func longestSpacing(_ configuration: GatewayConfiguration) -> TimeInterval {
        max(clientRefreshSpacing, configuration.pollInterval, 60)
    }

    /// Page views (return and link pages) one address may make in a minute.
    static let pageViewsPerAddress = 120

    /// The running phase's deadline: the provider's (the Kaspi QR API's scan or confirmation
    /// deadline, in `plan`) or the gateway's own expiry. Reconciliation expires an order at it.
    func deadline(of order: GatewayOrder, plan: ProviderPollPlan?) -> Date {
        PollPolicy.deadline(of: order, plan: plan, settings: PollPolicy.Settings(configuration))
    }

    func clientView(_ order: GatewayOrder, now: Date) -> ClientOrderView {
        let open = order.state == .created || order.state == .pending
        let plan = open ? provider.pollPlan(for: order, now: now) : nil
        let deadline = open ? deadline(of: order, plan: plan) : nil
        let interval = plan.map { $0.nextPollAt.timeIntervalSince(now) } ?? 3
        return ClientOrderView(
            id: order.id, state: order.state, kind: order.kind, amount: order.amount,
            paymentURL: order.state.isFinal ? nil : order.paymentURL, qrToken: order.state.isFinal ? nil : order.qrToken,
            expiresAt: deadline, expiresIn: deadline.map { max(0, Int($0.timeIntervalSince(now).rounded(.down))) },
            pollAfter: min(30, max(1, Int(interval.rounded(.up)))))
    }
}
