import Foundation
import KaspiPay
import Logging

/// A Kaspi QR API purchase in the sandbox: a QR, a link or a remote invoice.
public struct SandboxQRPurchase: Sendable, Codable, Hashable {
    /// How the purchase is paid: a QR code, a payment link, or a remote invoice to a phone.
    public enum Kind: String, Sendable, Codable { case qr, link, remote }
    /// `QrPaymentId` / `PaymentId`.
    public var id: Int64
    /// A QR code, a link or a remote invoice.
    public var kind: Kind
    /// The organization's BIN.
    public var organizationBin: String
    /// The trade point of the device that created it.
    public var tradePointID: Int64
    /// The device that created it.
    public var deviceToken: String
    /// The amount, in tenge (Kaspi allows tiyn).
    public var amount: Decimal
    /// The partner's `ExternalId`, when sent.
    public var externalID: String?
    /// The 41-digit token (QR content, and the link's last segment); nil for remote invoices.
    public var token: String?
    /// Kaspi's status for it, as `payment/status` reports it.
    public var status: KaspiQRAPI.PaymentStatus
    /// When it was created, in sandbox time.
    public var createdAt: Date
    /// When it was first scanned (`Wait`): the confirmation deadline runs from here.
    public var firstWaitAt: Date?
    /// When it reached `Processed` or `Error`.
    public var finishedAt: Date?
    /// Why it ended in `Error`, for the page and the helpers.
    public var errorReason: String?
    /// v02's `TransactionId`, once processed.
    public var transactionID: String?
    /// `Gold`, `Red` or `Loan`, once processed.
    public var productType: String?
    /// The payer: a phone number.
    public var customer: String?
    /// Remote invoices: the billed number and comment.
    public var phoneNumber: String?
    /// The remote invoice's comment, shown to the payer.
    public var comment: String?
    /// The timings handed out at creation.
    public var scanTimeout: Int
    /// Seconds to confirm after the scan.
    public var confirmationTimeout: Int
    /// Seconds between status reads, as Kaspi asks.
    public var pollingInterval: Int
    /// Its refunds, oldest first.
    public var refunds: [SandboxQRRefund] = []
    /// The last status read (remote invoices' anti-abuse check).
    public var lastStatusReadAt: Date?

    /// What can still be refunded.
    public var availableReturnAmount: Decimal {
        guard status == .processed else { return 0 }
        return amount - refunds.reduce(Decimal(0)) { $0 + $1.amount }
    }

    /// `ExpireDate`: creation plus the scan (or link activation, or invoice) timeout.
    public var expireDate: Date { createdAt.addingTimeInterval(TimeInterval(scanTimeout)) }

    enum CodingKeys: String, CodingKey {
        case id
        case kind
        case organizationBin
        case tradePointID = "tradePointId"
        case deviceToken
        case amount
        case externalID = "externalId"
        case token
        case status
        case createdAt
        case firstWaitAt
        case finishedAt
        case errorReason
        case transactionID = "transactionId"
        case productType
        case customer
        case phoneNumber
        case comment
        case scanTimeout
        case confirmationTimeout
        case pollingInterval
        case refunds
        case lastStatusReadAt
    }
}

/// A refund (`payment/return`) of a purchase.
public struct SandboxQRRefund: Sendable, Codable, Hashable {
    /// `ReturnOperationId`.
    public var id: Int64
    /// The amount refunded, in tenge.
    public var amount: Decimal
    /// When it was made, in sandbox time.
    public var at: Date
    /// The device that asked for it.
    public var deviceToken: String
    /// r2's `QrReturnId`; nil for r3.
    public var returnID: Int64?

    enum CodingKeys: String, CodingKey {
        case id
        case amount
        case at
        case deviceToken
        case returnID = "returnId"
    }
}

/// An r2 return QR.
public struct SandboxQRReturn: Sendable, Codable, Hashable {
    /// `QrReturnId`.
    public var id: Int64
    /// The organization's BIN.
    public var organizationBin: String
    /// The trade point of the device that created it.
    public var tradePointID: Int64
    /// The device that created it.
    public var deviceToken: String
    /// What the return QR holds.
    public var token: String
    /// The partner's `ExternalId`, when sent.
    public var externalID: String?
    /// Kaspi's status for it, as `return/status` reports it.
    public var status: KaspiQRAPI.ReturnStatus
    /// When it was created, in sandbox time.
    public var createdAt: Date
    /// Seconds the customer has to scan it.
    public var scanTimeout: Int
    /// Who scanned it.
    public var customer: String?

