import Foundation
import KaspiGatewayStore
import KaspiPay
import QRCodeEncoder
import Synchronization

/// Kaspi's partner API, the Kaspi QR API (r1, r2 or r3), as the gateway's provider.
///
/// There are no webhooks: every outcome comes from `payment/status`, at the interval and
/// deadlines Kaspi hands out with each purchase (``pollPlan(for:now:)``). A checkout is made
/// through a registered device (``ProviderDevice``, stored in the gateway's database): the one
/// whose reference prefix the merchant reference starts with, else the default. The order's
/// `providerOrderId` is sent as `ExternalId`; Kaspi's payment id, the device and the deadlines
/// are kept in the order's provider state.
public struct KaspiQRProvider: PaymentProvider, DirectRefundCapability, CustomerReturnCapability, RemoteInvoiceCapability {
    /// `kaspi-qr`, stored with every order it creates.
    public let name = KaspiQRProvider.providerName
    /// The name stored with orders and devices.
    public static let providerName = "kaspi-qr"

    let client: KaspiQRAPI.AnyClient
    let directory: DeviceDirectory
    let random: @Sendable () -> Double
    let now: @Sendable () -> Date

    /// Creates the provider.
    ///
    /// - Parameters:
    ///   - client: a client of the configured scheme.
    ///   - devices: reads the registered devices (from the gateway's store).
    ///   - now: the clock deadlines are measured on: the gateway's.
    public init(
        client: KaspiQRAPI.AnyClient, now: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        devices: @escaping @Sendable () async throws -> [ProviderDevice]
    ) {
        self.client = client
        self.directory = DeviceDirectory(load: devices)
        self.random = random
        self.now = now
    }

    /// The scheme in use.
    public var scheme: KaspiQRAPI.SchemeName { client.scheme }

    /// Per scheme: r3 refunds through the API and bills phone numbers, r2 refunds with the
    /// customer present, r1 has neither (refunds are made in the Kaspi Pay app). No scheme
    /// sends webhooks: every outcome is polled.
    public var capabilities: ProviderCapabilities {
        switch client.scheme {
        case .r1: ProviderCapabilities()
        case .r2: ProviderCapabilities(customerReturns: self)
        case .r3: ProviderCapabilities(directRefunds: self, remoteInvoices: self)
        }
    }

    /// How refunds are made on the configured scheme.
    public var refundMethod: RefundMethod { capabilities.refundMethod }

    /// Whether the configured scheme bills phone numbers (r3).
    public var supportsRemoteInvoices: Bool { capabilities.remoteInvoices != nil }

    /// What the provider keeps with an order (JSON in `providerState`).
    struct State: Codable, Hashable {
        /// What Kaspi made for the order: its own words, not ``OrderKind``.
        enum Purchase: String, Codable, Hashable {
            /// A QR token the gateway draws (`qr/create`).
            case qr
            /// A payment link (`qr/create-link`).
            case link
            /// An invoice to a phone number (`remote/create`, r3).
            case remote
        }

        /// Kaspi's `QrPaymentId` / `PaymentId`.
        var paymentID: Int64
        /// The gateway's device id.
        var device: String
        var organizationBin: String?
        var tradePointID: Int64
        var kind: Purchase
        /// When Kaspi's create answered: the scan (or link activation) deadline runs from it.
        var createdAt: Date
        var pollInterval: Int
        var scanTimeout: Int
        var confirmationTimeout: Int
        /// When `Wait` was first seen: the latest the payer can have scanned, so the latest
        /// the confirmation deadline can run from.
        var firstWaitAt: Date?
        /// When the last answered poll before the first `Wait` asked (it still saw
        /// `QrTokenCreated`): the earliest the payer can have scanned, so the earliest the
        /// confirmation deadline can run from.
        var scannedAfter: Date?

        static func decode(_ text: String?) -> State? {
            guard let text else { return nil }
            if let known = recent.withLock({ $0.state(for: text) }) { return known }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .millisecondsSince1970
            guard let state = try? decoder.decode(State.self, from: Data(text.utf8)) else { return nil }
            recent.withLock { $0.remember(state, for: text) }
            return state
        }

