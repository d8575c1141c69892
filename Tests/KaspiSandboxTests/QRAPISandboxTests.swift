import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import KaspiPay
import KaspiPayAsyncHTTPClient
import KaspiPayTesting
import KaspiSandbox
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import Testing

typealias API = KaspiQRAPI

/// A sandbox with the Kaspi QR API on loopback: r1 over HTTP, all schemes over a TLS port
/// that asks for client certificates, and SDK clients for each scheme.
struct QRHarness: Sendable {
    let sandbox: Sandbox
    let httpURL: URL
    let tlsURL: URL
    let certificates: SandboxCertificates.Paths
    let r1: API.Client<API.R1>
    let r2: API.Client<API.R2>
    let r3: API.Client<API.R3>
    /// Over TLS with the sandbox's CA but no client certificate.
    let anonymousTLS: AsyncHTTPClientTransport
    /// Plain HTTP, for more clients.
    let plain: AsyncHTTPClientTransport

    static let bin = "123456789012"
    static let secondBIN = "987654321098"
    static let apiKey = "test_0f8fad5b-d9cb-469f-a165-70867728950e"

    /// A raw request, the way an independent client (Go, PHP, Java) would send it.
    func raw(
        _ method: HTTPMethod, _ url: String, body: String? = nil, headers: [String: String] = [:], client: HTTPClient = noRedirects
    ) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: buffer))
    }

    func r1Raw(_ method: HTTPMethod, _ path: String, body: String? = nil, key: String = QRHarness.apiKey) async throws -> (status: Int, body: String)
    {
        var headers = ["Content-Type": "application/json"]
        if !key.isEmpty { headers["Api-Key"] = key }
        return try await raw(method, httpURL.absoluteString + path, body: body, headers: headers)
    }

    func device(_ id: String = "till-\(UUID().uuidString.prefix(8))", tradePoint: Int64 = 19) async throws -> API.DeviceToken {
        try await r1.registerDevice(id: id, tradePointID: tradePoint)
    }

    /// A paid purchase of `amount` on trade point 19, made and paid over r1.
    func paidPurchase(_ amount: Decimal = 500, device: API.DeviceToken, loan: Bool = false) async throws -> Int64 {
        let qr = try await r1.createQR(device: device, amount: amount)
        try await r1.simulate(.scan, paymentID: qr.paymentID)
        if loan {
            try await sandbox.act(.confirmLoan, paymentID: qr.paymentID)
        } else {
            try await r1.simulate(.confirm, paymentID: qr.paymentID)
        }
        return qr.paymentID
    }
}

