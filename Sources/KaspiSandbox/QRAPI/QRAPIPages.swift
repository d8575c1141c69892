import Foundation
import Hummingbird
import KaspiPay
import KaspiWeb
import NIOCore
import QRCodeEncoder

/// A payer's action on a Kaspi QR API purchase, for ``Sandbox/act(_:paymentID:)``.
public enum SandboxQRAction: String, Sendable, CaseIterable {
    /// `QrTokenCreated` → `Wait`.
    case scan
    /// `Wait` → `Processed` (paid with Kaspi Gold).
    case confirm
    /// `Wait` → `Processed`, paid with a loan (partial refunds then answer -99000020).
    case confirmLoan = "confirm-loan"
    /// → `Error`.
    case scanError = "scanerror"
    /// `Wait` → `Error`.
    case confirmError = "confirmerror"
}

extension Sandbox {
    // MARK: In-process helpers for the QR API

    /// Every Kaspi QR API purchase, oldest first, with deadlines applied.
    public func qrPurchases(organizationBin: String? = nil) async -> [SandboxQRPurchase] {
        await qrState.allPurchases(bin: organizationBin)
    }

    /// Every r2 return QR, oldest first.
    public func qrReturns() async -> [SandboxQRReturn] { await qrState.allReturns() }

    /// Every registered device.
    public func qrDevices() async -> [SandboxQRDevice] { await qrState.allDevices() }

    /// Plays the payer on a purchase, as the test endpoints and the payment page do.
    ///
    /// - Returns: the purchase after the change.
    /// - Throws: ``SandboxQRError`` when there is no such purchase or its status does not allow it.
    @discardableResult
    public func act(_ action: SandboxQRAction, paymentID: Int64) async throws(SandboxQRError) -> SandboxQRPurchase {
        let purchase: SandboxQRPurchase
        do {
            switch action {
            case .scan: purchase = try await qrState.act(.scan, id: paymentID, bins: nil)
            case .confirm: purchase = try await qrState.act(.confirm, id: paymentID, bins: nil)
            case .confirmLoan: purchase = try await qrState.act(.confirm, id: paymentID, bins: nil, productType: "Loan")
            case .scanError: purchase = try await qrState.act(.scanerror, id: paymentID, bins: nil)
            case .confirmError: purchase = try await qrState.act(.confirmerror, id: paymentID, bins: nil)
            }
        } catch {
            throw SandboxQRError(statusCode: error.code, message: error.message)
        }
        try? await qrState.waitForWrites()
        return purchase
    }

    /// The customer scans an r2 return QR (Kaspi has no call for this; the sandbox does).
    ///
    /// - Parameter customer: the customer's phone number; the sandbox's default payer when nil.
    @discardableResult
    public func scanReturn(_ returnID: Int64, customer: String? = nil) async throws(SandboxQRError) -> SandboxQRReturn {
        do {
            let item = try await qrState.scanReturn(returnID, customer: customer)
            try? await qrState.waitForWrites()
            return item
        } catch {
            throw SandboxQRError(statusCode: error.code, message: error.message)
        }
    }

    /// Sets the faults injected into an organization's QR API calls.
    public func setQRFaults(_ faults: SandboxQRFaults, organizationBin: String) async {
        await qrState.setFaults(faults, bin: organizationBin)
    }

    // MARK: Pages and HTTP helpers

