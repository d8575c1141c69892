import Foundation
import HTTPTypes
import KaspiPay
import KaspiPayTesting
import Testing

/// The Kaspi QR API client against scripted answers: the guide's example responses,
/// tolerant decoding, errors, retries and polling on a test clock.
@Suite struct QRAPITests {
    typealias API = KaspiQRAPI

    static func examples() throws -> [String: String] {
        let url = try #require(Bundle.module.url(forResource: "Vectors/kaspi-qr/guide-examples", withExtension: "json"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var out: [String: String] = [:]
        for (key, value) in object {
            out[key] = String(decoding: try JSONSerialization.data(withJSONObject: value), as: UTF8.self)
        }
        return out
    }

    static let token = try! API.DeviceToken("2be4cc91-5895-48f8-8bc2-86c7bd419b3b")

    func r1(
        _ transport: ScriptedTransport, clock: TestClock = TestClock(),
        retry: RetryPolicy = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(10), jitter: 0)
    ) throws -> API.Client<API.R1> {
        try API.Client<API.R1>(
            apiKey: try APIKey("test_secret_key"), configuration: .init(host: .custom(URL(string: "https://qr.example:8543")!), retryPolicy: retry),
            transport: transport, clock: clock)
    }

    func r2(_ transport: ScriptedTransport) throws -> API.Client<API.R2> {
        try API.Client<API.R2>(configuration: .init(host: .test), transport: transport, clock: TestClock())
    }

    func r3(_ transport: ScriptedTransport) throws -> API.Client<API.R3> {
        try API.Client<API.R3>(
            organizationBin: try API.OrganizationBIN("123456789012"), configuration: .init(host: .test), transport: transport, clock: TestClock())
    }

    @Test func everyExampleResponseOfTheGuideDecodes() async throws {
        let e = try Self.examples()
        let t = ScriptedTransport([
            .json(e["tradepoints"]!), .json(e["device-register"]!), .json(e["device-delete"]!), .json(e["qr-create"]!),
            .json(e["qr-create-link"]!), .json(e["payment-status"]!), .json(e["health-ping"]!), .json(e["test-scan"]!),
        ])
        let client = try r1(t)
        let points = try await client.tradePoints()
        #expect(points == [API.TradePoint(id: 1, name: "Магазин 1 (Ауэзова, 65)"), API.TradePoint(id: 2, name: "Магазин 2 (Жарокова, 48)")])
        let token = try await client.registerDevice(id: "till-1", tradePointID: 1)
        #expect(token.value == "2be4cc91-5895-48f8-8bc2-86c7bd419b3b")
        try await client.deleteDevice(token)
        let qr = try await client.createQR(device: token, amount: 200, externalID: "order-1")
        #expect(qr.qrToken == "51236903777280167836178166503744993984459")
        #expect(qr.paymentID == 15)
        #expect(qr.paymentMethods == ["Gold", "Red", "Loan"])
        #expect(qr.options == API.BehaviorOptions(statusPollingInterval: 5, scanTimeout: 180, confirmationTimeout: 65))
        #expect(qr.expireDate == Date(timeIntervalSince1970: 1_579_149_000))  // 2020-01-16T04:30:00Z
        let link = try await client.createLink(device: token, amount: 200)
        #expect(link.paymentLink.hasPrefix("https://pay.kaspi.kz/pay/"))
        #expect(link.paymentID == 15)
        #expect(link.options.scanTimeout == 180)
        let status = try await client.status(paymentID: 15)
        #expect(status.status == .wait)
        try await client.ping()
        try await client.simulate(.scan, paymentID: 15)

        let t2 = ScriptedTransport([
            .json(e["return-create"]!), .json(e["return-status"]!), .json(e["return-operations"]!), .json(e["payment-details"]!),
            .json(e["payment-return"]!),
        ])
        let standard = try r2(t2)
        let returnQR = try await standard.createReturn(device: token)
        #expect(returnQR.returnID == 15 && returnQR.pollingInterval == 5 && returnQR.scanTimeout == 180)
        #expect(try await standard.returnStatus(returnID: 15) == .qrTokenCreated)
        let operations = try await standard.returnOperations(device: token, returnID: 15)
        #expect(operations.count == 1 && operations[0].paymentID == 900_077_110 && operations[0].amount == 1)
        // No offset: Almaty time, which was UTC+6 in 2021.
        #expect(operations[0].transactionDate.map { abs($0.timeIntervalSince1970 - 1_638_941_748.1566667) < 0.001 } == true)
        let details = try await standard.paymentDetails(paymentID: 501_020_796, device: token)
        #expect(details.totalAmount == 11 && details.availableReturnAmount == 11)
        #expect(details.transactionDate.map { abs($0.timeIntervalSince1970 - 1_635_918_914.166) < 0.001 } == true)  // 2021-11-03T05:55:14.166Z
        #expect(try await standard.refund(device: token, paymentID: 501_020_796, returnID: 15, amount: 1).returnOperationID == 15)

        let t3 = ScriptedTransport([.json(e["client-info"]!), .json(e["remote-create"]!), .json(e["remote-cancel"]!)])
        let enhanced = try r3(t3)
        #expect(try await enhanced.clientInfo(phoneNumber: "87077777777", device: token).clientName == "ФИО")
        #expect(try await enhanced.createRemoteInvoice(device: token, phoneNumber: "87077777777", amount: 100).paymentID == 15)
        #expect(try await enhanced.cancelRemoteInvoice(device: token, paymentID: 15) == .remotePaymentCanceled)
    }

    @Test func datesInEveryShapeKaspiSends() throws {
        let parse = API.DateParser.parse
        #expect(parse("2020-08-09T18:31:42+06") == Date(timeIntervalSince1970: 1_596_976_302))
        #expect(parse("2025-10-22T17:10:50.717+05:00").map { abs($0.timeIntervalSince1970 - 1_761_135_050.717) < 0.0005 } == true)
        #expect(parse("2025-05-16T10:30:00+06:00") == Date(timeIntervalSince1970: 1_747_369_800))
        #expect(parse("2025-05-16T04:30:00Z") == Date(timeIntervalSince1970: 1_747_369_800))
        #expect(parse("2025-05-16T10:30:00+0600") == Date(timeIntervalSince1970: 1_747_369_800))
        #expect(parse("2021-11-3T11:55:14.166+06:00") != nil)
        #expect(parse("2021-12-08T11:35:48.1566667") != nil)
        for bad in [
            "", "2021-13-01T00:00:00Z", "2021-02-30T00:00:00Z", "yesterday", "2021-01-01T25:00:00Z", "2021-01-01T00:00:00+6",
            "2021-01-01T00:00:00.1234567890Z",
        ] {
            #expect(parse(bad) == nil, "\(bad)")
        }
        let now = Date(timeIntervalSince1970: 1_761_135_050.717)
        #expect(API.DateParser.format(now) == "2025-10-22T17:10:50.717+05:00")
        #expect(parse(API.DateParser.format(now)).map { abs($0.timeIntervalSince(now)) < 0.001 } == true)
    }

    @Test func tolerantDecodingOfNumbersStringsCasingAndMissingMessage() async throws {
        let t = ScriptedTransport([
            .json(
                #"{"statusCode":"0","data":{"qrToken":"123","expireDate":"2025-05-16T10:30:00+06:00","qrPaymentId":"12800627774","paymentMethods":["Gold"],"qrPaymentBehaviorOptions":{"StatusPollingInterval":"3","QrCodeScanWaitTimeout":"100","PaymentConfirmationTimeout":70}}}"#
            ),
            .json(#"{"Data":{"DeviceToken":4242},"StatusCode":0}"#),
            .json(#"{"StatusCode":0,"Data":{"Status":"SomethingNew","TransactionId":35134863,"Amount":"250.50","LoanTerm":"12","IsOffer":"true"}}"#),
            .json(#"{"StatusCode":0}"#),
        ])
        let client = try r1(t)
        let qr = try await client.createQR(device: Self.token, amount: 1)
        #expect(qr.paymentID == 12_800_627_774)
        #expect(qr.options == API.BehaviorOptions(statusPollingInterval: 3, scanTimeout: 100, confirmationTimeout: 70))
        #expect(try await client.registerDevice(id: "a", tradePointID: 1).value == "4242")
        let status = try await client.status(paymentID: 1)
        #expect(status.status == .unknown("SomethingNew") && !status.status.isFinal)
        #expect(status.transactionID == "35134863" && status.amount == Decimal(string: "250.50") && status.loanTerm == 12 && status.isOffer == true)
        try await client.ping()
    }

    @Test func errorsComeFromStatusCodeWhateverTheHTTPStatus() async throws {
        let t = ScriptedTransport([
            .json(#"{"StatusCode":-1601,"Message":"Покупка не найдена"}"#),
            .json(#"{"StatusCode":-99000018,"Message":"x"}"#, status: 400),
            .json(#"{"StatusCode":990000029}"#),
            .json(#"{"StatusCode":123456}"#),
            .respond(status: 404, body: "<html>not found</html>"),
        ])
        let client = try r1(t)
        await #expect(throws: API.APIError.kaspi(.purchaseNotFound, message: "Покупка не найдена", call: "payment/status")) {
            _ = try await client.status(paymentID: 1)
        }
        await #expect(throws: API.APIError.kaspi(.tradePointDisabled, message: "x", call: "qr/create")) {
            _ = try await client.createQR(device: Self.token, amount: 5)
        }
        do {
            try await client.ping()
            Issue.record("no error")
        } catch {
            #expect(error.statusCode == .undocumented(990_000_029))
            #expect(error.description.contains("unknown code 990000029"))
            #expect(error.audience == .payer)
        }
        do {
            try await client.ping()
            Issue.record("no error")
        } catch {
            #expect(error.statusCode == .unknown(123456) && !error.isRetryable)
        }
        await #expect(throws: API.APIError.self) { _ = try await client.tradePoints() }
    }

    @Test func everyDocumentedCodeHasItsOwnMeaningAndAdvice() {
        var codes = Set<String>()
        for status in API.StatusCode.documented {
            #expect(API.StatusCode(rawValue: status.rawValue) == status)
            #expect(codes.insert(status.code).inserted)
            #expect(!status.advice.isEmpty && !status.meaning.isEmpty)
        }
        #expect(API.StatusCode.documented.count == 24)
        #expect(API.StatusCode(rawValue: -990_000_026) == .tradePointDoesNotAcceptQR)
        #expect(API.StatusCode(rawValue: 99_000_033) == .noPaymentMethods)
        #expect(API.StatusCode.serviceUnavailable.isRetryable && API.StatusCode.refundFailed.isRetryable)
        #expect(!API.StatusCode.refundExceedsAmount.isRetryable && API.StatusCode.refundExceedsAmount.audience == .merchant)
        #expect(API.StatusCode.undocumented(-1404).description == "unknown code -1404")
    }

    @Test func everyRequestCarriesItsHeadersAndPascalCaseBody() async throws {
        let t = ScriptedTransport(handler: { _, _ in .json(#"{"StatusCode":0,"Data":{"QrPaymentId":7}}"#) })
        let client = try r3(t)
        _ = try await client.createRemoteInvoice(
            device: Self.token, phoneNumber: "+7 707 777-77-77", amount: Decimal(string: "100.5")!, comment: "Букет")
        _ = try await client.createRemoteInvoice(device: Self.token, phoneNumber: "87077777777", amount: 1)
        let requests = t.requests
        #expect(requests.count == 2)
        let first = requests[0]
        #expect(first.request.path == "/r3/v01/remote/create")
        #expect(first.request.authority == "mtokentest.kaspi.kz:8545")
        #expect(first.request.headerFields[HTTPField.Name("X-Request-ID")!]?.count == 32)
        #expect(first.request.headerFields[HTTPField.Name("X-Request-ID")!] != requests[1].request.headerFields[HTTPField.Name("X-Request-ID")!])
        #expect(first.request.headerFields[.contentType] == "application/json")
        #expect(first.request.headerFields[HTTPField.Name("Api-Key")!] == nil)
        #expect(
            first.bodyText
                == #"{"OrganizationBin":"123456789012","Amount":100.5,"PhoneNumber":"77077777777","DeviceToken":"2be4cc91-5895-48f8-8bc2-86c7bd419b3b","Comment":"Букет"}"#
        )

        let t1 = ScriptedTransport(handler: { _, _ in .json(#"{"StatusCode":0,"Data":[]}"#) })
        _ = try await r1(t1).tradePoints()
        #expect(t1.requests[0].request.headerFields[HTTPField.Name("Api-Key")!] == "test_secret_key")
        #expect(t1.requests[0].request.path == "/r1/v01/partner/tradepoints")
        _ = try await r3(t1).acting(for: try API.OrganizationBIN("000000000001")).tradePoints()
        #expect(t1.requests[1].request.path == "/r3/v01/partner/tradepoints/000000000001")
    }

    @Test func invalidArgumentsAreRefusedBeforeSending() async throws {
        let t = ScriptedTransport([])
        let client = try r3(t)
        for amount in [Decimal(0), Decimal(-5), Decimal(string: "1.005")!] {
            await #expect(throws: API.APIError.self) { _ = try await client.createQR(device: Self.token, amount: amount) }
        }
        await #expect(throws: API.APIError.self) { _ = try await client.registerDevice(id: "касса 1", tradePointID: 1) }
        await #expect(throws: API.APIError.self) { _ = try await client.clientInfo(phoneNumber: "12345", device: Self.token) }
        #expect(t.requests.isEmpty)
        #expect(throws: ConfigurationError.self) { try API.OrganizationBIN("12345678901") }
        #expect(throws: ConfigurationError.unknownProductionHost("r2")) {
            _ = try API.Client<API.R2>(configuration: .init(host: .production), transport: t)
        }
        #expect(try API.Host.production.root(for: .r3).absoluteString == "https://qrapi-cert-ip.kaspi.kz")
        #expect(try API.Host.test.root(for: .r2).absoluteString == "https://mtokentest.kaspi.kz:8544")
    }

    @Test func aCreateWhoseAnswerIsLostIsNotSentAgain() async throws {
        let t = ScriptedTransport([.fail(.timedOut), .fail(.failed("connection reset")), .respond(status: 502, body: "Bad Gateway")])
        let client = try r1(t)
        await #expect(throws: API.APIError.unknownOutcome(call: "qr/create", externalID: "order-7", reason: "no answer in time")) {
            _ = try await client.createQR(device: Self.token, amount: 100, externalID: "order-7")
        }
        do {
            _ = try await client.createLink(device: Self.token, amount: 100)
            Issue.record("no error")
        } catch {
            guard case .unknownOutcome(_, let externalID?, _) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(!externalID.isEmpty)  // generated, so that the purchase can be found
            #expect(error.description.contains(externalID))
        }
        await #expect(throws: API.APIError.self) { _ = try await client.createQR(device: Self.token, amount: 100) }
        #expect(t.requests.count == 3)
    }

    @Test func readsAreRetriedOnTransientFailuresAndMinus999() async throws {
        let t = ScriptedTransport([
            .fail(.timedOut), .json(#"{"StatusCode":-999,"Message":"busy"}"#), .json(#"{"StatusCode":0,"Data":{"Status":"Processed"}}"#),
        ])
        let clock = TestClock()
        let client = try r1(t, clock: clock)
        let task = Task { try await client.status(paymentID: 9) }
        for _ in 0..<2 {
            await clock.waitForSleepers()
            await clock.advance(by: .seconds(1))
        }
        #expect(try await task.value.status == .processed)
        #expect(t.requests.count == 3)
    }

    @Test func statusFallsBackToV01WhenTheServerHasNoV02() async throws {
        let t = ScriptedTransport([
            .respond(status: 404, body: ""), .json(#"{"StatusCode":0,"Data":{"Status":"Wait"}}"#),
            .json(#"{"StatusCode":0,"Data":{"Status":"Processed"}}"#),
        ])
        let client = try r1(t)
        #expect(try await client.status(paymentID: 5).version == "v01")
        #expect(try await client.status(paymentID: 5).status == .processed)
        #expect(t.requests.map { $0.request.path ?? "" } == ["/r1/v02/payment/status/5", "/r1/v01/payment/status/5", "/r1/v01/payment/status/5"])
    }

    /// Answers `payment/status` from a list of statuses, one per read (the last repeats).
    static func statusTransport(_ statuses: [String]) -> ScriptedTransport {
        let queue = LockedQueue(statuses)
        return ScriptedTransport(handler: { _, _ in .json(#"{"StatusCode":0,"Data":{"Status":"\#(queue.next())"}}"#) })
    }

    static func purchase(scan: Int = 180, confirm: Int = 65, interval: Int = 5) -> API.QRPurchase {
        API.QRPurchase(
            qrToken: "1", expireDate: Date(), paymentID: 42, paymentMethods: [],
            options: .init(statusPollingInterval: interval, scanTimeout: scan, confirmationTimeout: confirm))
    }

    @Test func pollingFollowsTheServersIntervalAndEndsOnProcessed() async throws {
        let t = Self.statusTransport(["QrTokenCreated", "QrTokenCreated", "Wait", "Processed"])
        let clock = TestClock()
        let client = try r1(t, clock: clock)
        let seen = LockedQueue<API.PollProgress>([])
        let task = Task { try await client.waitForPayment(Self.purchase(interval: 7)) { seen.append($0) } }
        for _ in 0..<3 {
            #expect(await clock.waitForSleepers())
            await clock.advance(by: .seconds(7))
        }
        guard case .processed(let details) = try await task.value else {
            Issue.record("not processed")
            return
        }
        #expect(details.status == .processed)
        let progress = seen.all
        #expect(progress.map(\.status) == [.qrTokenCreated, .qrTokenCreated, .wait, .processed])
        #expect(progress.map(\.polls) == [1, 2, 3, 4])
        #expect(progress[2].phase == .confirmation && progress[1].phase == .scan)
        #expect(progress[0].remaining == .seconds(180))
        #expect(progress[2].remaining == .seconds(65))
    }

    @Test func theConfirmationDeadlineStartsAtTheFirstWait() async throws {
        // Scanned late: Wait is first seen at 180 s, the end of the scan window; the payer
        // still has 65 s from then, not from creation.
        let statuses = Array(repeating: "QrTokenCreated", count: 18) + ["Wait"]  // reads at 0 ... 170, then Wait from 180
        let t = Self.statusTransport(statuses)
        let clock = TestClock()
        let client = try r1(t, clock: clock)
        let task = Task { try await client.waitForPayment(Self.purchase(scan: 180, confirm: 65, interval: 10)) }
        // Reads at 0, 10, ..., 240 and the deadline 245: 25 sleeps.
        for _ in 0..<25 {
            #expect(await clock.waitForSleepers())
            await clock.advance(by: .seconds(10))
        }
        let outcome = try await task.value
        #expect(outcome == .expired(phase: .confirmation, lastStatus: .wait))
        #expect(t.requests.count == 26)
    }

    @Test func anUnscannedQRExpiresAtTheScanDeadlineAfterALastRead() async throws {
        let t = Self.statusTransport(["QrTokenCreated"])
        let clock = TestClock()
        let client = try r1(t, clock: clock)
        let task = Task { try await client.waitForPayment(Self.purchase(scan: 12, interval: 5)) }
        for _ in 0..<3 {
            #expect(await clock.waitForSleepers())
            await clock.advance(by: .seconds(5))
        }
        #expect(try await task.value == .expired(phase: .scan, lastStatus: .qrTokenCreated))
        #expect(t.requests.count == 4)  // at 0, 5, 10 and the deadline, 12
    }

    @Test func errorStatusEndsTheWaitAsFailed() async throws {
        let t = Self.statusTransport(["Wait", "Error"])
        let clock = TestClock()
        let client = try r1(t, clock: clock)
        let task = Task { try await client.waitForPayment(Self.purchase()) }
        await clock.waitForSleepers()
        await clock.advance(by: .seconds(5))
        guard case .failed = try await task.value else {
            Issue.record("not failed")
            return
        }
    }

    @Test func deadlinesAreAPureValue() {
        var deadlines = API.PaymentDeadlines(options: .guideDefaults)
        #expect(deadlines.phase == .scan && deadlines.deadline == .seconds(180))
        deadlines.observe(.qrTokenCreated, at: .seconds(20))
        deadlines.observe(.wait, at: .seconds(30))
        deadlines.observe(.wait, at: .seconds(60))
        #expect(deadlines.phase == .confirmation && deadlines.deadline == .seconds(95))
        #expect(!deadlines.hasExpired(at: .seconds(94)) && deadlines.hasExpired(at: .seconds(95)))
    }

    @Test func settingsFromTheEnvironment() throws {
        let r1 = try API.Settings(environment: ["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "test_k", "KASPI_QR_DEVICE_TOKEN": "2be4cc91"])
        #expect(r1.scheme == .r1 && r1.host == .test && r1.apiKey?.revealed == "test_k" && r1.deviceToken?.value == "2be4cc91")
        let r2 = try API.Settings(environment: [
            "KASPI_QR_SCHEME": "R2", "KASPI_QR_CERT": "c.pem", "KASPI_QR_KEY": "k.pem", "KASPI_QR_CA_BUNDLE": "ca.pem",
            "KASPI_BASE_URL": "https://127.0.0.1:8544",
        ])
        #expect(r2.certificates == API.CertificateFiles(identity: .pem(certificatePath: "c.pem", keyPath: "k.pem"), caBundlePath: "ca.pem"))
        #expect(r2.host == .custom(URL(string: "https://127.0.0.1:8544")!))
        let r3 = try API.Settings(environment: [
            "KASPI_QR_SCHEME": "r3", "KASPI_QR_PKCS12": "c.p12", "KASPI_QR_PKCS12_PASSWORD": "", "KASPI_QR_ORGANIZATION_BIN": "000000000001",
            "KASPI_ENV": "production",
        ])
        #expect(r3.organizationBin?.value == "000000000001" && r3.host == .production)
        #expect(r3.certificates?.identity == .pkcs12(path: "c.p12", password: ""))
        let cases: [([String: String], ConfigurationError)] = [
            ([:], .missingVariable("KASPI_QR_SCHEME")),
            (["KASPI_QR_SCHEME": "r4"], .invalidScheme("r4")),
            (["KASPI_QR_SCHEME": "r1"], .missingVariable("KASPI_QR_API_KEY")),
            (["KASPI_QR_SCHEME": "r2", "KASPI_QR_CERT": "c.pem"], .missingVariable("KASPI_QR_KEY")),
            (["KASPI_QR_SCHEME": "r2", "KASPI_QR_PKCS12": "c.p12"], .missingVariable("KASPI_QR_PKCS12_PASSWORD")),
            (["KASPI_QR_SCHEME": "r2", "KASPI_ENV": "production", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k"], .unknownProductionHost("r2")),
            (["KASPI_QR_SCHEME": "r3", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k"], .missingVariable("KASPI_QR_ORGANIZATION_BIN")),
            (
                ["KASPI_QR_SCHEME": "r3", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k", "KASPI_QR_ORGANIZATION_BIN": "12345"],
                .invalidOrganizationBIN("12345")
            ),
            (
                ["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "k", "KASPI_QR_DEVICE_TOKEN": "a b"],
                .invalidDeviceToken(variable: "KASPI_QR_DEVICE_TOKEN")
            ),
            (["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "k", "KASPI_ENV": "staging"], .invalidEnvironment("staging")),
            // Credentials never in the clear: r2 and r3 only over TLS, r1's http:// only to this machine.
            (
                ["KASPI_QR_SCHEME": "r2", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k", "KASPI_BASE_URL": "http://127.0.0.1:8544"],
                .insecureBaseURL(
                    "http://127.0.0.1:8544", reason: "r2 and r3 authenticate with a client certificate, which only TLS carries; use https://")
            ),
            (
                ["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "test_k", "KASPI_BASE_URL": "http://10.0.0.5:8543"],
                .insecureBaseURL("http://10.0.0.5:8543", reason: "use https://, or http:// to this machine (127.0.0.1, localhost) only")
            ),
            // Production credentials go to Kaspi, or to a host named as trusted.
            (["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "prod_k", "KASPI_BASE_URL": "http://127.0.0.1:8543"], .untrustedHost("127.0.0.1")),
            (
                [
                    "KASPI_QR_SCHEME": "r3", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k", "KASPI_QR_ORGANIZATION_BIN": "000000000001",
                    "KASPI_ENV": "production", "KASPI_BASE_URL": "https://relay.example:8545",
                ],
                .untrustedHost("relay.example")
            ),
        ]
        _ = try API.Settings(environment: ["KASPI_QR_SCHEME": "r1", "KASPI_QR_API_KEY": "test_k", "KASPI_BASE_URL": "http://127.0.0.1:8543"])
        _ = try API.Settings(environment: [
            "KASPI_QR_SCHEME": "r3", "KASPI_QR_CERT": "c", "KASPI_QR_KEY": "k", "KASPI_QR_ORGANIZATION_BIN": "000000000001",
            "KASPI_ENV": "production", "KASPI_BASE_URL": "https://relay.example:8545", "KASPI_TRUSTED_HOST": "relay.example",
        ])
        for (environment, expected) in cases {
            #expect(throws: expected) { try API.Settings(environment: environment) }
        }
        #expect(!ConfigurationError.invalidDeviceToken(variable: "KASPI_QR_DEVICE_TOKEN").description.contains("a b"))
    }

    @Test func secretsStayOutOfDescriptions() async throws {
        #expect(!"\(Self.token)".contains("5895-48f8"))
        let t = ScriptedTransport([
            .json(#"{"StatusCode":-10000,"Message":"bad key test_secret_key"}"#), .respond(status: 500, body: "key=test_secret_key"),
        ])
        let client = try r1(t, retry: .none)
        for _ in 0..<2 {
            do {
                try await client.ping()
                Issue.record("no error")
            } catch {
                #expect(!error.description.contains("test_secret_key"))
                #expect(error.description.contains("[REDACTED]"))
            }
        }
    }
}

/// A small thread-safe queue for scripted answers and recorded progress.
final class LockedQueue<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T]
    private var index = 0
    init(_ items: [T]) { self.items = items }
    func next() -> T {
        lock.withLock {
            let item = items[min(index, items.count - 1)]
            index += 1
            return item
        }
    }
    func append(_ item: T) { lock.withLock { items.append(item) } }
    var all: [T] { lock.withLock { items } }
}