func withQRSandbox<T: Sendable>(
    configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: @Sendable @escaping (QRHarness) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kaspi-qr-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let certificates = try SandboxCertificates.generate(
        in: directory, organizations: [QRHarness.bin, QRHarness.secondBIN], password: "sandbox-pass")
    var configuration = SandboxConfiguration()
    configuration.port = 0
    configuration.rateLimitPerMinute = nil
    configuration.qrAPI.tlsPorts = [0]
    configuration.qrAPI.certificatesDirectory = directory
    configure(&configuration)
    let sandbox = try await Sandbox(configuration: configuration)
    let box = Mutex<T?>(nil)
    try await sandbox.application().test(.live) { testClient in
        var tlsPorts: [Int] = []
        for _ in 0..<500 {
            tlsPorts = sandbox.qrAPITLSPorts()
            if !tlsPorts.isEmpty { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let port = try #require(tlsPorts.first)
        let httpURL = URL(string: "http://127.0.0.1:\(testClient.port!)")!
        let tlsURL = URL(string: "https://127.0.0.1:\(port)")!
        let retry = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(20), jitter: 0)
        let plain = AsyncHTTPClientTransport()
        let pem = try AsyncHTTPClientTransport(
            tls: KaspiTLSSettings(
                clientIdentity: .pem(certificatePath: certificates.clientCertificate, keyPath: certificates.clientKey),
                trust: .caBundle(path: certificates.caCertificate)))
        let pkcs12 = try AsyncHTTPClientTransport(
            tls: KaspiTLSSettings(
                clientIdentity: .pkcs12(path: certificates.clientPKCS12, password: "sandbox-pass"), trust: .caBundle(path: certificates.caCertificate)
            ))
        let anonymous = try AsyncHTTPClientTransport(tls: KaspiTLSSettings(trust: .caBundle(path: certificates.caCertificate)))
        let harness = QRHarness(
            sandbox: sandbox, httpURL: httpURL, tlsURL: tlsURL, certificates: certificates,
            r1: try API.Client<API.R1>(
                apiKey: try APIKey(QRHarness.apiKey), configuration: .init(host: .custom(httpURL), retryPolicy: retry), transport: plain),
            r2: try API.Client<API.R2>(configuration: .init(host: .custom(tlsURL), retryPolicy: retry), transport: pem),
            r3: try API.Client<API.R3>(
                organizationBin: try API.OrganizationBIN(QRHarness.bin), configuration: .init(host: .custom(tlsURL), retryPolicy: retry),
                transport: pkcs12),
            anonymousTLS: anonymous, plain: plain)
        do {
            let value = try await body(harness)
            box.withLock { $0 = value }
        } catch {
            for transport in [plain, pem, pkcs12, anonymous] { try? await transport.shutdown() }
            throw error
        }
        for transport in [plain, pem, pkcs12, anonymous] { try await transport.shutdown() }
    }
    return try #require(box.withLock { $0 })
}

/// The Kaspi QR API error a call threw, or nil.
func qrError(_ body: () async throws -> Void) async -> API.APIError? {
    await thrownError(API.APIError.self, body)
}

@Suite struct QRAPISandboxTests {
    @Test func r1TakesAQRPaymentFromCreateToProcessed() async throws {
        try await withQRSandbox { h in
            try await h.r1.ping()
            let points = try await h.r1.tradePoints()
            #expect(points.map(\.id) == [19, 20, 21])
            let token = try await h.r1.registerDevice(id: "till-1", tradePointID: 19)
            #expect(try await h.r1.registerDevice(id: "till-1", tradePointID: 19) == token)  // idempotent
            let qr = try await h.r1.createQR(device: token, amount: Decimal(string: "1500.50")!, externalID: "order-1")
            #expect(qr.qrToken.count == 41 && qr.qrToken.allSatisfy(\.isNumber))
            #expect(qr.paymentID > Int64(Int32.max))
            #expect(qr.paymentMethods == ["Gold", "Red", "Loan"])
            #expect(qr.options == .guideDefaults)
            #expect(abs(qr.expireDate.timeIntervalSinceNow - 180) < 30)
            #expect(try await h.r1.status(paymentID: qr.paymentID).status == .qrTokenCreated)
            try await h.r1.simulate(.scan, paymentID: qr.paymentID)
            #expect(try await h.r1.statusV01(paymentID: qr.paymentID).status == .wait)
            try await h.r1.simulate(.confirm, paymentID: qr.paymentID)
            let paid = try await h.r1.status(paymentID: qr.paymentID)
            #expect(paid.status == .processed && paid.version == "v02")
            #expect(paid.transactionID?.allSatisfy(\.isNumber) == true && paid.amount == Decimal(string: "1500.5"))
            #expect(paid.storeName == "KaspiKit Sandbox LLP" && paid.productType == "Gold")
            let v01 = try await h.r1.statusV01(paymentID: qr.paymentID)
            #expect(v01.status == .processed && v01.transactionID == nil)
            // A paid purchase cannot be scanned again.
            #expect(await qrError { try await h.r1.simulate(.scan, paymentID: qr.paymentID) }?.statusCode == .refundNotAllowed)
            // The waiting helper sees it at once.
            #expect(try await h.r1.waitForPayment(qr) == .processed(paid))
        }
    }

    @Test func r1LinksOpenTheSandboxPageWhichPlaysThePayer() async throws {
        try await withQRSandbox { h in
            let token = try await h.device()
            let link = try await h.r1.createLink(device: token, amount: 2500)
            #expect(link.paymentLink.hasPrefix(h.httpURL.absoluteString + "/pay/"))
            let digits = String(link.paymentLink.split(separator: "/").last ?? "")
            #expect(digits.count == 41)
            var page = try await h.raw(.GET, link.paymentLink)
            #expect(
                page.status == 200 && page.body.contains("2\u{00A0}500\u{00A0}₸") && page.body.contains("value=\"scan\"")
                    && !page.body.contains("<script"))
            #expect(page.body.contains("KaspiKit Sandbox LLP"))
            let svg = try await h.raw(.GET, link.paymentLink + "/qr.svg")
            #expect(svg.status == 200 && svg.body.hasPrefix("<svg"))
            let headers = ["Content-Type": "application/x-www-form-urlencoded"]
            #expect(try await h.raw(.POST, link.paymentLink, body: "action=scan", headers: headers).status == 303)
            #expect(try await h.r1.status(paymentID: link.paymentID).status == .wait)
            page = try await h.raw(.GET, link.paymentLink)
            #expect(page.body.contains("value=\"confirm\""))
            #expect(try await h.raw(.POST, link.paymentLink, body: "action=confirm", headers: headers).status == 303)
            #expect(try await h.r1.status(paymentID: link.paymentID).status == .processed)
            #expect(try await h.raw(.POST, link.paymentLink, body: "action=confirm", headers: headers).status == 409)
        }
    }

    @Test func linksUseTheConfiguredBase() async throws {
        try await withQRSandbox(configure: { $0.qrAPI.linkBase = "https://pay.kaspi.kz/" }) { h in
            let link = try await h.r1.createLink(device: try await h.device(), amount: 100)
            #expect(link.paymentLink.hasPrefix("https://pay.kaspi.kz/pay/") && link.paymentLink.count == "https://pay.kaspi.kz/pay/".count + 41)
        }
    }

    @Test func deadlinesRunOnTheSandboxClock() async throws {
        try await withQRSandbox { h in
            let token = try await h.device()
            let unscanned = try await h.r1.createQR(device: token, amount: 100)
            let scanned = try await h.r1.createQR(device: token, amount: 100)
            await h.sandbox.advanceClock(by: 170)
            try await h.r1.simulate(.scan, paymentID: scanned.paymentID)
            await h.sandbox.advanceClock(by: 11)
            // 181 s after creation: the unscanned token died; the scanned one has until 170 + 65.
            #expect(try await h.r1.status(paymentID: unscanned.paymentID).status == .error)
            #expect(try await h.r1.status(paymentID: scanned.paymentID).status == .wait)
            await h.sandbox.advanceClock(by: 54)
            #expect(try await h.r1.status(paymentID: scanned.paymentID).status == .error)
            let purchase = try #require(await h.sandbox.qrPurchases().first { $0.id == scanned.paymentID })
            #expect(purchase.errorReason?.contains("did not confirm") == true)
            #expect(await qrError { try await h.r1.simulate(.confirm, paymentID: scanned.paymentID) }?.statusCode == .refundNotAllowed)
        }
    }

    @Test func r1ErrorCodesTheSandboxProduces() async throws {
        try await withQRSandbox { h in
            let token = try await h.device("till-a")
            // -1503: the same device on another trade point.
            #expect(await qrError { _ = try await h.r1.registerDevice(id: "till-a", tradePointID: 20) }?.statusCode == .deviceOnAnotherTradePoint)
            // -99000002, 990000026.
            #expect(await qrError { _ = try await h.r1.registerDevice(id: "till-b", tradePointID: 999) }?.statusCode == .tradePointNotFound)
            #expect(await qrError { _ = try await h.r1.registerDevice(id: "till-b", tradePointID: 104039) }?.statusCode == .tradePointNotFound)
            #expect(await qrError { _ = try await h.r1.registerDevice(id: "till-b", tradePointID: 21) }?.statusCode == .tradePointDoesNotAcceptQR)
            // 990000018: a device on a disabled trade point cannot sell.
            let closed = try await h.device("till-closed", tradePoint: 20)
            #expect(await qrError { _ = try await h.r1.createQR(device: closed, amount: 100) }?.statusCode == .tradePointDisabled)
            // -1501 and -1502.
            let unknown = try API.DeviceToken("00000000-0000-0000-0000-000000000000")
            #expect(await qrError { _ = try await h.r1.createQR(device: unknown, amount: 100) }?.statusCode == .deviceNotFound)
            try await h.r1.deleteDevice(token)
            #expect(await qrError { _ = try await h.r1.createLink(device: token, amount: 100) }?.statusCode == .deviceNotActive)
            #expect(await qrError { try await h.r1.deleteDevice(token) }?.statusCode == .deviceNotActive)
            // Registering again revives the device with its token.
            #expect(try await h.r1.registerDevice(id: "till-a", tradePointID: 19) == token)
            // -1601.
            #expect(await qrError { _ = try await h.r1.status(paymentID: 99) }?.statusCode == .purchaseNotFound)
            // 990000028 from the server (the SDK refuses such amounts itself, so send it raw).
            let raw = try await h.r1Raw(.POST, "/r1/v01/qr/create", body: #"{"DeviceToken":"\#(token.value)","Amount":1.005}"#)
            #expect(raw.status == 200 && raw.body.contains(#""StatusCode":990000028"#))
            let zero = try await h.r1Raw(.POST, "/r1/v01/qr/create", body: #"{"DeviceToken":"\#(token.value)","Amount":"0"}"#)
            #expect(zero.body.contains(#""StatusCode":990000028"#))
            // 990000033 and -999 by fault injection.
            var faults = SandboxQRFaults()
            faults.noPaymentMethods = true
            await h.sandbox.setQRFaults(faults, organizationBin: QRHarness.bin)
            #expect(await qrError { _ = try await h.r1.createQR(device: token, amount: 100) }?.statusCode == .noPaymentMethods)
            faults = SandboxQRFaults()
            faults.failNext = 1
            await h.sandbox.setQRFaults(faults, organizationBin: QRHarness.bin)
            #expect(await qrError { _ = try await h.r1.createQR(device: token, amount: 100) }?.statusCode == .serviceUnavailable)
            #expect(await h.sandbox.qrPurchases().isEmpty)
            faults.failNext = 1
            await h.sandbox.setQRFaults(faults, organizationBin: QRHarness.bin)
            try await h.r1.ping()  // a read is retried past one -999
            // -10000: a wrong or missing key.
            let wrong = try API.Client<API.R1>(apiKey: try APIKey("test_wrong"), configuration: .init(host: .custom(h.httpURL)), transport: h.plain)
            #expect(await qrError { try await wrong.ping() }?.statusCode == .noClientCertificate)
            let refused = json(try await h.r1Raw(.GET, "/r1/v01/health/ping", key: "").body)
            #expect(refused["StatusCode"] as? Int == -10000 && refused["Message"] as? String == "No valid client certificate or Api-Key.")
            // -14000002: an organization without trade points.
            let empty = try API.Client<API.R1>(
                apiKey: try APIKey("test_e4eaaaf2-d142-11e1-b3e4-080027620cdd"), configuration: .init(host: .custom(h.httpURL)), transport: h.plain)
            #expect(await qrError { _ = try await empty.tradePoints() }?.statusCode == .noTradePoints)
        }
    }

    @Test func aLostCreateIsReportedAsUnknownAndTookEffect() async throws {
        try await withQRSandbox { h in
            let token = try await h.device()
            var faults = SandboxQRFaults()
            faults.loseResponseNext = 1
            await h.sandbox.setQRFaults(faults, organizationBin: QRHarness.bin)
            let error = await qrError { _ = try await h.r1.createQR(device: token, amount: 700, externalID: "order-lost") }
            guard case .unknownOutcome(_, "order-lost"?, _)? = error else {
                Issue.record("\(String(describing: error))")
                return
            }
            let purchases = await h.sandbox.qrPurchases()
            #expect(purchases.count == 1 && purchases[0].externalID == "order-lost")  // made once, not twice
        }
    }

    @Test func r2AndR3NeedAClientCertificateFromTheSandboxCA() async throws {
        try await withQRSandbox { h in
            try await h.r2.ping()
            try await h.r3.ping()
            // Over TLS without a certificate, and over plain HTTP: -10000 in the body, HTTP 200.
            let bare = try API.Client<API.R2>(configuration: .init(host: .custom(h.tlsURL)), transport: h.anonymousTLS)
            #expect(await qrError { try await bare.ping() }?.statusCode == .noClientCertificate)
            let plain = try API.Client<API.R3>(
                organizationBin: try API.OrganizationBIN(QRHarness.bin), configuration: .init(host: .custom(h.httpURL)), transport: h.plain)
            #expect(await qrError { try await plain.ping() }?.statusCode == .noClientCertificate)
            // A certificate from another CA.
            let other = FileManager.default.temporaryDirectory.appendingPathComponent("other-ca-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: other) }
            let foreign = try SandboxCertificates.generate(in: other, organizations: [QRHarness.bin])
            let transport = try AsyncHTTPClientTransport(
                tls: KaspiTLSSettings(
                    clientIdentity: .pem(certificatePath: foreign.clientCertificate, keyPath: foreign.clientKey),
                    trust: .caBundle(path: h.certificates.caCertificate)))
            let forged = try API.Client<API.R2>(configuration: .init(host: .custom(h.tlsURL)), transport: transport)
            let forgedError = await qrError { try await forged.ping() }
            try await transport.shutdown()
            #expect(forgedError?.statusCode == .noClientCertificate)
            // r3 for an organization the certificate does not name.
            let stranger = h.r3.acting(for: try API.OrganizationBIN("000000000001"))
            #expect(await qrError { _ = try await stranger.tradePoints() }?.statusCode == .noClientCertificate)
            // One certificate, several organizations.
            #expect(try await h.r3.tradePoints().map(\.id) == [19, 20, 21])
            #expect(try await h.r3.acting(for: try API.OrganizationBIN(QRHarness.secondBIN)).tradePoints().map(\.id) == [104039])
            // The server is trusted only through the CA bundle: the system roots refuse it.
            let system = AsyncHTTPClientTransport()
            let untrusted = try API.Client<API.R2>(configuration: .init(host: .custom(h.tlsURL), retryPolicy: .none), transport: system)
            let untrustedError = await qrError { try await untrusted.ping() }
            try await system.shutdown()
            // Said plainly, naming the trust that refused it, and not retried.
            guard case .tlsRefused(_, let reason)? = untrustedError, reason.contains("not trusted by the system's CAs") else {
                Issue.record("trusted without the CA, or not said plainly: \(String(describing: untrustedError))")
                return
            }
        }
    }

    @Test func r3HonoursItsIPAllowList() async throws {
        try await withQRSandbox(configure: { $0.qrAPI.r3AllowedIPs = ["10.1.2.3"] }) { h in
            #expect(await qrError { try await h.r3.ping() }?.statusCode == .noClientCertificate)
            try await h.r2.ping()  // r2 has no allow-list
        }
        try await withQRSandbox(configure: { $0.qrAPI.r3AllowedIPs = ["127.0.0.1"] }) { h in
            try await h.r3.ping()
        }
    }

    @Test func r2RefundsWithTheCustomerPresent() async throws {
        try await withQRSandbox { h in
            let till = try await h.r2.registerDevice(id: "till-r2", tradePointID: 19)
            let qr = try await h.r2.createQR(device: till, amount: 1000)
            // Refunds are refused until the purchase is Processed.
            let early = try await h.r2.createReturn(device: till, externalID: "return-0")
            try await h.sandbox.scanReturn(early.returnID)
            #expect(
                await qrError { _ = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: early.returnID, amount: 100) }?.statusCode
                    == .refundNotAllowed)
            try await h.r2.simulate(.scan, paymentID: qr.paymentID)
            try await h.r2.simulate(.confirm, paymentID: qr.paymentID)

            let returnQR = try await h.r2.createReturn(device: till, externalID: "return-1")
            #expect(returnQR.qrToken.count == 41 && returnQR.pollingInterval == 5 && returnQR.scanTimeout == 180)
            #expect(try await h.r2.returnStatus(returnID: returnQR.returnID) == .qrTokenCreated)
            #expect(try await h.r2.returnOperations(device: till, returnID: returnQR.returnID).isEmpty)
            let scanned = try await h.raw(.POST, h.httpURL.absoluteString + "/sandbox/qr/returns/\(returnQR.returnID)/scan")
            #expect(scanned.status == 200)
            #expect(try await h.r2.waitForCustomer(returnQR) == .customerIdentityObtained)
            let purchases = try await h.r2.returnOperations(device: till, returnID: returnQR.returnID, maxResult: 5)
            #expect(purchases.map(\.paymentID) == [qr.paymentID] && purchases[0].amount == 1000 && purchases[0].transactionDate != nil)
            var details = try await h.r2.paymentDetails(paymentID: qr.paymentID, device: till)
            #expect(details.totalAmount == 1000 && details.availableReturnAmount == 1000)
            let refund = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: returnQR.returnID, amount: 400)
            #expect(refund.returnOperationID > 0)
            details = try await h.r2.paymentDetails(paymentID: qr.paymentID, device: till)
            #expect(details.availableReturnAmount == 600)
            // -99000005: more than is left.
            #expect(
                await qrError { _ = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: returnQR.returnID, amount: 601) }?
                    .statusCode == .refundExceedsAmount)
            // -99000006 by fault injection, without effect.
            var faults = SandboxQRFaults()
            faults.refundFailNext = 1
            await h.sandbox.setQRFaults(faults, organizationBin: QRHarness.bin)
            #expect(
                await qrError { _ = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: returnQR.returnID, amount: 100) }?
                    .statusCode == .refundFailed)
            #expect(try await h.r2.paymentDetails(paymentID: qr.paymentID, device: till).availableReturnAmount == 600)
            // -99000001: the return's customer did not make this purchase.
            let other = try await h.r2.createReturn(device: till)
            try await h.sandbox.scanReturn(other.returnID, customer: "77770001122")
            #expect(
                await qrError { _ = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: other.returnID, amount: 100) }?.statusCode
                    == .purchaseNotFoundForOperation)
            // -99000003: a device of another trade point.
            let second = try await h.r2.registerDevice(id: "till-r2-closed", tradePointID: 20)
            #expect(
                await qrError { _ = try await h.r2.refund(device: second, paymentID: qr.paymentID, returnID: returnQR.returnID, amount: 100) }?
                    .statusCode == .tradePointMismatch)
            // -1601: an unknown return.
            #expect(await qrError { _ = try await h.r2.returnStatus(returnID: 5) }?.statusCode == .purchaseNotFound)
            // The rest refunded in full.
            _ = try await h.r2.refund(device: till, paymentID: qr.paymentID, returnID: returnQR.returnID, amount: 600)
            #expect(try await h.r2.paymentDetails(paymentID: qr.paymentID, device: till).availableReturnAmount == 0)
            // A return QR nobody scans dies after its timeout.
            let stale = try await h.r2.createReturn(device: till)
            await h.sandbox.advanceClock(by: 181)
            #expect(try await h.r2.returnStatus(returnID: stale.returnID) == .error)
        }
    }

    @Test func r3RefundsWithoutTheCustomer() async throws {
        try await withQRSandbox { h in
            let till = try await h.r3.registerDevice(id: "till-r3", tradePointID: 19)
            let unpaid = try await h.r3.createQR(device: till, amount: 300)
            #expect(
                await qrError { _ = try await h.r3.refund(device: till, paymentID: unpaid.paymentID, amount: 100) }?.statusCode == .refundNotAllowed)
            let paid = try await h.paidPurchase(300, device: till)
            _ = try await h.r3.refund(device: till, paymentID: paid, amount: Decimal(string: "150.25")!)
            #expect(try await h.r3.paymentDetails(paymentID: paid, device: till).availableReturnAmount == Decimal(string: "149.75"))
            #expect(await qrError { _ = try await h.r3.refund(device: till, paymentID: 123, amount: 1) }?.statusCode == .purchaseNotFound)
            // -99000020: a loan purchase is refunded whole or not at all.
            let loan = try await h.paidPurchase(900, device: till, loan: true)
            #expect(try await h.r3.status(paymentID: loan).loanTerm == 12)
            #expect(await qrError { _ = try await h.r3.refund(device: till, paymentID: loan, amount: 100) }?.statusCode == .partialRefundNotPossible)
            _ = try await h.r3.refund(device: till, paymentID: loan, amount: 900)
            // The second organization's devices and purchases are its own.
            let second = h.r3.acting(for: try API.OrganizationBIN(QRHarness.secondBIN))
            #expect(await qrError { _ = try await second.createQR(device: till, amount: 100) }?.statusCode == .deviceNotFound)
            let theirs = try await second.registerDevice(id: "till-r3", tradePointID: 104039)
            #expect(theirs != till)
            _ = try await second.createQR(device: theirs, amount: 100)
        }
    }

    @Test func r3RemoteInvoices() async throws {
        // An hour between reads, so that a loaded machine's pause between the two reads below cannot
        // reach it (with the default 10 s, a CI run under load saw the second read accepted).
        try await withQRSandbox(configure: { $0.qrAPI.remoteStatusMinInterval = 3600 }) { h in
            let till = try await h.r3.registerDevice(id: "till-remote", tradePointID: 19)
            #expect(try await h.r3.clientInfo(phoneNumber: "87071234567", device: till).clientName.hasSuffix("4567"))
            #expect(await qrError { _ = try await h.r3.clientInfo(phoneNumber: "87070000000", device: till) }?.statusCode == .undocumented(-1404))
            let invoice = try await h.r3.createRemoteInvoice(device: till, phoneNumber: "87071234567", amount: 4200, comment: "Roses")
            #expect(try await h.r3.status(paymentID: invoice.paymentID).status == .remotePaymentCreated)
            // A second read right away looks like a timer: refused.
            let refused = await qrError { _ = try await h.r3.status(paymentID: invoice.paymentID) }
            #expect(refused?.statusCode == .serviceUnavailable)
            #expect(
                await qrError { _ = try await h.r3.cancelRemoteInvoice(device: till, paymentID: 77) }?.statusCode == .purchaseNotFoundForOperation)
            #expect(try await h.r3.cancelRemoteInvoice(device: till, paymentID: invoice.paymentID) == .remotePaymentCanceled)
            await h.sandbox.advanceClock(by: 3601)
            #expect(try await h.r3.status(paymentID: invoice.paymentID).status == .remotePaymentCanceled)
            // A paid invoice belongs to the billed number; one left alone expires after 24 hours.
            let paid = try await h.r3.createRemoteInvoice(device: till, phoneNumber: "77012223344", amount: 100)
            try await h.sandbox.act(.confirm, paymentID: paid.paymentID)
            #expect(await h.sandbox.qrPurchases().first { $0.id == paid.paymentID }?.customer == "77012223344")
            #expect(
                await qrError { _ = try await h.r3.cancelRemoteInvoice(device: till, paymentID: paid.paymentID) }?.statusCode == .undocumented(-1401))
            let stale = try await h.r3.createRemoteInvoice(device: till, phoneNumber: "77012223344", amount: 100)
            await h.sandbox.advanceClock(by: 86_401)
            #expect(try await h.r3.status(paymentID: stale.paymentID).status == .error)
            // -1401 for a malformed number, from the server (the SDK refuses it itself).
            let raw = try await h.raw(
                .GET, h.httpURL.absoluteString + "/r3/v01/remote/client-info?phoneNumber=123&deviceToken=\(till.value)")
            #expect(raw.body.contains("-10000"))  // no certificate over plain HTTP
        }
    }

    @Test func clientInfoIsLimitedPerDevice() async throws {
        try await withQRSandbox(configure: { $0.qrAPI.clientInfoPerMinute = 2 }) { h in
            let till = try await h.r3.registerDevice(id: "till-info", tradePointID: 19)
            _ = try await h.r3.clientInfo(phoneNumber: "87071234567", device: till)
            _ = try await h.r3.clientInfo(phoneNumber: "87071234567", device: till)
            let error = await qrError { _ = try await h.r3.clientInfo(phoneNumber: "87071234567", device: till) }
            #expect(error?.statusCode == .serviceUnavailable)
            await h.sandbox.advanceClock(by: 61)
            _ = try await h.r3.clientInfo(phoneNumber: "87071234567", device: till)
        }
    }

    @Test func callsOutsideTheirSchemeAreNotFound() async throws {
        try await withQRSandbox { h in
            for path in ["/r1/v01/return/create", "/r1/v01/payment/return", "/r1/v01/remote/create", "/r1/v02/qr/create", "/r1/v01/nothing"] {
                let reply = try await h.r1Raw(.POST, path, body: "{}")
                #expect(reply.status == 404, "\(path)")
            }
            let details = try await h.r1Raw(.GET, "/r1/v01/payment/details?QrPaymentId=1&DeviceToken=x")
            #expect(details.status == 404)
            let points = try await h.r1Raw(.GET, "/r1/v01/partner/tradepoints/123456789012")
            #expect(points.status == 404)
        }
    }

    /// Requests written the way the public Go, PHP and Java wrappers write them.
    @Test func independentClientsWithTheirOwnCasingAndTypes() async throws {
        try await withQRSandbox { h in
            // HOL: lowercase keys; ROM: TradePointId as a string, a trailing slash; no X-Request-ID.
            var reply = try await h.r1Raw(.POST, "/r1/v01/device/register", body: #"{"deviceId":"pos-7","tradePointId":19}"#)
            #expect(reply.status == 200)
            let token = try #require(json(reply.body)["Data"].flatMap { ($0 as? [String: Any])?["DeviceToken"] as? String })
            reply = try await h.r1Raw(.POST, "/r1/v01/device/register/", body: #"{"DeviceId":"pos-7","TradePointId":"19"}"#)
            #expect(reply.body.contains(token))
            // Amount as an integer, as a string; ExternalId optional.
            reply = try await h.r1Raw(.POST, "/r1/v01/qr/create/", body: #"{"DeviceToken":"\#(token)","Amount":100}"#)
            let data = try #require(json(reply.body)["Data"] as? [String: Any])
            #expect(json(reply.body)["StatusCode"] as? Int == 0 && json(reply.body)["Message"] as? String == "OK")
            let id = try #require(data["QrPaymentId"] as? Int64)
            #expect((data["ExpireDate"] as? String)?.hasSuffix("+05:00") == true)
            reply = try await h.r1Raw(.POST, "/r1/v01/qr/create-link", body: #"{"devicetoken":"\#(token)","amount":"250.00"}"#)
            #expect(reply.body.contains(#""PaymentId":"#) && reply.body.contains(#""LinkActivationWaitTimeout":180"#))
            // The test endpoints: qrPaymentId as a string (the guide) or a number (chaospay).
            reply = try await h.r1Raw(.POST, "/r1/v01/test/payment/scan", body: #"{"qrPaymentId":"\#(id)"}"#)
            #expect(json(reply.body)["StatusCode"] as? Int == 0 && json(reply.body)["Message"] as? String == "OK" && json(reply.body).count == 2)
            reply = try await h.r1Raw(.POST, "/r1/v01/test/payment/confirm/", body: #"{"qrPaymentId":\#(id)}"#)
            #expect(reply.status == 200)
            reply = try await h.r1Raw(.GET, "/r1/v02/payment/status/\(id)/")
            let status = try #require(json(reply.body)["Data"] as? [String: Any])
            #expect(status["Status"] as? String == "Processed" && status["TransactionId"] is String)
            // Malformed input is a validation error, not a Kaspi code.
            reply = try await h.r1Raw(.POST, "/r1/v01/device/register", body: #"{"DeviceId":"касса 1","TradePointId":19}"#)
            #expect(reply.status == 400 && json(reply.body)["StatusCode"] == nil)
            reply = try await h.r1Raw(.POST, "/r1/v01/device/register", body: "not json")
            #expect(reply.status == 400)
            reply = try await h.r1Raw(.POST, "/r1/v01/device/register", body: #"{"TradePointId":19}"#)
            #expect(reply.status == 400)
            // r3's remote calls take DeviceToken as a number too (compared as a string).
            let r3 = try await h.raw(
                .POST, h.tlsURL.absoluteString + "/r3/v01/remote/create",
                body: #"{"OrganizationBin":"123456789012","Amount":100,"PhoneNumber":"87077777777","DeviceToken":321}"#,
                headers: ["Content-Type": "application/json"], client: try tlsClient(h))
            #expect(r3.body.contains(#""StatusCode":-1501"#))
            // r3 keys in any case, with a trailing slash.
            let tradepoints = try await h.raw(.GET, h.tlsURL.absoluteString + "/r3/v01/partner/tradepoints/987654321098/", client: try tlsClient(h))
            #expect(tradepoints.body.contains(#""TradePointId":104039"#))
        }
    }

    @Test(arguments: [false, true])
    func purchasesBeyondTheMemoryLimitAreReadBackFromDisk(withDataFile: Bool) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qr-archive-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) } }
        try await withQRSandbox(configure: {
            $0.memoryOrderLimit = 16
            if withDataFile { $0.dataPath = file }
        }) { h in
            let till = try await h.device("till-archive")
            var made: [API.QRPurchase] = []
            for i in 0..<100 { made.append(try await h.r1.createQR(device: till, amount: Decimal(100 + i))) }
            let link = try await h.r1.createLink(device: till, amount: 777)
            for _ in 0..<40 { _ = try await h.r1.createQR(device: till, amount: 1) }
            let stats = try await h.raw(.GET, h.httpURL.absoluteString + "/sandbox/stats")
            let counts = try #require(try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])
            #expect(counts["qrPurchases"] as? Int == 141)
            #expect((counts["qrPurchasesInMemory"] as? Int).map { $0 <= 16 } == true, "\(stats.body)")
            // The oldest, long out of memory: read, paid (with its payer for a return), refunded.
            #expect(try await h.r1.status(paymentID: made[0].paymentID).status == .qrTokenCreated)
            try await h.r1.simulate(.scan, paymentID: made[0].paymentID)
            try await h.r1.simulate(.confirm, paymentID: made[0].paymentID)
            for qr in made.dropFirst(1) { #expect(try await h.r1.status(paymentID: qr.paymentID).status == .qrTokenCreated) }
            #expect(try await h.r1.status(paymentID: made[0].paymentID).status == .processed)
            let returnQR = try await h.r2.createReturn(device: till, externalID: "return-archive")
            try await h.sandbox.scanReturn(returnQR.returnID)
            #expect(try await h.r2.returnOperations(device: till, returnID: returnQR.returnID, maxResult: 5).map(\.paymentID) == [made[0].paymentID])
            _ = try await h.r2.refund(device: till, paymentID: made[0].paymentID, returnID: returnQR.returnID, amount: 40)
            #expect(try await h.r2.paymentDetails(paymentID: made[0].paymentID, device: till).availableReturnAmount == 60)
            // The payment page finds a purchase by its link's token once memory let it go.
            let page = try await h.raw(.GET, link.paymentLink)
            #expect(page.status == 200 && page.body.contains("777"))
            // Every purchase is listed once, oldest first, each with its amount.
            let listed = await h.sandbox.qrPurchases()
            #expect(listed.count == 141)
            #expect(Array(listed.prefix(100)).map(\.id) == made.map(\.paymentID))
            #expect(listed.prefix(100).enumerated().allSatisfy { $0.element.amount == Decimal(100 + $0.offset) })
            // Deadlines apply to purchases on disk as to those in memory.
            await h.sandbox.advanceClock(by: 181)
            #expect(try await h.r1.status(paymentID: made[50].paymentID).status == .error)
            // A reset forgets them, on disk too.
            _ = try await h.raw(.POST, h.httpURL.absoluteString + "/sandbox/qr/reset")
            #expect(await h.sandbox.qrPurchases().isEmpty)
            #expect(await qrError { _ = try await h.r1.status(paymentID: made[0].paymentID) }?.statusCode == .purchaseNotFound)
        }
    }

    @Test func stateSurvivesARestartWithData() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qr-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (token, id) = try await withQRSandbox(configure: { $0.dataPath = file }) { h in
            let token = try await h.device("till-persist")
            let paid = try await h.paidPurchase(800, device: token)
            _ = try await h.r3.refund(device: token, paymentID: paid, amount: 300)
            return (token, paid)
        }
        // Stored under the wire names, whatever the Swift names (see the guide's sandbox test).
        let records = try await storedDocuments(file, table: "sandbox_qr")
        #expect(records.contains { $0.contains(#""deviceId":"till-persist""#) && $0.contains(#""tradePointId":19"#) })
        #expect(records.contains { $0.contains(#""externalId":"#) && $0.contains(#""transactionId":"#) })
        try await withQRSandbox(configure: { $0.dataPath = file }) { h in
            #expect(try await h.r1.registerDevice(id: "till-persist", tradePointID: 19) == token)
            #expect(try await h.r1.status(paymentID: id).status == .processed)
            #expect(try await h.r3.paymentDetails(paymentID: id, device: token).availableReturnAmount == 500)
            let next = try await h.r1.createQR(device: token, amount: 100)
            #expect(next.paymentID > id)
        }
    }
}

/// An HTTP client presenting the sandbox's client certificate.
func tlsClient(_ h: QRHarness) throws -> HTTPClient {
    var tls = try KaspiTLSSettings(
        clientIdentity: .pem(certificatePath: h.certificates.clientCertificate, keyPath: h.certificates.clientKey),
        trust: .caBundle(path: h.certificates.caCertificate)
    ).makeTLSConfiguration()
    tls.minimumTLSVersion = .tlsv12
    var configuration = HTTPClient.Configuration()
    configuration.tlsConfiguration = tls
    return TLSClients.shared.client(for: configuration, key: h.certificates.directory)
}

/// Clients made by `tlsClient`, kept for the process (an HTTPClient must be shut down, and
/// tests are short).
final class TLSClients: Sendable {
    static let shared = TLSClients()
    private let clients = Mutex<[String: HTTPClient]>([:])
    func client(for configuration: HTTPClient.Configuration, key: String) -> HTTPClient {
        clients.withLock { clients in
            if let client = clients[key] { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}

/// Every answer of the sandbox's Kaspi QR API held against `openapi/kaspi-qr.yaml`.
@Suite struct QRAPIContractTests {
    @Test func everyAnswerMatchesTheDocument() async throws {
        let contract = try ContractChecker.kaspiQR()
        try await withQRSandbox { h in
            let tls = try tlsClient(h)
            var checked = 0
            func call(
                _ method: HTTPMethod, _ scheme: String, _ path: String, template: String, body: String? = nil
            ) async throws -> [String: Any] {
                let base = scheme == "r1" ? h.httpURL.absoluteString : h.tlsURL.absoluteString
                var headers = ["Content-Type": "application/json", "X-Request-ID": UUID().uuidString]
                if scheme == "r1" { headers["Api-Key"] = QRHarness.apiKey }
                let reply = try await h.raw(
                    method, "\(base)/\(scheme)\(path)", body: body, headers: headers, client: scheme == "r1" ? noRedirects : tls)
                let schema = try contract.responseSchema(path: template, method: method.rawValue.lowercased(), status: reply.status)
                let problems = contract.violations(of: Array(reply.body.utf8), against: schema)
                #expect(problems.isEmpty, "\(method) \(scheme)\(path) → \(reply.status) \(reply.body): \(problems)")
                checked += 1
                return json(reply.body)
            }
            func data(_ object: [String: Any]) -> [String: Any] { object["Data"] as? [String: Any] ?? [:] }

            _ = try await call(.GET, "r1", "/v01/health/ping", template: "/v01/health/ping")
            _ = try await call(.GET, "r1", "/v01/partner/tradepoints", template: "/v01/partner/tradepoints")
            _ = try await call(.GET, "r3", "/v01/partner/tradepoints/123456789012", template: "/v01/partner/tradepoints/{organizationBin}")
            _ = try await call(.GET, "r3", "/v01/partner/tradepoints/000000000001", template: "/v01/partner/tradepoints/{organizationBin}")
            let registered = try await call(
                .POST, "r1", "/v01/device/register", template: "/v01/device/register", body: #"{"DeviceId":"c-1","TradePointId":19}"#)
            let token = try #require(data(registered)["DeviceToken"] as? String)
            _ = try await call(.POST, "r1", "/v01/device/register", template: "/v01/device/register", body: #"{"DeviceId":"c-1","TradePointId":20}"#)
            _ = try await call(.POST, "r1", "/v01/device/register", template: "/v01/device/register", body: #"{"DeviceId":"c 1"}"#)
            let qr = try await call(
                .POST, "r1", "/v01/qr/create", template: "/v01/qr/create", body: #"{"DeviceToken":"\#(token)","Amount":500,"ExternalId":"o-1"}"#)
            let id = try #require(data(qr)["QrPaymentId"] as? Int64)
            _ = try await call(.POST, "r1", "/v01/qr/create", template: "/v01/qr/create", body: #"{"DeviceToken":"nope","Amount":500}"#)
            _ = try await call(
                .POST, "r1", "/v01/qr/create-link", template: "/v01/qr/create-link", body: #"{"DeviceToken":"\#(token)","Amount":"99.99"}"#)
            for action in ["scan", "confirm", "confirm"] {
                _ = try await call(
                    .POST, "r1", "/v01/test/payment/\(action)", template: "/v01/test/payment/{action}", body: #"{"qrPaymentId":"\#(id)"}"#)
            }
            _ = try await call(.GET, "r1", "/v01/payment/status/\(id)", template: "/v01/payment/status/{QrPaymentId}")
            _ = try await call(.GET, "r1", "/v02/payment/status/\(id)", template: "/v02/payment/status/{QrPaymentId}")
            _ = try await call(.GET, "r1", "/v02/payment/status/1", template: "/v02/payment/status/{QrPaymentId}")
            _ = try await call(.GET, "r2", "/v01/payment/details?QrPaymentId=\(id)&DeviceToken=\(token)", template: "/v01/payment/details")
            _ = try await call(.GET, "r1", "/v01/payment/details?QrPaymentId=\(id)&DeviceToken=\(token)", template: "/v01/payment/details")
            _ = try await call(
                .POST, "r3", "/v01/payment/return", template: "/v01/payment/return",
                body: #"{"OrganizationBin":"123456789012","DeviceToken":"\#(token)","QrPaymentId":\#(id),"Amount":100}"#)
            _ = try await call(
                .POST, "r3", "/v01/payment/return", template: "/v01/payment/return",
                body: #"{"OrganizationBin":"123456789012","DeviceToken":"\#(token)","QrPaymentId":\#(id),"Amount":1000}"#)
            let returnQR = try await call(.POST, "r2", "/v01/return/create", template: "/v01/return/create", body: #"{"DeviceToken":"\#(token)"}"#)
            let returnID = try #require(data(returnQR)["QrReturnId"] as? Int64)
            try await h.sandbox.scanReturn(returnID)
            _ = try await call(.GET, "r2", "/v01/return/status/\(returnID)", template: "/v01/return/status/{QrReturnId}")
            _ = try await call(
                .POST, "r2", "/v01/return/operations", template: "/v01/return/operations",
                body: #"{"DeviceToken":"\#(token)","QrReturnId":\#(returnID),"MaxResult":3}"#)
            _ = try await call(
                .POST, "r2", "/v01/payment/return", template: "/v01/payment/return",
                body: #"{"DeviceToken":"\#(token)","QrPaymentId":\#(id),"QrReturnId":\#(returnID),"Amount":50}"#)
            _ = try await call(
                .GET, "r3", "/v01/remote/client-info?PhoneNumber=87071234567&DeviceToken=\(token)", template: "/v01/remote/client-info")
            let invoice = try await call(
                .POST, "r3", "/v01/remote/create", template: "/v01/remote/create",
                body: #"{"OrganizationBin":"123456789012","Amount":10,"PhoneNumber":"87071234567","DeviceToken":"\#(token)","Comment":"c"}"#)
            let invoiceID = try #require(data(invoice)["QrPaymentId"] as? Int64)
            _ = try await call(
                .POST, "r3", "/v01/remote/cancel", template: "/v01/remote/cancel",
                body: #"{"OrganizationBin":"123456789012","QrPaymentId":\#(invoiceID),"DeviceToken":"\#(token)"}"#)
            _ = try await call(.POST, "r1", "/v01/device/delete", template: "/v01/device/delete", body: #"{"DeviceToken":"\#(token)"}"#)
            _ = try await call(.POST, "r1", "/v01/return/create", template: "/v01/return/create", body: "{}")
            #expect(checked == 29)
        }
    }
}

/// Independent clients in Node.js, with their own HTTP, TLS and PKCS#12 code.
@Suite struct QRAPIIndependentClientTests {
    @Test(.requires(.node)) func theirCasingTypesAndCertificatesWork() async throws {
        let node = try ExternalTool.node.require()
        let script = ContractChecker.repositoryRoot().appendingPathComponent("Tests/clients/kaspi-qr-clients.mjs").path
        try await withQRSandbox { h in
            var environment = ProcessInfo.processInfo.environment
            environment["QR_HTTP"] = h.httpURL.absoluteString
            environment["QR_TLS"] = h.tlsURL.absoluteString
            environment["QR_CERTS"] = h.certificates.directory
            environment["QR_P12_PASSWORD"] = "sandbox-pass"
            environment["QR_API_KEY"] = QRHarness.apiKey
            let output = try await ProcessRunner.run(node, [script], environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            let result = json(output.stdout)
            let hol = result["hol"] as? [String: Any] ?? [:]
            #expect(hol["register"] as? Int == 0 && (hol["token"] as? String)?.count == 36)
            #expect((hol["qrToken"] as? String)?.count == 41 && hol["status"] as? String == "QrTokenCreated")
            let bur = result["bur"] as? [String: Any] ?? [:]
            #expect((bur["link"] as? String)?.contains("/pay/") == true && bur["timeout"] as? Int == 180)
            #expect(bur["scan"] as? Int == 0 && bur["confirm"] as? Int == 0 && bur["status"] as? String == "Processed")
            let rom = result["rom"] as? [String: Any] ?? [:]
            #expect(rom["register"] as? Int == 0 && rom["unknown"] as? Int == -1601 && rom["early"] as? Int == -99_000_011)
            #expect(rom["refund"] is Int && rom["available"] as? Int == 60)
            #expect(rom["tradepoints"] as? [Int] == [19, 20, 21])
            let dak = result["dak"] as? [String: Any] ?? [:]
            let v02 = dak["v02"] as? [String: Any] ?? [:]
            #expect(v02["Status"] as? String == "Processed" && v02["TransactionId"] is String)
            #expect(dak["remoteWithNumber"] as? Int == -1501)
            #expect((dak["clientName"] as? String)?.isEmpty == false)
            let bare = result["noCertificate"] as? [String: Any] ?? [:]
            #expect(bare["status"] as? Int == 200 && bare["code"] as? Int == -10000)
        }
    }
}

@Suite("Sandbox certificates: keys are their owner's from the first byte")
struct SandboxCertificateFileTests {
    @Test("keys and the PKCS#12 password are 0600, certificates 0644, and a planted link is replaced, not followed")
    func keysArePrivateAndLinksAreNotFollowed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kaspi-certs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Someone else's file, and a link to it where the client key will go.
        let target = directory + "/someone-elses-file"
        try Data("untouched".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: directory + "/client-key.pem", withDestinationPath: target)
        let paths = try SandboxCertificates.generate(in: directory, organizations: [QRHarness.bin])
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "untouched")
        func mode(_ path: String) throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) }
        for key in [paths.caKey, paths.serverKey, paths.clientKey, paths.clientPKCS12, paths.clientPKCS12Password] {
            #expect(try mode(key) == 0o600, "\(key)")
            #expect(try FileManager.default.attributesOfItem(atPath: key)[.type] as? FileAttributeType == .typeRegular, "\(key)")
        }
        for certificate in [paths.caCertificate, paths.serverCertificate, paths.clientCertificate] { #expect(try mode(certificate) == 0o644) }
    }
}
