import Foundation

// MARK: Every scheme

extension KaspiQRAPI.Client {
    typealias API = KaspiQRAPI
    typealias Body = KaspiQRAPI.Executor.BodyValue

    /// `OrganizationBin` for the calls that carry it (r3 only).
    private var organizationField: [(String, Body)] {
        organization.map { [("OrganizationBin", .string($0.value))] } ?? []
    }

    /// `health/ping`: whether the server answers and accepts the credentials.
    ///
    /// - Throws: ``KaspiQRAPI/APIError``; `-10000` when the key or certificate is refused.
    public func ping() async throws(KaspiQRAPI.APIError) {
        try await executor.performEmpty(.init(method: .get, segments: ["health", "ping"], name: "health/ping", repeatMode: .safe))
    }

    /// The organization's trade points (`partner/tradepoints`; on r3 for the client's BIN).
    public func tradePoints() async throws(KaspiQRAPI.APIError) -> [KaspiQRAPI.TradePoint] {
        var segments = ["partner", "tradepoints"]
        if let organization { segments.append(organization.value) }
        return try await executor.perform(
            .init(method: .get, segments: segments, name: "partner/tradepoints", repeatMode: .safe), as: [KaspiQRAPI.TradePoint].self)
    }

    /// Registers a device (a till, a kiosk, a gateway) on a trade point. Kaspi answers the
    /// same token when the same device registers on the same trade point again.
    ///
    /// - Parameters:
    ///   - id: the partner's own id: Latin letters, digits, `-` and `_`, at most 128.
    ///   - tradePointID: from ``tradePoints()``.
    /// - Throws: `-1503` when the device is on another trade point; `-99000002`, `990000026`.
    public func registerDevice(id: String, tradePointID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.DeviceToken {
        guard !id.isEmpty, id.utf8.count <= 128,
            id.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") })
        else { throw .invalidRequest("a DeviceId is 1 to 128 Latin letters, digits, '-' and '_'") }
        let body = API.Executor.body([("DeviceId", .string(id)), ("TradePointId", .int(tradePointID))] + organizationField)
        return try await executor.perform(
            .init(method: .post, segments: ["device", "register"], body: body, name: "device/register", repeatMode: .safe),
            as: API.DeviceRegistration.self
        ).token
    }

    /// Deletes a device; its token stops working (`-1502`).
    public func deleteDevice(_ token: KaspiQRAPI.DeviceToken) async throws(KaspiQRAPI.APIError) {
        let body = API.Executor.body([("DeviceToken", .string(token.value))] + organizationField)
        try await executor.performEmpty(
            .init(method: .post, segments: ["device", "delete"], body: body, name: "device/delete", repeatMode: .never(externalID: nil)))
    }

    private func createBody(device: KaspiQRAPI.DeviceToken, amount: Decimal, externalID: String) throws(KaspiQRAPI.APIError) -> [UInt8] {
        guard amount.isValidKaspiAmount else { throw .invalidRequest("the amount must be positive tenge with at most two decimals") }
        guard !externalID.isEmpty, externalID.utf8.count <= 128, externalID.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
        else { throw .invalidRequest("an ExternalId is 1 to 128 printable characters") }
        return API.Executor.body(
            [("DeviceToken", .string(device.value)), ("Amount", .amount(amount)), ("ExternalId", .string(externalID))] + organizationField)
    }

    /// Creates a QR purchase (`qr/create`). Every call makes a new purchase, so a lost answer
    /// is never re-sent: it fails with ``KaspiQRAPI/APIError/unknownOutcome(call:externalID:reason:)``.
    ///
    /// - Parameters:
    ///   - device: the registered device.
    ///   - amount: tenge, positive, at most two decimals.
    ///   - externalID: your order id; one is generated when nil, so that a lost purchase can be
    ///     found in Kaspi's records.
    public func createQR(
        device: KaspiQRAPI.DeviceToken, amount: Decimal, externalID: String? = nil
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.QRPurchase {
        let externalID = externalID ?? UUID().uuidString.lowercased()
        let body = try createBody(device: device, amount: amount, externalID: externalID)
        return try await executor.perform(
            .init(method: .post, segments: ["qr", "create"], body: body, name: "qr/create", repeatMode: .never(externalID: externalID)),
            as: KaspiQRAPI.QRPurchase.self)
    }

    /// Creates a payment link (`qr/create-link`); see ``createQR(device:amount:externalID:)``.
    public func createLink(
        device: KaspiQRAPI.DeviceToken, amount: Decimal, externalID: String? = nil
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.LinkPurchase {
        let externalID = externalID ?? UUID().uuidString.lowercased()
        let body = try createBody(device: device, amount: amount, externalID: externalID)
        return try await executor.perform(
            .init(method: .post, segments: ["qr", "create-link"], body: body, name: "qr/create-link", repeatMode: .never(externalID: externalID)),
            as: KaspiQRAPI.LinkPurchase.self)
    }

    /// A purchase's status: v02 by default (with the transaction id once paid), falling back
    /// to v01 for good when the server has no v02 (HTTP 404).
    public func status(paymentID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentStatusDetails {
        if configuration.statusVersion == .v01 || executor.fallback.active { return try await statusV01(paymentID: paymentID) }
        do {
            var details = try await executor.perform(
                .init(method: .get, version: "v02", segments: ["payment", "status", String(paymentID)], name: "payment/status", repeatMode: .safe),
                as: KaspiQRAPI.PaymentStatusDetails.self)
            details.version = "v02"
            return details
        } catch {
            guard case .unexpectedHTTPStatus(404, _, _) = error else { throw error }
            executor.logger.notice("The server has no v02 payment/status; using v01 from now on")
            executor.fallback.activate()
            return try await statusV01(paymentID: paymentID)
        }
    }

    /// A purchase's status through v01 (`Status` only).
    public func statusV01(paymentID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentStatusDetails {
        try await executor.perform(
            .init(method: .get, segments: ["payment", "status", String(paymentID)], name: "payment/status", repeatMode: .safe),
            as: KaspiQRAPI.PaymentStatusDetails.self)
    }

    /// What the test host's `test/payment/*` calls pretend the payer did.
    public enum TestAction: String, Sendable, CaseIterable {
        /// `test/payment/scan`: `QrTokenCreated` → `Wait`.
        case scan
        /// `test/payment/confirm`: `Wait` → `Processed`.
        case confirm
        /// `test/payment/scanerror`: → `Error`.
        case scanError = "scanerror"
        /// `test/payment/confirmerror`: after a scan, → `Error`.
        case confirmError = "confirmerror"
    }

    /// Plays the payer on Kaspi's test host (and the sandbox): `test/payment/{action}`.
    public func simulate(_ action: TestAction, paymentID: Int64) async throws(KaspiQRAPI.APIError) {
        let body = API.Executor.body([("qrPaymentId", .string(String(paymentID)))])
        try await executor.performEmpty(
            .init(
                method: .post, segments: ["test", "payment", action.rawValue], body: body, name: "test/payment/\(action.rawValue)",
                repeatMode: .never(externalID: nil)))
    }
}

// MARK: r2 and r3

extension KaspiQRAPI.Client where Scheme: KaspiQRAPIDetailsScheme {
    /// `payment/details`: the total and what can still be refunded (`AvailableReturnAmount`).
    public func paymentDetails(paymentID: Int64, device: KaspiQRAPI.DeviceToken) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentDetails {
        try await executor.perform(
            .init(
                method: .get, segments: ["payment", "details"], query: [("QrPaymentId", String(paymentID)), ("DeviceToken", device.value)],
                name: "payment/details", repeatMode: .safe),
            as: KaspiQRAPI.PaymentDetails.self)
    }

    func refundBody(device: KaspiQRAPI.DeviceToken, paymentID: Int64, returnID: Int64?, amount: Decimal) throws(KaspiQRAPI.APIError) -> [UInt8] {
        guard amount.isValidKaspiAmount else { throw .invalidRequest("the amount must be positive tenge with at most two decimals") }
        var fields: [(String, Body)] = [("DeviceToken", .string(device.value)), ("QrPaymentId", .int(paymentID))]
        if let returnID { fields.append(("QrReturnId", .int(returnID))) }
        fields.append(("Amount", .amount(amount)))
        return API.Executor.body(fields + organizationField)
    }
}

// MARK: r2: refunds with the customer present

extension KaspiQRAPI.Client where Scheme == KaspiQRAPI.R2 {
    /// Creates a return QR for the customer to scan (`return/create`).
    public func createReturn(device: KaspiQRAPI.DeviceToken, externalID: String? = nil) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.ReturnQR {
        var fields: [(String, Body)] = [("DeviceToken", .string(device.value))]
        if let externalID { fields.append(("ExternalId", .string(externalID))) }
        return try await executor.perform(
            .init(
                method: .post, segments: ["return", "create"], body: API.Executor.body(fields), name: "return/create",
                repeatMode: .never(externalID: externalID)),
            as: KaspiQRAPI.ReturnQR.self)
    }

    /// A return QR's status (`return/status`).
    public func returnStatus(returnID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.ReturnStatus {
        let status = try await executor.perform(
            .init(method: .get, segments: ["return", "status", String(returnID)], name: "return/status", repeatMode: .safe),
            as: KaspiQRAPI.StatusOnly.self)
        return KaspiQRAPI.ReturnStatus(rawValue: status.status)
    }

    /// The customer's last purchases at this partner (`return/operations`), once they scanned.
    ///
    /// - Parameters:
    ///   - device: the device that created the return QR.
    ///   - returnID: the return QR's id (``KaspiQRAPI/ReturnQR/returnID``).
    ///   - maxResult: 1 to 10.
    public func returnOperations(
        device: KaspiQRAPI.DeviceToken, returnID: Int64, maxResult: Int = 10
    ) async throws(KaspiQRAPI.APIError) -> [KaspiQRAPI.ReturnablePurchase] {
        guard (1...10).contains(maxResult) else { throw .invalidRequest("MaxResult is 1 to 10") }
        let body = API.Executor.body([("DeviceToken", .string(device.value)), ("QrReturnId", .int(returnID)), ("MaxResult", .int(Int64(maxResult)))])
        return try await executor.perform(
            .init(method: .post, segments: ["return", "operations"], body: body, name: "return/operations", repeatMode: .safe),
            as: [KaspiQRAPI.ReturnablePurchase].self)
    }

    /// Refunds a purchase the customer picked (`payment/return` with `QrReturnId`). Never
    /// re-sent: on ``KaspiQRAPI/APIError/unknownOutcome(call:externalID:reason:)`` read
    /// ``paymentDetails(paymentID:device:)`` before trying again.
    public func refund(
        device: KaspiQRAPI.DeviceToken, paymentID: Int64, returnID: Int64, amount: Decimal
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.Refund {
        let body = try refundBody(device: device, paymentID: paymentID, returnID: returnID, amount: amount)
        return try await executor.perform(
            .init(method: .post, segments: ["payment", "return"], body: body, name: "payment/return", repeatMode: .never(externalID: nil)),
            as: KaspiQRAPI.Refund.self)
    }

    /// Polls ``returnStatus(returnID:)`` every `QrCodeScanEventPollingInterval` until the
    /// customer scanned, the return failed, or `QrCodeScanWaitTimeout` passed.
    ///
    /// - Returns: the last status: ``KaspiQRAPI/ReturnStatus/customerIdentityObtained`` when
    ///   the customer scanned; a non-final status when time ran out.
    public func waitForCustomer(
        _ returnQR: KaspiQRAPI.ReturnQR, progress: (@Sendable (KaspiQRAPI.ReturnStatus) async -> Void)? = nil
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.ReturnStatus {
        let start = executor.clock.now()
        let deadline = start + .seconds(returnQR.scanTimeout)
        let interval = Duration.seconds(max(1, returnQR.pollingInterval))
        while true {
            let status = try await returnStatus(returnID: returnQR.returnID)
            await progress?(status)
            if status.isFinal || executor.clock.now() >= deadline { return status }
            let wait = min(interval, max(.zero, deadline - executor.clock.now()))
            do { try await executor.clock.sleep(wait) } catch { throw .transport(call: "return/status", reason: "cancelled") }
        }
    }
}

// MARK: r3: refunds without the customer, remote invoices

extension KaspiQRAPI.Client where Scheme == KaspiQRAPI.R3 {
    /// Refunds without the customer (`payment/return` with `OrganizationBin`). Never re-sent;
    /// on an unknown outcome read ``paymentDetails(paymentID:device:)`` first.
    public func refund(device: KaspiQRAPI.DeviceToken, paymentID: Int64, amount: Decimal) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.Refund {
        let body = try refundBody(device: device, paymentID: paymentID, returnID: nil, amount: amount)
        return try await executor.perform(
            .init(method: .post, segments: ["payment", "return"], body: body, name: "payment/return", repeatMode: .never(externalID: nil)),
            as: KaspiQRAPI.Refund.self)
    }

    /// Normalizes a Kazakh phone number to 11 digits starting with 7 or 8.
    static func phoneNumber(_ text: String) throws(KaspiQRAPI.APIError) -> String {
        let digits = text.unicodeScalars.filter { !" -()+".unicodeScalars.contains($0) }
        let string = String(String.UnicodeScalarView(digits))
        guard string.utf8.count == 11, string.utf8.allSatisfy({ (48...57).contains($0) }), string.hasPrefix("7") || string.hasPrefix("8")
        else { throw .invalidRequest("a phone number is 11 digits starting with 7 or 8, e.g. 87071234567") }
        return string
    }

    /// Whom an invoice to this number would bill (`remote/client-info`): show the name to
    /// the cashier before ``createRemoteInvoice(device:phoneNumber:amount:comment:)``. Kaspi
    /// allows 50 calls a minute per device.
    public func clientInfo(phoneNumber: String, device: KaspiQRAPI.DeviceToken) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.ClientInfo {
        let phone = try Self.phoneNumber(phoneNumber)
        return try await executor.perform(
            .init(
                method: .get, segments: ["remote", "client-info"], query: [("PhoneNumber", phone), ("DeviceToken", device.value)],
                name: "remote/client-info", repeatMode: .safe),
            as: KaspiQRAPI.ClientInfo.self)
    }

    /// Bills a phone number (`remote/create`); payable for 24 hours. Never re-sent. Read its
    /// status on a user action only, never on a timer.
    public func createRemoteInvoice(
        device: KaspiQRAPI.DeviceToken, phoneNumber: String, amount: Decimal, comment: String? = nil
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.RemoteInvoice {
        let phone = try Self.phoneNumber(phoneNumber)
        guard amount.isValidKaspiAmount else { throw .invalidRequest("the amount must be positive tenge with at most two decimals") }
        var fields: [(String, Body)] = [
            ("OrganizationBin", .string(organizationBin.value)), ("Amount", .amount(amount)), ("PhoneNumber", .string(phone)),
            ("DeviceToken", .string(device.value)),
        ]
        if let comment {
            guard comment.count <= 256 else { throw .invalidRequest("a comment is at most 256 characters") }
            fields.append(("Comment", .string(comment)))
        }
        return try await executor.perform(
            .init(
                method: .post, segments: ["remote", "create"], body: API.Executor.body(fields), name: "remote/create",
                repeatMode: .never(externalID: nil)),
            as: KaspiQRAPI.RemoteInvoice.self)
    }

    /// Cancels an unpaid remote invoice (`remote/cancel`).
    ///
    /// - Returns: the status Kaspi reports, `RemotePaymentCanceled`.
    public func cancelRemoteInvoice(device: KaspiQRAPI.DeviceToken, paymentID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentStatus {
        let body = API.Executor.body([
            ("OrganizationBin", .string(organizationBin.value)), ("QrPaymentId", .int(paymentID)), ("DeviceToken", .string(device.value)),
        ])
        let status = try await executor.perform(
            .init(method: .post, segments: ["remote", "cancel"], body: body, name: "remote/cancel", repeatMode: .safe),
            as: KaspiQRAPI.StatusOnly.self)
        return KaspiQRAPI.PaymentStatus(rawValue: status.status)
    }
}