    /// `/pay/<41 digits>`: the payment page of a QR API purchase, with Scan, Confirm and Error.
    func qrPaymentPage(_ purchase: SandboxQRPurchase, url: String, invoice: Bool = false, locale: PageLocale) async -> Response {
        struct Action { var value, label, style: String }
        struct Page {
            var title, merchant, tradePoint, amount, url, status, statusClass, expires: String
            var id: Int64
            var invoiceTo: String?
            var externalID: String?
            var actions: [Action]
            var hasActions: Bool
            var scannable: Bool
            var errorReason: String?
            var transaction: String?
        }
        let language = locale.language
        let org = await qrState.organization(bin: purchase.organizationBin)
        let point = await qrState.tradePoint(purchase.tradePointID)?.1
        let amount = Self.formatTenge(purchase.amount, language)
        func action(_ value: String, _ key: String, _ style: String) -> Action {
            Action(value: value, label: pages.text(key, language), style: style)
        }
        let actions: [Action]
        switch purchase.status {
        case .qrTokenCreated:
            actions = [action("scan", "action_scan", "pay"), action("scanerror", "action_scan_fails", "decline")]
        case .wait:
            actions = [
                action("confirm", "action_confirm_gold", "pay"), action("confirm-loan", "action_confirm_loan", "pay"),
                action("confirmerror", "action_decline", "decline"),
            ]
        case .remotePaymentCreated:
            actions = [action("confirm", "action_pay_invoice", "pay"), action("scanerror", "action_decline", "decline")]
        default: actions = []
        }
        let statusKey: String
        switch purchase.status {
        case .qrTokenCreated: statusKey = "qr_status_created"
        case .wait: statusKey = "qr_status_wait"
        case .processed: statusKey = "qr_status_processed"
        case .error: statusKey = "qr_status_error"
        case .remotePaymentCreated: statusKey = "qr_status_invoice"
        case .remotePaymentCanceled: statusKey = "qr_status_invoice_cancelled"
        case .unknown: statusKey = "status_pending"
        }
        let invoiceTo = invoice ? purchase.phoneNumber.map { phone in phone + (purchase.comment.map { ": \($0)" } ?? "") } : nil
        let page = Page(
            title: pages.text("qr_pay_title", language, ["amount": amount]), merchant: org?.name ?? purchase.organizationBin,
            tradePoint: point?.name ?? "", amount: amount, url: url, status: pages.text(statusKey, language),
            statusClass: purchase.status.rawValue.lowercased(), expires: LocalFormat.time(purchase.expireDate, language),
            id: purchase.id, invoiceTo: invoiceTo, externalID: purchase.externalID, actions: actions, hasActions: !actions.isEmpty,
            scannable: purchase.status == .qrTokenCreated, errorReason: purchase.errorReason,
            transaction: purchase.status == .processed ? (purchase.transactionID ?? "") : nil)
        return pages.page("qr-payment", page, locale: locale).response
    }

    /// A Kaspi QR API amount (tenge, perhaps with tiyn) in the page's language.
    static func formatTenge(_ amount: Decimal, _ language: PageLanguage) -> String {
        let whole = NSDecimalNumber(decimal: amount).rounding(accordingToBehavior: nil)
        if whole.decimalValue == amount, let tenge = Int(exactly: whole.int64Value) { return LocalFormat.tenge(tenge, language) }
        return formatTenge(amount)
    }

    static func formatTenge(_ amount: Decimal) -> String {
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.minimumFractionDigits = 0
        formatter.maximumFractionDigits = 2
        formatter.groupingSeparator = " "
        formatter.usesGroupingSeparator = true
        formatter.numberStyle = .decimal
        return (formatter.string(from: NSDecimalNumber(decimal: amount)) ?? "\(amount)") + " ₸"
    }

    static func isQRToken(_ token: String) -> Bool {
        token.utf8.count == 41 && token.utf8.allSatisfy { (48...57).contains($0) }
    }