    enum CodingKeys: String, CodingKey {
        case id
        case organizationBin
        case tradePointID = "tradePointId"
        case deviceToken
        case token
        case externalID = "externalId"
        case status
        case createdAt
        case scanTimeout
        case customer
    }
}

/// A registered device.
public struct SandboxQRDevice: Sendable, Codable, Hashable {
    /// The device token Kaspi issued.
    public var token: String
    /// The partner's name for the device (`DeviceId`).
    public var deviceID: String
    /// The organization's BIN.
    public var organizationBin: String
    /// The trade point it belongs to.
    public var tradePointID: Int64
    /// False once deleted: it takes no new purchase.
    public var active: Bool

    enum CodingKeys: String, CodingKey {
        case token
        case deviceID = "deviceId"
        case organizationBin
        case tradePointID = "tradePointId"
        case active
    }
}

/// Faults injected into one organization's Kaspi QR API calls.
public struct SandboxQRFaults: Sendable, Codable, Hashable {
    /// The next N calls answer `-999` without effect.
    public var failNext: Int = 0
    /// The next N creates or refunds take effect, but their answer is lost (HTTP 502, no body).
    public var loseResponseNext: Int = 0
    /// The next N refunds answer `-99000006` without effect.
    public var refundFailNext: Int = 0
    /// Creates answer `990000033` (no payment methods) while set.
    public var noPaymentMethods: Bool = false
    /// Milliseconds added to every call.
    public var latencyMs: Int = 0

    /// No faults.
    public init() {}

    enum CodingKeys: String, CodingKey { case failNext, loseResponseNext, refundFailNext, noPaymentMethods, latencyMs }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        failNext = try c.decodeIfPresent(Int.self, forKey: .failNext) ?? 0
        loseResponseNext = try c.decodeIfPresent(Int.self, forKey: .loseResponseNext) ?? 0
        refundFailNext = try c.decodeIfPresent(Int.self, forKey: .refundFailNext) ?? 0
        noPaymentMethods = try c.decodeIfPresent(Bool.self, forKey: .noPaymentMethods) ?? false
        latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
    }
}

/// Why a QR API call is answered with a Kaspi error.
struct QRAPIFailure: Error {
    var code: Int
    var message: String
    var httpStatus: Int = 200

    init(_ code: Int, _ message: String, httpStatus: Int = 200) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }

    static let notAuthenticated = QRAPIFailure(-10000, "No valid client certificate or Api-Key.")
    static func deviceNotFound() -> QRAPIFailure { QRAPIFailure(-1501, "Device not found.") }
    static func purchaseNotFound() -> QRAPIFailure { QRAPIFailure(-1601, "Purchase not found.") }
}

