import Foundation
import Hummingbird
import KaspiPay
import QRCodeEncoder
import KaspiSupport
import NIOCore

/// A payer's action on a Kaspi QR API purchase, for ``Sandbox/act(_:paymentId:)``.
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
    public func act(_ action: SandboxQRAction, paymentId: Int64) async throws(SandboxQRError) -> SandboxQRPurchase {
        let purchase: SandboxQRPurchase
        do {
            switch action {
            case .scan: purchase = try await qrState.act(.scan, id: paymentId, bins: nil)
            case .confirm: purchase = try await qrState.act(.confirm, id: paymentId, bins: nil)
            case .confirmLoan: purchase = try await qrState.act(.confirm, id: paymentId, bins: nil, productType: "Loan")
            case .scanError: purchase = try await qrState.act(.scanerror, id: paymentId, bins: nil)
            case .confirmError: purchase = try await qrState.act(.confirmerror, id: paymentId, bins: nil)
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
    public func scanReturn(_ returnId: Int64, customer: String? = nil) async throws(SandboxQRError) -> SandboxQRReturn {
        do {
            let item = try await qrState.scanReturn(returnId, customer: customer)
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
    func qrPaymentPage(_ purchase: SandboxQRPurchase, url: String) async -> String {
        let org = await qrState.organization(bin: purchase.organizationBin)
        let point = await qrState.tradePoint(purchase.tradePointId)?.1
        let amount = Self.formatTenge(purchase.amount)
        var body = """
            <p class="merchant">\(Self.escape(org?.name ?? purchase.organizationBin))</p>
            <p class="meta">\(Self.escape(point?.name ?? ""))</p>
            <p class="amount">\(Self.escape(amount))</p>
            <p class="meta">Kaspi QR purchase \(purchase.id)\(purchase.externalId.map { " · \(Self.escape($0))" } ?? "")</p>
            <p class="status status-\(purchase.status.lowercased())">\(Self.escape(purchase.status))</p>
            """
        let actions: [(String, String, String)]
        switch purchase.status {
        case "QrTokenCreated": actions = [("scan", "Scan", "pay"), ("scanerror", "Scan fails", "decline")]
        case "Wait": actions = [("confirm", "Confirm with Kaspi Gold", "pay"), ("confirm-loan", "Confirm with a loan", "pay"), ("confirmerror", "Decline", "decline")]
        case "RemotePaymentCreated": actions = [("confirm", "Pay the invoice", "pay"), ("scanerror", "Decline", "decline")]
        default: actions = []
        }
        if !actions.isEmpty {
            body += "<form method=\"post\" action=\"\(Self.escape(url))\">"
            for (value, label, style) in actions {
                body += "<button type=\"submit\" name=\"action\" value=\"\(value)\" class=\"\(style)\">\(Self.escape(label))</button>"
            }
            body += "</form>"
        }
        if purchase.status == "QrTokenCreated" {
            body += """
                <figure><img src="\(Self.escape(url))/qr.svg" width="200" height="200" alt="QR code of this purchase"><figcaption>Scan in the Kaspi app</figcaption></figure>
                <p class="meta">Expires at \(Self.escape(KaspiQRAPI.DateParser.format(purchase.expireDate))) (sandbox time).</p>
                """
        }
        if let reason = purchase.errorReason { body += "<p class=\"meta\">\(Self.escape(reason))</p>" }
        if purchase.status == "Processed" { body += "<p class=\"meta\">Transaction \(Self.escape(purchase.transactionId ?? "")). Return to the shop's app or till.</p>" }
        return Self.page(title: "Pay \(amount)", body: body)
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
    func qrPage(get token: String) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        return Self.html(.ok, await qrPaymentPage(purchase, url: "/pay/\(token)"))
    }

    /// `/pay/invoice/{paymentId}`: a remote invoice as the billed payer sees it in their app.
    func qrInvoicePage(get id: String) async -> Response {
        guard let paymentId = Int64(id), let purchase = await qrState.purchase(id: paymentId), purchase.kind == .remote else {
            return Self.html(.notFound, Self.page(title: "Invoice not found", body: "<p>No such remote invoice.</p>"))
        }
        var page = await qrPaymentPage(purchase, url: "/pay/invoice/\(paymentId)")
        if let phone = purchase.phoneNumber {
            page = page.replacingOccurrences(
                of: "<p class=\"amount\">", with: "<p class=\"meta\">Invoice to \(Self.escape(phone))\(purchase.comment.map { ": \(Self.escape($0))" } ?? "")</p><p class=\"amount\">")
        }
        return Self.html(.ok, page)
    }

    func qrInvoicePage(post id: String, form: [String: String]) async -> Response {
        guard let paymentId = Int64(id), let purchase = await qrState.purchase(id: paymentId), purchase.kind == .remote else {
            return Self.html(.notFound, Self.page(title: "Invoice not found", body: "<p>No such remote invoice.</p>"))
        }
        guard let action = form["action"].flatMap(SandboxQRAction.init(rawValue:)) else {
            return Self.html(.badRequest, Self.page(title: "Unknown choice", body: "<p>Choose one of the buttons.</p>"))
        }
        do {
            try await act(action, paymentId: purchase.id)
        } catch {
            return Self.html(.conflict, Self.page(title: "Not possible now", body: "<p>\(Self.escape(error.message))</p>"))
        }
        return Response(status: .seeOther, headers: [.location: "/pay/invoice/\(paymentId)"])
    }

    func qrPageSVG(_ token: String) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        let content = purchase.kind == .link ? qrPaymentLink(token: token) : token
        guard let qr = try? QRCode(encoding: content) else { return Response(status: .internalServerError) }
        return Response(
            status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: qr.svg())))
    }

    func qrPage(post token: String, form: [String: String]) async -> Response? {
        guard Self.isQRToken(token), let purchase = await qrState.purchase(token: token) else { return nil }
        guard let action = form["action"].flatMap(SandboxQRAction.init(rawValue:)) else {
            return Self.html(.badRequest, Self.page(title: "Unknown choice", body: "<p>Choose one of the buttons.</p>"))
        }
        do {
            try await act(action, paymentId: purchase.id)
        } catch {
            return Self.html(.conflict, Self.page(title: "Not possible now", body: "<p>\(Self.escape(error.message))</p><p><a href=\"/pay/\(token)\">Back</a></p>"))
        }
        return Response(status: .seeOther, headers: [.location: "/pay/\(token)"])
    }

    func addQRHelpers(to group: RouterGroup<BasicRequestContext>) {
        group.get("qr/purchases") { request, _ in
            Self.json(.ok, encoding: await self.qrState.allPurchases(bin: request.uri.queryParameters.get("organizationBin")))
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
                let purchase = try await self.act(action, paymentId: id)
                return Self.json(.ok, encoding: purchase)
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
                return Self.json(.ok, encoding: item)
            } catch {
                return Self.helperError(error.statusCode == -1601 ? .notFound : .conflict, error.code, error.message)
            }
        }
        group.get("qr/faults/:bin") { _, context in
            let bin = context.parameters.get("bin") ?? ""
            guard await self.qrState.organization(bin: bin) != nil else {
                return Self.helperError(.notFound, "ORGANIZATION_NOT_FOUND", "No organization \(bin).")
            }
            return Self.json(.ok, encoding: await self.qrState.faults(bin: bin))
        }
        group.put("qr/faults/:bin") { request, context in
            let bin = context.parameters.get("bin") ?? ""
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
            return Self.json(.ok, encoding: faults)
        }
        group.post("qr/reset") { _, _ in
            await self.qrState.reset()
            try await self.qrState.waitForWrites()
            return Self.json(.ok, #"{"reset":true}"#)
        }
    }
}

/// Why an in-process QR action was refused: the Kaspi StatusCode the API would answer.
public struct SandboxQRError: Error, Sendable, CustomStringConvertible {
    /// -1601 (no such purchase) or -99000011 (its status does not allow it).
    public var statusCode: Int
    public var message: String
    /// A stable code for the helpers' JSON errors.
    public var code: String { statusCode == -1601 ? "PURCHASE_NOT_FOUND" : "ACTION_NOT_ALLOWED" }
    public var description: String { "\(statusCode): \(message)" }
}