        /// States decoded lately, by their text: a poll reads its order's state three times
        /// (the status call, the outcome, the next poll), and JSON decoding was the largest
        /// part of a poll's CPU after the commit.
        private static let recent = Mutex(RecentStates())

        /// The last 4,096 states decoded (about 1.5 MiB), the oldest forgotten first.
        struct RecentStates {
            private var states: [String: State] = [:]
            private var ring: [String] = []
            private var next = 0
            static let capacity = 4_096

            func state(for text: String) -> State? { states[text] }

            mutating func remember(_ state: State, for text: String) {
                guard states.updateValue(state, forKey: text) == nil else { return }
                if ring.count < Self.capacity {
                    ring.append(text)
                } else {
                    states[ring[next]] = nil
                    ring[next] = text
                    next = (next + 1) % Self.capacity
                }
            }
        }

        var encoded: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            encoder.dateEncodingStrategy = .millisecondsSince1970
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }

        var deadlines: KaspiQRAPI.PaymentDeadlines {
            KaspiQRAPI.PaymentDeadlines(
                options: .init(statusPollingInterval: pollInterval, scanTimeout: scanTimeout, confirmationTimeout: confirmationTimeout),
                firstWaitAt: firstWaitAt.map { .milliseconds(Int64($0.timeIntervalSince(createdAt) * 1000)) })
        }

        /// The running deadline as a date: the latest the purchase can still be paid.
        var deadline: Date {
            let deadline = deadlines.deadline.components
            return createdAt.addingTimeInterval(Double(deadline.seconds) + Double(deadline.attoseconds) / 1e18)
        }

        /// The earliest Kaspi can have cancelled the purchase at a deadline: the scan deadline,
        /// or the confirmation timeout from the earliest moment the payer can have scanned
        /// (after the last poll that did not see a scan; `lastPolledAt` while none has).
        func earliestEnd(lastPolledAt: Date?) -> Date {
            if kind == .remote { return deadline }
            let scanEnd = createdAt.addingTimeInterval(TimeInterval(max(0, scanTimeout)))
            let confirmation = TimeInterval(max(0, confirmationTimeout))
            if firstWaitAt != nil { return (scannedAfter ?? createdAt).addingTimeInterval(confirmation) }
            let unscannedUntil = max(createdAt, lastPolledAt ?? createdAt)
            return min(scanEnd, unscannedUntil.addingTimeInterval(confirmation))
        }