/// The sandbox's Kaspi QR API state: organizations, devices, purchases, returns, refunds.
actor QRAPIState {
    let configuration: SandboxQRAPIConfiguration
    let clock: SandboxClock
    let persistence: (any SandboxPersistence)?
    let logger: Logger

    private var devices: [String: SandboxQRDevice] = [:]
    private var deviceByDeviceID: [String: String] = [:]  // "bin/deviceId" -> token
    /// The purchases in memory: the recent ones and those not yet on disk. Every other
    /// purchase is in the archive and is read back when asked for.
    private var purchases: [Int64: Resident] = [:]
    /// The tokens of the purchases in memory.
    private var purchaseByToken: [String: Int64] = [:]
    /// The order in which purchases were taken in, oldest first (entries whose stamp no longer
    /// matches are stale); `evictionHead` is the next to look at.
    private var evictionQueue: [(id: Int64, stamp: Int)] = []
    private var evictionHead = 0
    private var nextStamp = 0
    /// The purchases on disk.
    private let archive: QRPurchaseArchive
    /// How many purchases memory holds at most.
    let residentLimit: Int
    /// Writes of purchases queued to the persistence, numbered; `writeProgress` has the last one done.
    private var writeCount = 0
    private let writeProgress = WriteProgress()
    /// Whether the archive cannot take purchases any more (a write failed): nothing leaves memory.
    private var archiveBroken = false
    private var returns: [Int64: SandboxQRReturn] = [:]
    private var nextID: Int64 = 12_000_000_000
    private var faults: [String: SandboxQRFaults] = [:]
    private var clientInfoCalls: [String: [Date]] = [:]
    private var writeChain: Task<Void, any Error>? = nil

    /// The payer who pays through the test endpoints and the page unless told otherwise.
    static let defaultCustomer = "77010000001"

    /// A purchase in memory, with where its last version stands and its place in the eviction queue.
    private struct Resident {
        var purchase: SandboxQRPurchase
        /// 0: the archive holds this version; n > 0: the persistence's write number n holds it
        /// once done; ``Resident/unwritten``: only memory holds it (no data file: it is written
        /// to the archive when it leaves memory).
        var write: Int
        var stamp: Int
        static let unwritten = -1
    }

    init(
        configuration: SandboxQRAPIConfiguration, clock: SandboxClock, persistence: (any SandboxPersistence)?, archive: QRPurchaseArchive,
        residentLimit: Int = 5_000, logger: Logger
    ) {
        self.configuration = configuration
        self.clock = clock
        self.persistence = persistence
        self.archive = archive
        self.residentLimit = max(1, residentLimit)
        self.logger = logger
    }

    // MARK: Persistence

    func restore() async throws {
        guard let persistence else { return }
        let records = try await persistence.loadQRRecords()
        for device in records.devices {
            devices[device.token] = device
            deviceByDeviceID[device.organizationBin + "/" + device.deviceID] = device.token
        }
        // Purchases stay on disk until asked for; only the identifiers they used are needed.
        nextID = max(nextID, try archive.largestIdentifier() + 1)
        for item in records.returns {
            returns[item.id] = item
            nextID = max(nextID, item.id + 1)
        }
    }

    /// Queues a write after the previous one, so that writes land in the order of changes.
    private func persist(_ work: @escaping @Sendable (any SandboxPersistence) async throws -> Void) {
        guard let persistence else { return }
        let previous = writeChain
        writeChain = Task {
            _ = await previous?.result
            try await work(persistence)
        }
    }

    private func persist(_ device: SandboxQRDevice) { persist { try await $0.save(qrDevice: device) } }
    /// Queues a purchase's write; its number is marked done once it is on disk.
    private func persist(_ purchase: SandboxQRPurchase, number: Int) {
        let progress = writeProgress
        persist { persistence in
            do {
                try await persistence.save(qrPurchase: purchase)
                progress.finished(number)
            } catch {
                progress.failed(number)
                throw error
            }
        }
    }
    private func persist(_ item: SandboxQRReturn) { persist { try await $0.save(qrReturn: item) } }

    /// Waits until every change so far is on disk.
    func waitForWrites() async throws {
        try await writeChain?.value
    }

    // MARK: Lookups

    func organization(apiKey: String) -> SandboxQRAPIConfiguration.Organization? {
        configuration.organizations.first { constantTimeEquals($0.apiKey, apiKey) }
    }

    func organization(bin: String) -> SandboxQRAPIConfiguration.Organization? {
        configuration.organizations.first { $0.bin == bin }
    }

    func tradePoint(_ id: Int64) -> (SandboxQRAPIConfiguration.Organization, SandboxQRAPIConfiguration.TradePoint)? {
        for org in configuration.organizations {
            if let point = org.tradePoints.first(where: { $0.id == id }) { return (org, point) }
        }
        return nil
    }

    private func nextIdentifier() -> Int64 {
        nextID += 1
        return nextID
    }

    private static func digits(_ count: Int) -> String {
        var out = String((1...9).randomElement() ?? 5)
        for _ in 1..<max(1, count) { out += String(Int.random(in: 0...9)) }
        return out
    }

    // MARK: Faults

    func setFaults(_ faults: SandboxQRFaults, bin: String) { self.faults[bin] = faults }

    func faults(bin: String) -> SandboxQRFaults { faults[bin] ?? SandboxQRFaults() }

    /// Takes an injected failure for a call, if one is due.
    func takeFailure(bin: String) -> Bool {
        guard var f = faults[bin], f.failNext > 0 else { return false }
        f.failNext -= 1
        faults[bin] = f
        return true
    }

    func takeLostResponse(bin: String) -> Bool {
        guard var f = faults[bin], f.loseResponseNext > 0 else { return false }
        f.loseResponseNext -= 1
        faults[bin] = f
        return true
    }

    private func takeRefundFailure(bin: String) -> Bool {
        guard var f = faults[bin], f.refundFailNext > 0 else { return false }
        f.refundFailNext -= 1
        faults[bin] = f
        return true
    }

    func latency(bin: String) -> Int { faults[bin]?.latencyMs ?? 0 }

    // MARK: Devices

    func register(deviceID: String, tradePointID: Int64, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRDevice {
        guard let (org, point) = tradePoint(tradePointID), bins.contains(org.bin) else {
            throw QRAPIFailure(-99_000_002, "Trade point not found.")
        }
        guard point.acceptsQR else { throw QRAPIFailure(990_000_026, "The trade point does not accept QR payments.") }
        let key = org.bin + "/" + deviceID
        if let token = deviceByDeviceID[key], var device = devices[token] {
            guard device.tradePointID == tradePointID else {
                throw QRAPIFailure(-1503, "The device is already added to another trade point.")
            }
            if !device.active {
                device.active = true
                devices[token] = device
                persist(device)
            }
            return device
        }
        let device = SandboxQRDevice(
            token: UUID().uuidString.lowercased(), deviceID: deviceID, organizationBin: org.bin, tradePointID: tradePointID, active: true)
        devices[device.token] = device
        deviceByDeviceID[key] = device.token
        persist(device)
        return device
    }

    /// The device of a token, checked: known (-1501), of an allowed organization, active (-1502).
    func device(_ token: String, bins: Set<String>, requireActive: Bool = true) throws(QRAPIFailure) -> SandboxQRDevice {
        guard let device = devices[token], bins.contains(device.organizationBin) else { throw .deviceNotFound() }
        if requireActive, !device.active { throw QRAPIFailure(-1502, "The device is not active.") }
        return device
    }

    func delete(token: String, bins: Set<String>) throws(QRAPIFailure) {
        var device = try device(token, bins: bins)
        device.active = false
        devices[token] = device
        persist(device)
    }

    private func usableTradePoint(of device: SandboxQRDevice, forQR: Bool) throws(QRAPIFailure) {
        guard let (_, point) = tradePoint(device.tradePointID) else { throw QRAPIFailure(-99_000_002, "Trade point not found.") }
        guard point.enabled else { throw QRAPIFailure(990_000_018, "The trade point is disabled.") }
        if forQR, !point.acceptsQR { throw QRAPIFailure(990_000_026, "The trade point does not accept QR payments.") }
    }

    // MARK: Purchases in memory and on disk

    /// Stores a new or changed purchase: in memory now, and on disk through the persistence
    /// (queued, awaited before the answer); with no data file, in the archive when it leaves
    /// memory (many at once, in one transaction).
    private func store(_ purchase: SandboxQRPurchase) {
        var write = Resident.unwritten
        if persistence != nil {
            writeCount += 1
            write = writeCount
            persist(purchase, number: write)
        }
        take(purchase, write: write)
    }

    /// Puts a purchase in memory (or updates it there) with its last write's number.
    private func take(_ purchase: SandboxQRPurchase, write: Int) {
        if var resident = purchases[purchase.id] {
            resident.purchase = purchase
            resident.write = write
            purchases[purchase.id] = resident
        } else {
            nextStamp += 1
            purchases[purchase.id] = Resident(purchase: purchase, write: write, stamp: nextStamp)
            evictionQueue.append((purchase.id, nextStamp))
        }
        if let token = purchase.token { purchaseByToken[token] = purchase.id }
        evict()
    }

    /// Lets go of the oldest purchases beyond the limit that are on disk (or, with no data
    /// file, are written to the archive now, together).
    private func evict() {
        guard purchases.count > residentLimit, !archiveBroken, !writeProgress.stopped else { return }
        let done = writeProgress.done
        // Down to a little below the limit, so that purchases leave in groups.
        let target = residentLimit - min(256, residentLimit / 8)
        var leaving: [(purchase: SandboxQRPurchase, unwritten: Bool)] = []
        var looked = 0
        while purchases.count - leaving.count > target, evictionHead < evictionQueue.count, looked < 1024 {
            looked += 1
            let (id, stamp) = evictionQueue[evictionHead]
            evictionHead += 1
            guard let resident = purchases[id], resident.stamp == stamp else { continue }
            let unwritten = resident.write == Resident.unwritten
            guard unwritten || resident.write == 0 || resident.write <= done else {
                // Not on disk yet: look again later.
                nextStamp += 1
                purchases[id]?.stamp = nextStamp
                evictionQueue.append((id, nextStamp))
                continue
            }
            leaving.append((resident.purchase, unwritten))
        }
        let unwritten = leaving.filter(\.unwritten).map(\.purchase)
        if !unwritten.isEmpty {
            do {
                try archive.save(unwritten)
            } catch {
                // They stay in memory for good, and so does everything after them.
                logger.error("The sandbox could not write QR purchases aside; they stay in memory", metadata: ["error": "\(error)"])
                archiveBroken = true
                for (purchase, _) in leaving {
                    nextStamp += 1
                    purchases[purchase.id]?.stamp = nextStamp
                    evictionQueue.append((purchase.id, nextStamp))
                }
                return
            }
        }
        for (purchase, _) in leaving {
            purchases[purchase.id] = nil
            if let token = purchase.token { purchaseByToken[token] = nil }
        }
        if evictionHead > 4096, evictionHead * 2 > evictionQueue.count {
            evictionQueue.removeFirst(evictionHead)
            evictionHead = 0
        }
    }

    /// A purchase from memory, or from the archive (then kept in memory a while).
    private func stored(_ id: Int64) -> SandboxQRPurchase? {
        if let resident = purchases[id] { return resident.purchase }
        return fromArchive { try $0.purchase(id: id) }
    }

    private func fromArchive(_ read: (QRPurchaseArchive) throws -> SandboxQRPurchase?) -> SandboxQRPurchase? {
        let found: SandboxQRPurchase?
        do {
            found = try read(archive)
        } catch {
            logger.error("The sandbox could not read its QR purchase archive", metadata: ["error": "\(error)"])
            return nil
        }
        guard let found else { return nil }
        if let resident = purchases[found.id] { return resident.purchase }
        take(found, write: 0)
        return found
    }

    /// How many purchases are in memory now (the rest are in the archive).
    var residentPurchaseCount: Int { purchases.count }

    /// How many purchases there are: the archive's and those only memory holds.
    func purchaseCount() -> Int {
        guard let onDisk = try? archive.count() else { return -1 }
        // With a data file every purchase is on disk once its write is done (stats wait for them).
        guard archive.writable else { return onDisk }
        let onlyInMemory = purchases.values.count { resident in
            resident.write == Resident.unwritten && (try? archive.contains(id: resident.purchase.id)) == false
        }
        return onDisk + onlyInMemory
    }

    // MARK: Purchases

    /// Applies the deadlines that have passed: an unscanned token dies, an unconfirmed
    /// purchase is cancelled, an unpaid invoice expires.
    private func refreshed(_ id: Int64) -> SandboxQRPurchase? {
        guard let purchase = stored(id) else { return nil }
        return refreshed(purchase)
    }

    private func refreshed(_ stored: SandboxQRPurchase) -> SandboxQRPurchase {
        var purchase = stored
        let now = clock.now
        var reason: String? = nil
        switch purchase.status {
        case .qrTokenCreated where now >= purchase.expireDate:
            reason = purchase.kind == .link ? "The link was not opened in time." : "The QR code was not scanned in time."
        case .wait:
            let start = purchase.firstWaitAt ?? purchase.createdAt
            if now >= start.addingTimeInterval(TimeInterval(purchase.confirmationTimeout)) {
                reason = "The payer did not confirm in time; Kaspi cancelled the purchase."
            }
        case .remotePaymentCreated where now >= purchase.expireDate:
            reason = "The invoice was not paid within its lifetime."
        default: break
        }
        if let reason {
            purchase.status = .error
            purchase.errorReason = reason
            purchase.finishedAt = now
            store(purchase)
        }
        return purchase
    }

    func create(
        kind: SandboxQRPurchase.Kind, device token: String, amount: Decimal, externalID: String?, bins: Set<String>, organizationBin: String?
    )
        throws(QRAPIFailure) -> SandboxQRPurchase
    {
        let device = try device(token, bins: bins)
        if let organizationBin, organizationBin != device.organizationBin { throw .deviceNotFound() }
        try usableTradePoint(of: device, forQR: true)
        guard amount > 0, amount.hasAtMostTwoDecimals, amount < 1_000_000_000_000 else {
            throw QRAPIFailure(990_000_028, "Invalid operation amount.")
        }
        if faults[device.organizationBin]?.noPaymentMethods == true {
            throw QRAPIFailure(990_000_033, "No payment methods are available.")
        }
        let id = nextIdentifier()
        let token = Self.digits(41)
        let purchase = SandboxQRPurchase(
            id: id, kind: kind, organizationBin: device.organizationBin, tradePointID: device.tradePointID, deviceToken: device.token,
            amount: amount, externalID: externalID, token: token, status: .qrTokenCreated, createdAt: clock.now,
            scanTimeout: kind == .link ? configuration.linkActivationWaitTimeout : configuration.qrCodeScanWaitTimeout,
            confirmationTimeout: configuration.paymentConfirmationTimeout, pollingInterval: configuration.statusPollingInterval)
        store(purchase)
        return purchase
    }

    /// A purchase visible to these organizations, with its deadlines applied.
    func purchase(_ id: Int64, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRPurchase {
        guard let purchase = refreshed(id), bins.contains(purchase.organizationBin) else { throw .purchaseNotFound() }
        return purchase
    }

    /// A status read: refuses timer-driven reads of remote invoices.
    func readStatus(_ id: Int64, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRPurchase {
        var purchase = try purchase(id, bins: bins)
        if purchase.kind == .remote {
            let now = clock.now
            if let last = purchase.lastStatusReadAt, now.timeIntervalSince(last) < configuration.remoteStatusMinInterval {
                throw QRAPIFailure(
                    -999, "Status requests for remote invoices on a timer are refused (anti-abuse): read the status on a user action.")
            }
            purchase.lastStatusReadAt = now
            store(purchase)
        }
        return purchase
    }

    func purchase(token: String) -> SandboxQRPurchase? {
        if let id = purchaseByToken[token] { return refreshed(id) }
        return fromArchive { try $0.purchase(token: token) }.map { refreshed($0) }
    }

    func purchase(id: Int64) -> SandboxQRPurchase? { refreshed(id) }

    /// Every purchase, oldest first, with deadlines applied: those on disk and those in memory
    /// (the newer version where both hold one).
    func allPurchases(bin: String? = nil) -> [SandboxQRPurchase] {
        var all: [Int64: SandboxQRPurchase] = [:]
        do {
            for purchase in try archive.all() { all[purchase.id] = purchase }
        } catch {
            logger.error("The sandbox could not read its QR purchase archive", metadata: ["error": "\(error)"])
        }
        for (id, resident) in purchases { all[id] = resident.purchase }
        return all.keys.sorted().compactMap { all[$0] }.filter { bin == nil || $0.organizationBin == bin }.map { refreshed($0) }
    }

    func allDevices() -> [SandboxQRDevice] { devices.values.sorted { $0.token < $1.token } }

    func allReturns() -> [SandboxQRReturn] { returns.keys.sorted().compactMap { refreshedReturn($0) } }

    /// The payer's actions, from the test endpoints, the page and the helpers.
    enum Action: String, CaseIterable, Sendable {
        case scan, confirm, scanerror, confirmerror
    }

    func act(
        _ action: Action, id: Int64, bins: Set<String>?, customer: String? = nil, productType: String? = nil
    ) throws(QRAPIFailure) -> SandboxQRPurchase {
        guard var purchase = refreshed(id), bins?.contains(purchase.organizationBin) ?? true else { throw .purchaseNotFound() }
        let now = clock.now
        func refuse(_ needs: String) -> QRAPIFailure {
            QRAPIFailure(-99_000_011, "The purchase is \(purchase.status); \(action.rawValue) needs \(needs).")
        }
        switch action {
        case .scan:
            guard purchase.status == .qrTokenCreated || purchase.status == .remotePaymentCreated else { throw refuse("QrTokenCreated") }
            purchase.status = .wait
            purchase.firstWaitAt = purchase.firstWaitAt ?? now
        case .confirm:
            guard purchase.status == .wait || purchase.status == .remotePaymentCreated else { throw refuse("Wait") }
            purchase.status = .processed
            purchase.finishedAt = now
            purchase.transactionID = Self.digits(9)
            purchase.productType = productType ?? "Gold"
            purchase.customer = purchase.phoneNumber ?? customer ?? Self.defaultCustomer
        case .scanerror:
            guard [.qrTokenCreated, .wait, .remotePaymentCreated].contains(purchase.status) else { throw refuse("QrTokenCreated") }
            purchase.status = .error
            purchase.errorReason = "The scan failed (test action)."
            purchase.finishedAt = now
        case .confirmerror:
            guard purchase.status == .wait else { throw refuse("Wait (after a scan)") }
            purchase.status = .error
            purchase.errorReason = "The confirmation failed (test action)."
            purchase.finishedAt = now
        }
        store(purchase)
        return purchase
    }

    // MARK: Returns (r2)

    private func refreshedReturn(_ id: Int64) -> SandboxQRReturn? {
        guard var item = returns[id] else { return nil }
        if item.status == .qrTokenCreated, clock.now >= item.createdAt.addingTimeInterval(TimeInterval(item.scanTimeout)) {
            item.status = .error
            returns[id] = item
            persist(item)
        }
        return item
    }

    func createReturn(device token: String, externalID: String?, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRReturn {
        let device = try device(token, bins: bins)
        try usableTradePoint(of: device, forQR: false)
        let item = SandboxQRReturn(
            id: nextIdentifier(), organizationBin: device.organizationBin, tradePointID: device.tradePointID, deviceToken: device.token,
            token: Self.digits(41), externalID: externalID, status: .qrTokenCreated, createdAt: clock.now,
            scanTimeout: configuration.returnScanWaitTimeout)
        returns[item.id] = item
        persist(item)
        return item
    }

    func returnQR(_ id: Int64, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRReturn {
        guard let item = refreshedReturn(id), bins.contains(item.organizationBin) else { throw .purchaseNotFound() }
        return item
    }

    /// The customer scans a return QR (a sandbox extension: Kaspi has no such call).
    func scanReturn(_ id: Int64, customer: String?) throws(QRAPIFailure) -> SandboxQRReturn {
        guard var item = refreshedReturn(id) else { throw .purchaseNotFound() }
        guard item.status == .qrTokenCreated else {
            throw QRAPIFailure(-99_000_011, "The return QR is \(item.status); a scan needs QrTokenCreated.")
        }
        item.status = .customerIdentityObtained
        item.customer = customer ?? Self.defaultCustomer
        returns[id] = item
        persist(item)
        return item
    }

    func returnOperations(device token: String, returnID: Int64, maxResult: Int, bins: Set<String>) throws(QRAPIFailure) -> [SandboxQRPurchase] {
        let device = try device(token, bins: bins)
        let item = try returnQR(returnID, bins: bins)
        guard item.status == .customerIdentityObtained, let customer = item.customer else { return [] }
        // The payer's purchases on disk and in memory (the newer version where both hold one).
        var theirs: [Int64: SandboxQRPurchase] = [:]
        do {
            for purchase in try archive.purchases(customer: customer) { theirs[purchase.id] = purchase }
        } catch {
            logger.error("The sandbox could not read its QR purchase archive", metadata: ["error": "\(error)"])
        }
        for (id, resident) in purchases where resident.purchase.customer == customer { theirs[id] = resident.purchase }
        return theirs.values.filter { $0.organizationBin == device.organizationBin && $0.customer == customer && $0.status == .processed }
            .sorted { ($0.finishedAt ?? $0.createdAt) > ($1.finishedAt ?? $1.createdAt) }
            .prefix(maxResult).map { $0 }
    }

    // MARK: Refunds

    func refund(
        device token: String, paymentID: Int64, amount: Decimal, returnID: Int64?, organizationBin: String?, bins: Set<String>
    )
        throws(QRAPIFailure) -> (SandboxQRPurchase, SandboxQRRefund)
    {
        let device = try device(token, bins: bins)
        if let organizationBin, organizationBin != device.organizationBin { throw .deviceNotFound() }
        guard var purchase = refreshed(paymentID), purchase.organizationBin == device.organizationBin else { throw .purchaseNotFound() }
        guard purchase.tradePointID == device.tradePointID else {
            throw QRAPIFailure(-99_000_003, "The purchase's trade point does not match this device's.")
        }
        try usableTradePoint(of: device, forQR: false)
        guard purchase.status == .processed else {
            throw QRAPIFailure(-99_000_011, "The purchase is \(purchase.status); only a Processed purchase can be refunded.")
        }
        if let returnID {
            let item = try returnQR(returnID, bins: bins)
            guard item.status == .customerIdentityObtained, item.customer == purchase.customer else {
                throw QRAPIFailure(-99_000_001, "No purchase with this id for the customer of this return.")
            }
        }
        guard amount > 0, amount.hasAtMostTwoDecimals else { throw QRAPIFailure(990_000_028, "Invalid operation amount.") }
        guard amount <= purchase.availableReturnAmount else {
            throw QRAPIFailure(-99_000_005, "The refund exceeds the purchase's available amount.")
        }
        if purchase.productType == "Loan", amount != purchase.availableReturnAmount {
            throw QRAPIFailure(-99_000_020, "A partial refund of a loan purchase is not possible.")
        }
        if takeRefundFailure(bin: device.organizationBin) {
            throw QRAPIFailure(-99_000_006, "The refund failed; retry (sandbox fault injection).")
        }
        let refund = SandboxQRRefund(id: nextIdentifier(), amount: amount, at: clock.now, deviceToken: device.token, returnID: returnID)
        purchase.refunds.append(refund)
        store(purchase)
        return (purchase, refund)
    }

    // MARK: Remote invoices (r3)

    /// Kaspi clients by phone number: every valid number is a client, except numbers ending
    /// in 0000 (no Kaspi client, -1404).
    static func clientName(phone: String) throws(QRAPIFailure) -> String {
        guard phone.utf8.count == 11, phone.utf8.allSatisfy({ (48...57).contains($0) }), phone.hasPrefix("7") || phone.hasPrefix("8") else {
            throw QRAPIFailure(-1401, "The phone number is malformed.")
        }
        guard !phone.hasSuffix("0000") else { throw QRAPIFailure(-1404, "No Kaspi client has this phone number.") }
        let names = ["Aigerim", "Nurlan", "Dana", "Yerlan", "Saule", "Arman"]
        let index = Int(phone.suffix(2)).map { $0 % names.count } ?? 0
        return "\(names[index]) Testova \(phone.suffix(4))"
    }

    func clientInfo(phone: String, device token: String, bins: Set<String>) throws(QRAPIFailure) -> String {
        let device = try device(token, bins: bins)
        try usableTradePoint(of: device, forQR: false)
        let now = clock.now
        var calls = (clientInfoCalls[token] ?? []).filter { now.timeIntervalSince($0) < 60 }
        guard calls.count < configuration.clientInfoPerMinute else {
            throw QRAPIFailure(-999, "Over \(configuration.clientInfoPerMinute) client-info calls a minute for this device.", httpStatus: 429)
        }
        calls.append(now)
        clientInfoCalls[token] = calls
        return try Self.clientName(phone: phone)
    }

    func createRemote(
        device token: String, phone: String, amount: Decimal, comment: String?, organizationBin: String, bins: Set<String>
    )
        throws(QRAPIFailure) -> SandboxQRPurchase
    {
        let device = try device(token, bins: bins)
        guard organizationBin == device.organizationBin else { throw .deviceNotFound() }
        try usableTradePoint(of: device, forQR: false)
        _ = try Self.clientName(phone: phone)
        guard amount > 0, amount.hasAtMostTwoDecimals, amount < 1_000_000_000_000 else {
            throw QRAPIFailure(990_000_028, "Invalid operation amount.")
        }
        let id = nextIdentifier()
        let purchase = SandboxQRPurchase(
            id: id, kind: .remote, organizationBin: device.organizationBin, tradePointID: device.tradePointID, deviceToken: device.token,
            amount: amount, externalID: nil, token: nil, status: .remotePaymentCreated, createdAt: clock.now, phoneNumber: phone, comment: comment,
            scanTimeout: configuration.remoteInvoiceLifetime, confirmationTimeout: configuration.paymentConfirmationTimeout,
            pollingInterval: configuration.statusPollingInterval)
        store(purchase)
        return purchase
    }

    func cancelRemote(device token: String, paymentID: Int64, organizationBin: String, bins: Set<String>) throws(QRAPIFailure) -> SandboxQRPurchase {
        let device = try device(token, bins: bins)
        guard organizationBin == device.organizationBin else { throw .deviceNotFound() }
        guard var purchase = refreshed(paymentID), purchase.kind == .remote, purchase.organizationBin == device.organizationBin else {
            throw QRAPIFailure(-99_000_001, "No remote invoice with this id.")
        }
        guard purchase.status == .remotePaymentCreated || purchase.status == .remotePaymentCanceled else {
            throw QRAPIFailure(-1401, "The invoice is \(purchase.status) and can no longer be cancelled.")
        }
        purchase.status = .remotePaymentCanceled
        purchase.finishedAt = purchase.finishedAt ?? clock.now
        store(purchase)
        return purchase
    }

    func reset() async {
        // Writes queued before the reset land first, so none brings a forgotten purchase back.
        _ = await writeChain?.result
        devices = [:]
        deviceByDeviceID = [:]
        purchases = [:]
        purchaseByToken = [:]
        evictionQueue = []
        evictionHead = 0
        returns = [:]
        clientInfoCalls = [:]
        if archive.writable {
            do { try archive.deleteAll() } catch {
                logger.error("The sandbox could not clear its QR purchase archive", metadata: ["error": "\(error)"])
            }
        }
        persist { try await $0.deleteQRRecords() }
    }
}

extension Decimal {
    var hasAtMostTwoDecimals: Bool {
        var scaled = self * 100
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        return rounded == scaled
    }
}

func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for index in 0..<max(x.count, y.count) {
        diff |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
    }
    return diff == 0
}