    /// The QR page's routes, answered before the guide's payment page for 41-digit tokens.
    func qrPage(get token: String, locale: PageLocale) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        return await qrPaymentPage(purchase, url: "/pay/\(token)", locale: locale)
    }

    /// `/pay/invoice/{paymentId}`: a remote invoice as the billed payer sees it in their app.
    func qrInvoicePage(get id: String, locale: PageLocale) async -> Response {
        guard let paymentID = Int64(id), let purchase = await qrState.purchase(id: paymentID), purchase.kind == .remote else {
            return message("invoice_not_found_title", "invoice_not_found", locale: locale, status: .notFound)
        }
        return await qrPaymentPage(purchase, url: "/pay/invoice/\(paymentID)", invoice: true, locale: locale)
    }

    func qrInvoicePage(post id: String, action: String?, locale: PageLocale) async -> Response {
        guard let paymentID = Int64(id), let purchase = await qrState.purchase(id: paymentID), purchase.kind == .remote else {
            return message("invoice_not_found_title", "invoice_not_found", locale: locale, status: .notFound)
        }
        return await act(action, on: purchase, back: "/pay/invoice/\(paymentID)", locale: locale)
    }

    func qrPageSVG(_ token: String) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        let content = purchase.kind == .link ? qrPaymentLink(token: token) : token
        guard let qr = try? QRCode(encoding: content) else { return Response(status: .internalServerError) }
        return Self.svg(qr)
    }

    func qrPage(post token: String, action: String?, locale: PageLocale) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        return await act(action, on: purchase, back: "/pay/\(token)", locale: locale)
    }

    /// The payer's button on a QR API page, then back to the page.
    private func act(_ action: String?, on purchase: SandboxQRPurchase, back: String, locale: PageLocale) async -> Response {
        guard let action = action.flatMap(SandboxQRAction.init(rawValue:)) else {
            return message("unknown_choice_title", "unknown_choice_buttons", locale: locale, status: .badRequest)
        }
        do {
            try await act(action, paymentID: purchase.id)
        } catch {
            // Kaspi's own message for the refusal, as its app would show it.
            return message("not_possible_title", "", detail: error.message, back: back, locale: locale, status: .conflict)
        }
        return Response(status: .seeOther, headers: [.location: back])
    }

    func addQRHelpers(to group: RouterGroup<BasicRequestContext>) {
        group.get("qr/purchases") { request, _ in
            Self.json(.ok, encoding: await self.qrState.allPurchases(bin: request.uri.queryParameters.get("organizationBin")), readable: true)
        }
        group.get("qr/devices") { _, _ in Self.json(.ok, encoding: await self.qrState.allDevices()) }
        group.get("qr/returns") { _, _ in Self.json(.ok, encoding: await self.qrState.allReturns()) }
        group.post("qr/purchases/:id/:action") { _, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                return Self.helperError(.notFound, "PURCHASE_NOT_FOUND", "No such purchase.")
            }
            guard let action = context.parameters.get("action").flatMap(SandboxQRAction.init(rawValue:)) else {
                return Self.helperError(.notFound, "UNKNOWN_ACTION", "Use scan, confirm, confirm-loan, scanerror or confirmerror.")
            }
            do throws(SandboxQRError) {
                let purchase = try await self.act(action, paymentID: id)
                return Self.json(.ok, encoding: purchase, readable: true)
            } catch {
                return Self.helperError(error.statusCode == -1601 ? .notFound : .conflict, error.code, error.message)
            }
        }
        group.post("qr/returns/:id/scan") { request, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init) else {
                return Self.helperError(.notFound, "RETURN_NOT_FOUND", "No such return.")
            }
            let customer = request.uri.queryParameters.get("phoneNumber")
            if let customer, (try? QRAPIState.clientName(phone: customer)) == nil {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "phoneNumber must be 11 digits starting with 7 or 8.")
            }
            do throws(SandboxQRError) {
                let item = try await self.scanReturn(id, customer: customer)
                return Self.json(.ok, encoding: item, readable: true)
            } catch {
                return Self.helperError(error.statusCode == -1601 ? .notFound : .conflict, error.code, error.message)
            }
        }
        group.get("qr/faults/:bin") { _, context in
            let bin = try context.parameters.require("bin")
            guard await self.qrState.organization(bin: bin) != nil else {
                return Self.helperError(.notFound, "ORGANIZATION_NOT_FOUND", "No organization \(bin).")
            }
            return Self.json(.ok, encoding: await self.qrState.faults(bin: bin), readable: true)
        }
        group.put("qr/faults/:bin") { request, context in
            let bin = try context.parameters.require("bin")
            guard await self.qrState.organization(bin: bin) != nil else {
                return Self.helperError(.notFound, "ORGANIZATION_NOT_FOUND", "No organization \(bin).")
            }
            let body = try await request.body.collect(upTo: 16 * 1024)
            guard let faults = try? JSONDecoder().decode(SandboxQRFaults.self, from: Data(buffer: body)),
                faults.failNext >= 0, faults.loseResponseNext >= 0, faults.refundFailNext >= 0, (0...60_000).contains(faults.latencyMs)
            else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "The body must be a JSON object of QR fault settings (see docs/kaspi-qr.md).")
            }
            await self.qrState.setFaults(faults, bin: bin)
            return Self.json(.ok, encoding: faults, readable: true)
        }
        group.post("qr/reset") { _, _ in
            await self.qrState.reset()
            try await self.qrState.waitForWrites()
            return Self.json(.ok, encoding: ["reset": true])
        }
    }
}

/// Why an in-process QR action was refused: the Kaspi StatusCode the API would answer.
public struct SandboxQRError: Error, Sendable, CustomStringConvertible {
    /// -1601 (no such purchase) or -99000011 (its status does not allow it).
    public var statusCode: Int
    /// Kaspi's message for it.
    public var message: String
    /// A stable code for the helpers' JSON errors.
    public var code: String { statusCode == -1601 ? "PURCHASE_NOT_FOUND" : "ACTION_NOT_ALLOWED" }
    public var description: String { "\(statusCode): \(message)" }
}