        enum CodingKeys: String, CodingKey {
            case paymentID = "paymentId"
            case device
            case organizationBin
            case tradePointID = "tradePointId"
            case kind
            case createdAt
            case pollInterval
            case scanTimeout
            case confirmationTimeout
            case firstWaitAt
            case scannedAfter
        }
    }

    static func map(_ error: KaspiQRAPI.APIError) -> ProviderError {
        switch error {
        case .unknownOutcome, .timeout, .transport:
            return ProviderError(code: error.code, message: error.description, ambiguous: true)
        case .unexpectedHTTPStatus(let status, _, _) where status >= 500:
            return ProviderError(code: error.code, message: error.description, ambiguous: true)
        case .kaspi(.purchaseNotFound, _, _), .kaspi(.purchaseNotFoundForOperation, _, _):
            return ProviderError(code: error.code, message: error.description, notFound: true)
        case .kaspi(.refundExceedsAmount, _, _), .kaspi(.refundNotAllowed, _, _), .kaspi(.partialRefundNotPossible, _, _):
            return ProviderError(code: error.code, message: error.description, refusal: .conflict)
        case .kaspi(.undocumented(-1404), _, _):
            // What Kaspi answers `remote/client-info` or `remote/create` for a number with no
            // Kaspi client.
            return ProviderError(code: "KASPI_QR_CLIENT_NOT_FOUND", message: error.description, refusal: .unprocessable)
        case .kaspi(.invalidAmount, _, _):
            return ProviderError(code: error.code, message: error.description, refusal: .unprocessable)
        default:
            return ProviderError(code: error.code, message: error.description)
        }
    }

    static func report(_ status: KaspiQRAPI.PaymentStatus) -> PaymentStatus {
        switch status {
        case .processed: .approved
        case .error: .declined
        case .remotePaymentCanceled: .cancelled
        case .qrTokenCreated, .wait, .remotePaymentCreated, .unknown: .pending
        }
    }

    /// The registered devices.
    private func devices() async throws(ProviderError) -> [ProviderDevice] {
        do { return try await directory.current() } catch {
            throw ProviderError(code: "DEVICE_REGISTRY_UNAVAILABLE", message: "The gateway could not read its registered devices.", ambiguous: false)
        }
    }

    /// The device a purchase was made through, or another on its trade point (a refund or a
    /// cancel comes from the purchase's trade point), with its token.
    private func device(of state: State) async throws(ProviderError) -> (ProviderDevice, KaspiQRAPI.DeviceToken) {
        let devices = try await devices()
        guard let device = devices.first(where: { $0.id == state.device }) ?? devices.first(where: { $0.tradePointID == state.tradePointID }),
            let token = try? KaspiQRAPI.DeviceToken(device.token)
        else {
            throw ProviderError(code: "NO_DEVICE", message: "No registered device is left on trade point \(state.tradePointID): register one.")
        }
        return (device, token)
    }

    /// The device a new purchase goes through: the one whose reference prefix the merchant
    /// reference starts with (the longest), else the default, else the first.
    private func device(forReference reference: String?) async throws(ProviderError) -> (ProviderDevice, KaspiQRAPI.DeviceToken) {
        let devices = try await devices()
        let chosen =
            reference.flatMap { reference in
                devices.filter { ($0.referencePrefix.map { !$0.isEmpty && reference.hasPrefix($0) }) ?? false }
                    .max { ($0.referencePrefix?.count ?? 0) < ($1.referencePrefix?.count ?? 0) }
            } ?? devices.first { $0.isDefault } ?? devices.first
        guard let chosen else {
            throw ProviderError(
                code: "NO_DEVICE",
                message: "No device is registered with Kaspi: run `kaspi gateway device register --trade-point N` (see `kaspi gateway tradepoints`).")
        }
        do {
            return (chosen, try KaspiQRAPI.DeviceToken(chosen.token))
        } catch {
            throw ProviderError(code: "DEVICE_INVALID", message: "Device \(chosen.id)'s stored token is malformed: register it again.")
        }
    }

    private func client(for device: ProviderDevice) -> KaspiQRAPI.AnyClient {
        let bin = device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }
        return client.acting(for: bin)
    }

    private func state(kind: State.Purchase, paymentID: Int64, device: ProviderDevice, options: KaspiQRAPI.BehaviorOptions) -> State {
        State(
            paymentID: paymentID, device: device.id, organizationBin: device.organizationBin, tradePointID: device.tradePointID, kind: kind,
            createdAt: now(), pollInterval: options.statusPollingInterval, scanTimeout: options.scanTimeout,
            confirmationTimeout: options.confirmationTimeout, firstWaitAt: nil, scannedAfter: nil)
    }

    /// A payment link (`qr/create-link`): the payer opens it; on a phone it hands off to the Kaspi app.
    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        let (device, token) = try await device(forReference: request.merchantReference)
        do {
            let link = try await client(for: device).createLink(device: token, amount: Decimal(request.amount), externalID: request.providerOrderID)
            let state = state(kind: .link, paymentID: link.paymentID, device: device, options: link.options)
            return ProviderPayment(paymentURL: link.paymentLink, providerState: state.encoded, providerPaymentID: String(link.paymentID))
        } catch {
            throw Self.map(error)
        }
    }

    /// A QR purchase (`qr/create`): the gateway draws the token as the QR code.
    public func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        let (device, token) = try await device(forReference: request.merchantReference)
        do {
            let qr = try await client(for: device).createQR(device: token, amount: Decimal(request.amount), externalID: request.providerOrderID)
            let state = state(kind: .qr, paymentID: qr.paymentID, device: device, options: qr.options)
            let png = (try? QRCode(encoding: qr.qrToken).png(scale: 6)) ?? []
            return ProviderQR(token: qr.qrToken, png: png, providerState: state.encoded, providerPaymentID: String(qr.paymentID))
        } catch {
            throw Self.map(error)
        }
    }

    /// Reads the purchase from Kaspi: its status (`payment/status`), and what was refunded where Kaspi reports it.
    public func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        guard var state = State.decode(order.providerState) else {
            // Kaspi's create answer never arrived: its id is unknown, and the payer never saw the
            // QR or link, so nothing can be paid; Kaspi cancels it at its deadline.
            throw ProviderError(
                code: "KASPI_QR_PAYMENT_UNKNOWN", message: "Kaspi's answer to the create call was lost; the payer never received a QR or link.",
                notFound: true)
        }
        let details: KaspiQRAPI.PaymentStatusDetails
        let scoped = client.acting(for: state.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) })
        do { details = try await scoped.status(paymentID: state.paymentID) } catch { throw Self.map(error) }
        var note: String? = nil
        let before = state
        if details.status == .wait, state.firstWaitAt == nil {
            // The scan happened after the last poll that got an answer (it saw none) and
            // before this answer.
            state.firstWaitAt = now()
            state.scannedAfter = max(state.createdAt, order.lastPolledAt ?? state.createdAt)
            note = "the payer scanned or opened it (Wait); confirmation deadline \(ISO8601DateFormatter().string(from: state.deadline))"
        }
        var refunded: Int? = nil
        // Kaspi's record of refunds (`AvailableReturnAmount`), for paid orders on r2 and r3.
        if details.status == .processed, order.state == .paid, client.scheme != .r1,
            let token = try? await device(of: state).1,
            let paid = try? await scoped.paymentDetails(paymentID: state.paymentID, device: token)
        {
            refunded = NSDecimalNumber(decimal: paid.totalAmount - paid.availableReturnAmount).intValue
        }
        return ProviderStatus(
            report: Self.report(details.status), transactionID: details.transactionID, refundedAmount: refunded,
            providerState: state == before ? nil : state.encoded, providerStateNote: note, providerStatus: details.status.rawValue)
    }

    /// Refunds without a customer return: the r3 way.
    public func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        try await refund(order, amount: amount, customerReturnID: nil)
    }

    /// Refunds with a return QR the purchase's customer scanned: the r2 way.
    public func refund(_ order: GatewayOrder, amount: Int, returnID: String) async throws(ProviderError) -> ProviderRefund {
        try await refund(order, amount: amount, customerReturnID: returnID)
    }

    /// r3 refunds without the customer; r2 with a return QR the purchase's customer scanned.
    func refund(_ order: GatewayOrder, amount: Int, customerReturnID: String?) async throws(ProviderError) -> ProviderRefund {
        guard let state = State.decode(order.providerState) else {
            throw ProviderError(code: "KASPI_QR_PAYMENT_UNKNOWN", message: "The order has no Kaspi payment id.", notFound: true)
        }
        if client.scheme == .r1 {
            throw ProviderError(
                code: "REFUND_IN_KASPI_APP", message: "r1 has no refunds through the API: refund in the Kaspi Pay app, then record it.")
        }
        let (device, token) = try await device(of: state)
        let bin = device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }
        do {
            switch client {
            case .r1:
                throw ProviderError(code: "REFUND_IN_KASPI_APP", message: "r1 has no refunds through the API.")
            case .r2(let r2):
                guard let returnID = customerReturnID.flatMap(Int64.init) else {
                    throw ProviderError(code: "REFUND_NEEDS_CUSTOMER", message: "r2 refunds need the customer to scan a return QR.")
                }
                let refund = try await r2.refund(device: token, paymentID: state.paymentID, returnID: returnID, amount: Decimal(amount))
                return ProviderRefund(refundID: "kaspi-\(refund.returnOperationID)")
            case .r3(let r3):
                let scoped = bin.map { r3.acting(for: $0) } ?? r3
                let refund = try await scoped.refund(device: token, paymentID: state.paymentID, amount: Decimal(amount))
                return ProviderRefund(refundID: "kaspi-\(refund.returnOperationID)")
            }
        } catch let error as KaspiQRAPI.APIError {
            throw Self.map(error)
        } catch let error as ProviderError {
            throw error
        } catch {
            throw ProviderError(code: "REFUND_FAILED", message: "The refund failed.")
        }
    }

    /// r2: a return QR from the default device.
    public func createCustomerReturn() async throws(ProviderError) -> ProviderCustomerReturn {
        guard case .r2(let r2) = client else { throw .customerReturnsUnsupported }
        let (_, token) = try await device(forReference: nil)
        do {
            let created = try await r2.createReturn(device: token)
            let png = (try? QRCode(encoding: created.qrToken).png(scale: 6)) ?? []
            return ProviderCustomerReturn(
                id: String(created.returnID), qrToken: created.qrToken, png: png, expiresAt: created.expireDate,
                pollingInterval: created.pollingInterval)
        } catch {
            throw Self.map(error)
        }
    }

    /// r2: the return's status, and the customer's purchases once they scanned.
    public func customerReturn(id: String) async throws(ProviderError) -> ProviderCustomerReturnStatus {
        guard case .r2(let r2) = client else { throw .customerReturnsUnsupported }
        guard let returnID = Int64(id) else { throw ProviderError(code: "RETURN_NOT_FOUND", message: "No return \(id).", notFound: true) }
        let (_, token) = try await device(forReference: nil)
        do {
            let status = try await r2.returnStatus(returnID: returnID)
            var purchases: [ProviderCustomerReturnStatus.Purchase] = []
            if status == .customerIdentityObtained {
                purchases = try await r2.returnOperations(device: token, returnID: returnID).map {
                    .init(providerPaymentID: String($0.paymentID), amount: $0.amount, at: $0.transactionDate)
                }
            }
            return ProviderCustomerReturnStatus(status: status.rawValue, identified: status == .customerIdentityObtained, purchases: purchases)
        } catch {
            throw Self.map(error)
        }
    }

    /// The default device's r3 client, for the remote-invoice calls.
    private func remoteClient() async throws(ProviderError) -> (KaspiQRAPI.Client<KaspiQRAPI.R3>, ProviderDevice, KaspiQRAPI.DeviceToken) {
        guard case .r3(let r3) = client else { throw .remoteInvoicesUnsupported }
        let (device, token) = try await device(forReference: nil)
        let scoped = device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }.map { r3.acting(for: $0) } ?? r3
        return (scoped, device, token)
    }

    /// The client a phone number belongs to (`remote/client-info`, r3).
    public func clientName(phoneNumber: String) async throws(ProviderError) -> String {
        let (r3, _, token) = try await remoteClient()
        do { return try await r3.clientInfo(phoneNumber: phoneNumber, device: token).clientName } catch { throw Self.map(error) }
    }

    /// A remote invoice (`remote/create`), payable for 24 hours. It is read only on a user
    /// action, and once at its end (``pollPlan(for:now:)``), never on a timer.
    public func createRemoteInvoice(
        _ request: ProviderPaymentRequest, phoneNumber: String, comment: String?
    ) async throws(ProviderError) -> ProviderPayment {
        guard case .r3(let r3) = client else { throw .remoteInvoicesUnsupported }
        let (device, token) = try await device(forReference: request.merchantReference)
        let scoped = device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }.map { r3.acting(for: $0) } ?? r3
        do {
            let invoice = try await scoped.createRemoteInvoice(
                device: token, phoneNumber: phoneNumber, amount: Decimal(request.amount), comment: comment)
            let state = State(
                paymentID: invoice.paymentID, device: device.id, organizationBin: device.organizationBin, tradePointID: device.tradePointID,
                kind: .remote, createdAt: now(), pollInterval: Self.remoteLifetime, scanTimeout: Self.remoteLifetime,
                confirmationTimeout: Self.remoteLifetime, firstWaitAt: nil, scannedAfter: nil)
            return ProviderPayment(paymentURL: "", providerState: state.encoded, providerPaymentID: String(invoice.paymentID))
        } catch {
            throw Self.map(error)
        }
    }

    /// 24 hours, plus a minute for Kaspi to close it.
    static let remoteLifetime = 86_400 + 60

    /// Cancels an unpaid remote invoice (`remote/cancel`, r3).
    public func cancelRemoteInvoice(_ order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        guard case .r3(let r3) = client else { throw .remoteInvoicesUnsupported }
        guard let state = State.decode(order.providerState), state.kind == .remote else {
            throw ProviderError(
                code: "NOT_A_REMOTE_INVOICE",
                message: "Only remote invoices can be cancelled; QR and link purchases cancel themselves at their deadline.")
        }
        let (device, token) = try await device(of: state)
        let scoped = device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }.map { r3.acting(for: $0) } ?? r3
        do {
            let status = try await scoped.cancelRemoteInvoice(device: token, paymentID: state.paymentID)
            return ProviderStatus(report: Self.report(status), transactionID: nil, providerStatus: status.rawValue)
        } catch {
            throw Self.map(error)
        }
    }

    /// Kaspi's polling interval and the running deadline (scan, then confirmation), from the order's stored state.
    public func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? {
        guard let state = State.decode(order.providerState) else { return nil }
        return Self.plan(for: state, lastPolledAt: order.lastPolledAt, now: now, jitter: random())
    }

    /// The plan for a purchase: pure, so the polling policy's properties can be checked on it.
    ///
    /// - Parameter jitter: from 0 to 1; up to a tenth of the interval is added, so that orders
    ///   created together do not poll together.
    static func plan(for state: State, lastPolledAt: Date?, now: Date, jitter: Double) -> ProviderPollPlan {
        if state.kind == .remote {
            // Never on a timer: one read when the invoice's 24 hours are over, no late polls.
            let end = state.createdAt.addingTimeInterval(TimeInterval(Self.remoteLifetime))
            return ProviderPollPlan(nextPollAt: max(now, end), deadline: end, phase: "invoice", latePolls: false, earliestEnd: end)
        }
        let interval = TimeInterval(max(1, state.pollInterval))
        let next = now.addingTimeInterval(interval * (1 + 0.1 * min(1, max(0, jitter))))
        let deadline = state.deadline
        return ProviderPollPlan(
            nextPollAt: min(next, max(now, deadline)), deadline: deadline, phase: state.firstWaitAt == nil ? "scan" : "confirmation",
            earliestEnd: state.earliestEnd(lastPolledAt: lastPolledAt))
    }

    /// The trade points of the configured organization, for the dashboard.
    public func tradePoints() async throws(ProviderError) -> [KaspiQRAPI.TradePoint] {
        do { return try await client.tradePoints() } catch { throw Self.map(error) }
    }

    /// Kaspi's payment id of an order, for the dashboard and the API.
    public static func paymentID(of order: GatewayOrder) -> Int64? { State.decode(order.providerState)?.paymentID }
}

/// The registered devices, read from the store and kept for a few seconds.
final class DeviceDirectory: Sendable {
    private let load: @Sendable () async throws -> [ProviderDevice]
    private let cache = Mutex<(devices: [ProviderDevice], at: Date)?>(nil)

    init(load: @escaping @Sendable () async throws -> [ProviderDevice]) { self.load = load }

    func current() async throws -> [ProviderDevice] {
        if let cached = cache.withLock({ $0 }), Date().timeIntervalSince(cached.at) < 5 { return cached.devices }
        let devices = try await load()
        cache.withLock { $0 = (devices, Date()) }
        return devices
    }

    /// Forgets the cache (after a device was registered or deleted).
    func invalidate() { cache.withLock { $0 = nil } }
}
