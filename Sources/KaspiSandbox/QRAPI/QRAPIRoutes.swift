import Foundation
import HTTPTypes
import Hummingbird
import KaspiPay
import NIOCore

/// Who is calling the QR API: the client certificate the TLS layer saw, and the address.
struct QRAPICaller: Sendable {
    /// The client certificate (DER), when the request came over TLS with one.
    var certificate: [UInt8]?
    var remoteAddress: String?
}

/// A request body read the way Kaspi's (ASP.NET) server reads one: keys in any case,
/// numbers sent as strings, strings sent as numbers.
struct QRAPIBody: Decodable {
    enum Value {
        case text(String)
        case number(Decimal)
        case bool(Bool)
        case null
        case other
    }

    private(set) var fields: [String: Value] = [:]

    init() {}

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: QRAPIKey.self)
        for key in container.allKeys {
            let value: Value
            if (try? container.decodeNil(forKey: key)) == true {
                value = .null
            } else if let text = try? container.decode(String.self, forKey: key) {
                value = .text(text)
            } else if let flag = try? container.decode(Bool.self, forKey: key) {
                value = .bool(flag)
            } else if let number = try? container.decode(Decimal.self, forKey: key) {
                value = .number(number)
            } else {
                value = .other
            }
            fields[key.stringValue.lowercased()] = value
        }
    }

    /// Whether the body names the field at all (null included).
    func has(_ name: String) -> Bool { fields[name.lowercased()] != nil }

    func value(_ name: String) -> Value? {
        guard let value = fields[name.lowercased()] else { return nil }
        if case .null = value { return nil }
        return value
    }

    /// A text field; a number only where `integers` (the device token, which Kaspi compares
    /// as text), and then a whole one.
    func string(_ name: String, integers: Bool = false) throws(QRAPIFailure) -> String? {
        switch value(name) {
        case nil: return nil
        case .text(let text)?: return text
        case .number(let number)? where integers:
            var exact = number
            var whole = Decimal()
            NSDecimalRound(&whole, &exact, 0, .down)
            guard whole == number else { throw QRAPIValidation.failure(name, "must be a string") }
            return "\(number)"
        default: throw QRAPIValidation.failure(name, "must be a string")
        }
    }

    func requiredString(_ name: String) throws(QRAPIFailure) -> String {
        guard let text = try string(name, integers: name == "DeviceToken"), !text.isEmpty else {
            throw QRAPIValidation.failure(name, "is required")
        }
        guard text.utf8.count <= 128 else { throw QRAPIValidation.failure(name, "must be at most 128 characters") }
        return text
    }

    func int64(_ name: String) throws(QRAPIFailure) -> Int64? {
        switch value(name) {
        case nil: return nil
        case .number(let number)?:
            guard let value = Int64(exactly: NSDecimalNumber(decimal: number).doubleValue), Decimal(value) == number else {
                throw QRAPIValidation.failure(name, "must be a whole number")
            }
            return value
        case .text(let text)?:
            guard let value = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                throw QRAPIValidation.failure(name, "must be a whole number")
            }
            return value
        default: throw QRAPIValidation.failure(name, "must be a whole number")
        }
    }

    func requiredInt64(_ name: String) throws(QRAPIFailure) -> Int64 {
        guard let value = try int64(name) else { throw QRAPIValidation.failure(name, "is required") }
        return value
    }

    /// An amount; malformed ones are `990000028`, as Kaspi answers them.
    func amount(_ name: String = "Amount") throws(QRAPIFailure) -> Decimal {
        switch value(name) {
        case .number(let number)?: return number
        case .text(let text)?:
            guard let number = Decimal(string: text.trimmingCharacters(in: .whitespaces), locale: Locale(identifier: "en_US_POSIX")),
                text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" || $0 == " " })
            else { throw QRAPIFailure(990_000_028, "Invalid operation amount.") }
            return number
        // Left out, it is a validation failure; given as null, an amount that is not one.
        case nil:
            if has(name) { throw QRAPIFailure(990_000_028, "Invalid operation amount.") }
            throw QRAPIValidation.failure(name, "is required")
        // Anything else that is not an amount gets Kaspi's business code for one.
        default: throw QRAPIFailure(990_000_028, "Invalid operation amount.")
        }
    }
}

struct QRAPIKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Request validation failures: HTTP 400 with an ASP.NET-style problem document and no
/// `StatusCode`, since they are not Kaspi business codes.
enum QRAPIValidation {
    static func failure(_ field: String, _ problem: String) -> QRAPIFailure {
        QRAPIFailure(0, "\(field) \(problem).", httpStatus: 400)
    }
}

extension Sandbox {
    /// The Kaspi QR API under `/{r1|r2|r3}/{v01|v02}/…`, on a router of any context.
    func addQRAPI<Context: RequestContext>(to router: Router<Context>, caller: @escaping @Sendable (Request, Context) async -> QRAPICaller) {
        for scheme in ["r1", "r2", "r3"] {
            for version in ["v01", "v02"] {
                let handler: @Sendable (Request, Context) async throws -> Response = { request, context in
                    let segments = context.parameters.getCatchAll().map(String.init).filter { !$0.isEmpty }
                    return await self.qrAPI(request, scheme: scheme, version: version, path: segments, caller: await caller(request, context))
                }
                // Every method reaches the handler, which answers a known path asked with
                // another method 405 with the methods it has (see ``QRAPIMethods``).
                for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch, .options, .trace, .head] {
                    router.on("/\(scheme)/\(version)/**", method: method, use: handler)
                }
            }
        }
    }

    /// The payment page's link for a purchase token: `{linkBase}/pay/<41 digits>`.
    func qrPaymentLink(token: String) -> String {
        if var base = configuration.qrAPI.linkBase {
            while base.hasSuffix("/") { base.removeLast() }
            return "\(base)/pay/\(token)"
        }
        return paymentURL(token: token)
    }

    static func qrEnvelope(_ code: Int, message: String?, httpStatus: Int = 200) -> Response {
        json(.init(code: httpStatus), encoding: QREnvelope<QRAnswer.None>(statusCode: code, message: message, data: nil))
    }

    static func qrOK<Payload: Encodable>(_ data: Payload) -> Response {
        json(.ok, encoding: QREnvelope(statusCode: 0, message: "OK", data: data))
    }

    static func qrOK() -> Response { qrEnvelope(0, message: "OK") }

    static func qrDate(_ date: Date) -> String { KaspiQRAPI.DateParser.format(date) }

    func qrAPI(_ request: Request, scheme: String, version: String, path: [String], caller: QRAPICaller) async -> Response {
        let route = path.joined(separator: "/")
        let methods = QRAPIMethods.methods(version: version, path: path)
        if !methods.isEmpty, !methods.contains(request.method) {
            let allow = methods.map(\.rawValue).sorted().joined(separator: ", ")
            var response = Self.qrEnvelope(0, message: "The method \(request.method.rawValue) is not allowed here; use \(allow).", httpStatus: 405)
            response.headers[.allow] = allow
            return response
        }
        do {
            return try await qrAPIRoute(request, scheme: scheme, version: version, path: path, caller: caller)
        } catch {
            if error.httpStatus == 400 {
                return Self.json(.badRequest, encoding: QRAnswer.ValidationProblem(errors: ["request": [error.message]]))
            }
            if error.httpStatus == 502 {
                return Response(
                    status: .badGateway, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(string: "Bad Gateway: \(error.message)")))
            }
            if error.httpStatus == 404 {
                return Self.json(.notFound, encoding: QRAnswer.NotFoundProblem(detail: error.message))
            }
            logger.debug("QR API answered an error", metadata: ["route": "\(scheme)/\(version)/\(route)", "status_code": "\(error.code)"])
            return Self.qrEnvelope(error.code, message: error.message, httpStatus: error.httpStatus)
        }
    }

    private static let notFound = QRAPIFailure(0, "No such path in this scheme.", httpStatus: 404)

    private func readQRBody(_ request: Request) async throws(QRAPIFailure) -> QRAPIBody {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: 64 * 1024) } catch {
            throw QRAPIValidation.failure("body", "is larger than 64 KiB")
        }
        if buffer.readableBytes == 0 { return QRAPIBody() }
        do {
            return try JSONDecoder().decode(QRAPIBody.self, from: Data(buffer.readableBytesView))
        } catch {
            throw QRAPIValidation.failure("body", "must be a JSON object")
        }
    }

    /// The organizations a caller may act for, by scheme: r1 by `Api-Key`, r2 and r3 by
    /// client certificate (r3 also by address).
    private func qrOrganizations(_ request: Request, scheme: String, caller: QRAPICaller) async throws(QRAPIFailure) -> [String] {
        switch scheme {
        case "r1":
            guard let name = HTTPField.Name("Api-Key"), let key = request.headers[name],
                let org = await qrState.organization(apiKey: key.trimmingCharacters(in: .whitespaces))
            else { throw .notAuthenticated }
            return [org.bin]
        default:
            guard let certificate = caller.certificate, let authority = certificateAuthority,
                let bins = authority.organizations(ofClientCertificate: certificate, at: Date()), !bins.isEmpty
            else { throw .notAuthenticated }
            if scheme == "r3", !configuration.qrAPI.r3AllowedIPs.isEmpty {
                guard let address = caller.remoteAddress, configuration.qrAPI.r3AllowedIPs.contains(address) else { throw .notAuthenticated }
            }
            return scheme == "r2" ? [bins[0]] : bins
        }
    }

    private func qrAPIRoute(
        _ request: Request, scheme: String, version: String, path: [String], caller: QRAPICaller
    ) async throws(QRAPIFailure) -> Response {
        let method = request.method
        let route = path.joined(separator: "/")
        // v02 has payment/status only.
        if version == "v02", !(method == .get && path.count == 3 && path[0] == "payment" && path[1] == "status") { throw Self.notFound }
        let allowed = try await qrOrganizations(request, scheme: scheme, caller: caller)
        var bins = Set(allowed)
        let body = method == .post ? try await readQRBody(request) : QRAPIBody()
        // r3 names its organization on the calls that carry OrganizationBin.
        var organizationBin: String? = nil
        func requireBIN(_ value: String?) throws(QRAPIFailure) -> String {
            guard let value, bins.contains(value) else {
                throw QRAPIFailure(-10000, "OrganizationBin is missing or this certificate may not act for it.")
            }
            return value
        }
        // A malformed OrganizationBin is refused by model validation on every scheme (12
        // digits), before any business check; r1 and r2 then ignore it.
        if method == .post, body.has("OrganizationBin") {
            let given = (try? body.string("OrganizationBin")) ?? nil
            guard let given, given.count == 12, given.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw QRAPIValidation.failure("OrganizationBin", "must be 12 digits")
            }
        }
        if scheme == "r3", method == .post, !route.hasPrefix("test/") {
            organizationBin = try requireBIN(try body.string("OrganizationBin"))
            bins = [organizationBin ?? ""]
        }
        // Faults and latency, per organization.
        let faultBIN = organizationBin ?? allowed.first ?? ""
        let latency = await qrState.latency(bin: faultBIN)
        if latency > 0 { try? await Task.sleep(for: .milliseconds(latency)) }
        if await qrState.takeFailure(bin: faultBIN) {
            throw QRAPIFailure(-999, "Service temporarily unavailable (sandbox fault injection).")
        }
        let query = request.uri.queryParameters
        func queryValue(_ name: String) -> String? {
            for (key, value) in query where key.lowercased() == name.lowercased() { return String(value) }
            return nil
        }
        let response: Response
        var creates = false
        let p0 = path.count > 0 ? path[0] : ""
        let p1 = path.count > 1 ? path[1] : ""
        let p2 = path.count > 2 ? path[2] : ""
        switch (method, path.count, p0, p1) {
        case (.get, 2, "health", "ping"):
            response = Self.qrOK()
        case (.get, 2, "partner", "tradepoints") where scheme != "r3", (.get, 3, "partner", "tradepoints") where scheme == "r3":
            var wanted = allowed[0]
            if scheme == "r3" {
                wanted = try requireBIN(path.last)
            }
            guard let org = await qrState.organization(bin: wanted), !org.tradePoints.isEmpty else {
                throw QRAPIFailure(-14_000_002, "The organization has no trade points; create one in the Kaspi Pay app.")
            }
            response = Self.qrOK(org.tradePoints.map { QRAnswer.TradePoint(TradePointId: $0.id, TradePointName: $0.name) })
        case (.post, 2, "device", "register"):
            let deviceID = try body.requiredString("DeviceId")
            guard deviceID.utf8.count <= 128,
                deviceID.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") })
            else { throw QRAPIValidation.failure("DeviceId", "must be Latin letters, digits, '-' and '_'") }
            let device = try await qrState.register(deviceID: deviceID, tradePointID: try body.requiredInt64("TradePointId"), bins: bins)
            response = Self.qrOK(["DeviceToken": device.token])
        case (.post, 2, "device", "delete"):
            try await qrState.delete(token: try body.requiredString("DeviceToken"), bins: bins)
            response = Self.qrEnvelope(0, message: "OK")
        case (.post, 2, "qr", "create"), (.post, 2, "qr", "create-link"):
            let link = path.last == "create-link"
            let externalID = try body.string("ExternalId")
            if let externalID, externalID.count > 128 { throw QRAPIValidation.failure("ExternalId", "must be at most 128 characters") }
            let purchase = try await qrState.create(
                kind: link ? .link : .qr, device: try body.requiredString("DeviceToken"), amount: try body.amount(), externalID: externalID,
                bins: bins, organizationBin: organizationBin)
            creates = true
            let methods = ["Gold", "Red", "Loan"]
            if link {
                response = Self.qrOK(
                    QRAnswer.LinkCreated(
                        PaymentLink: qrPaymentLink(token: purchase.token ?? ""), ExpireDate: Self.qrDate(purchase.expireDate), PaymentId: purchase.id,
                        PaymentMethods: methods,
                        PaymentBehaviorOptions: .init(
                            StatusPollingInterval: purchase.pollingInterval, LinkActivationWaitTimeout: purchase.scanTimeout,
                            PaymentConfirmationTimeout: purchase.confirmationTimeout)))
            } else {
                response = Self.qrOK(
                    QRAnswer.QRCreated(
                        QrToken: purchase.token ?? "", ExpireDate: Self.qrDate(purchase.expireDate), QrPaymentId: purchase.id,
                        PaymentMethods: methods,
                        QrPaymentBehaviorOptions: .init(
                            StatusPollingInterval: purchase.pollingInterval, QrCodeScanWaitTimeout: purchase.scanTimeout,
                            PaymentConfirmationTimeout: purchase.confirmationTimeout)))
            }
        case (.get, 3, "payment", "status"):
            let id = p2
            // The route takes a number: anything else fails model binding, as Kaspi's does.
            guard let paymentID = Int64(id) else { throw QRAPIValidation.failure("QrPaymentId", "must be a whole number") }
            let purchase = try await qrState.readStatus(paymentID, bins: bins)
            var status = QRAnswer.Status(Status: purchase.status.rawValue)
            if version == "v02", purchase.status == .processed {
                (status.TransactionId, status.ProductType, status.Amount) = (
                    purchase.transactionID ?? "", purchase.productType ?? "Gold", purchase.amount
                )
                if purchase.productType == "Loan" {
                    (status.LoanOfferName, status.LoanTerm, status.IsOffer) = ("Рассрочка 0-0-12", 12, false)
                }
                if let (org, point) = await qrState.tradePoint(purchase.tradePointID) {
                    (status.StoreName, status.Address, status.City) = (org.name, point.name, "Almaty")
                }
            }
            response = Self.qrOK(status)
        case (.get, 2, "payment", "details") where scheme != "r1":
            guard let idText = queryValue("QrPaymentId"), let paymentID = Int64(idText) else {
                throw QRAPIValidation.failure("QrPaymentId", "is required")
            }
            guard let token = queryValue("DeviceToken") else { throw QRAPIValidation.failure("DeviceToken", "is required") }
            let device = try await qrState.device(token, bins: bins, requireActive: false)
            let purchase = try await qrState.purchase(paymentID, bins: [device.organizationBin])
            response = Self.qrOK(
                QRAnswer.Details(
                    QrPaymentId: purchase.id, TotalAmount: purchase.amount, AvailableReturnAmount: purchase.availableReturnAmount,
                    TransactionDate: Self.qrDate(purchase.finishedAt ?? purchase.createdAt)))
        case (.post, 2, "payment", "return") where scheme != "r1":
            var returnID: Int64? = nil
            if scheme == "r2" {
                guard let id = try body.int64("QrReturnId") else { throw QRAPIValidation.failure("QrReturnId", "is required") }
                returnID = id
            }
            let (_, refund) = try await qrState.refund(
                device: try body.requiredString("DeviceToken"), paymentID: try body.requiredInt64("QrPaymentId"), amount: try body.amount(),
                returnID: returnID, organizationBin: organizationBin, bins: bins)
            creates = true
            response = Self.qrOK(["ReturnOperationId": refund.id])
        case (.post, 2, "return", "create") where scheme == "r2":
            let item = try await qrState.createReturn(
                device: try body.requiredString("DeviceToken"), externalID: try body.string("ExternalId"), bins: bins)
            creates = true
            response = Self.qrOK(
                QRAnswer.ReturnCreated(
                    QrToken: item.token, ExpireDate: Self.qrDate(item.createdAt.addingTimeInterval(TimeInterval(item.scanTimeout))),
                    QrReturnId: item.id,
                    QrReturnBehaviorOptions: .init(
                        QrCodeScanEventPollingInterval: configuration.qrAPI.returnPollingInterval, QrCodeScanWaitTimeout: item.scanTimeout)))
        case (.get, 3, "return", "status") where scheme == "r2":
            let id = p2
            guard let returnID = Int64(id) else { throw QRAPIFailure.purchaseNotFound() }
            let item = try await qrState.returnQR(returnID, bins: bins)
            response = Self.qrOK(QRAnswer.Status(Status: item.status.rawValue))
        case (.post, 2, "return", "operations") where scheme == "r2":
            let maxResult = try body.int64("MaxResult") ?? 10
            guard (1...10).contains(maxResult) else { throw QRAPIValidation.failure("MaxResult", "must be between 1 and 10") }
            let purchases = try await qrState.returnOperations(
                device: try body.requiredString("DeviceToken"), returnID: try body.requiredInt64("QrReturnId"), maxResult: Int(maxResult), bins: bins)
            response = Self.qrOK(
                purchases.map {
                    // .NET ticks without an offset, as the guide's example shows.
                    QRAnswer.ReturnOperation(QrPaymentId: $0.id, TransactionDate: Self.ticksDate($0.finishedAt ?? $0.createdAt), Amount: $0.amount)
                })
        case (.get, 2, "remote", "client-info") where scheme == "r3":
            guard let phone = queryValue("PhoneNumber") else { throw QRAPIValidation.failure("PhoneNumber", "is required") }
            guard let token = queryValue("DeviceToken") else { throw QRAPIValidation.failure("DeviceToken", "is required") }
            let name = try await qrState.clientInfo(phone: phone, device: token, bins: bins)
            response = Self.qrOK(["ClientName": name])
        case (.post, 2, "remote", "create") where scheme == "r3":
            let comment = try body.string("Comment")
            let purchase = try await qrState.createRemote(
                device: try body.requiredString("DeviceToken"), phone: try body.requiredString("PhoneNumber"), amount: try body.amount(),
                comment: comment, organizationBin: organizationBin ?? "", bins: bins)
            creates = true
            response = Self.qrOK(["QrPaymentId": purchase.id])
        case (.post, 2, "remote", "cancel") where scheme == "r3":
            let purchase = try await qrState.cancelRemote(
                device: try body.requiredString("DeviceToken"), paymentID: try body.requiredInt64("QrPaymentId"),
                organizationBin: organizationBin ?? "", bins: bins)
            response = Self.qrOK(QRAnswer.Status(Status: purchase.status.rawValue))
        case (.post, 3, "test", "payment"):
            guard let action = QRAPIState.Action(rawValue: p2.lowercased()) else { throw Self.notFound }
            guard let id = try body.int64("qrPaymentId") else { throw QRAPIValidation.failure("qrPaymentId", "is required") }
            _ = try await qrState.act(action, id: id, bins: bins)
            response = Self.qrEnvelope(0, message: "OK")
        default:
            throw Self.notFound
        }
        do { try await qrState.waitForWrites() } catch {
            throw QRAPIFailure(-999, "The sandbox could not store the change.")
        }
        if creates, await qrState.takeLostResponse(bin: faultBIN) {
            throw QRAPIFailure(0, "Injected lost response: the request took effect (sandbox fault injection).", httpStatus: 502)
        }
        return response
    }

    /// `2021-12-08T11:35:48.1566667`: Almaty time, seven fraction digits, no offset.
    static func ticksDate(_ date: Date) -> String {
        let text = KaspiQRAPI.DateParser.format(date, offsetSeconds: 5 * 3600)
        // yyyy-MM-ddTHH:mm:ss.SSS+05:00 -> yyyy-MM-ddTHH:mm:ss.SSS0000
        return String(text.prefix(23)) + "0000"
    }
}

/// `{"StatusCode": …, "Message": …, "Data": …}`, the envelope of every Kaspi QR API answer.
struct QREnvelope<Payload: Encodable>: Encodable {
    var statusCode: Int
    var message: String?
    var data: Payload?

    enum CodingKeys: String, CodingKey {
        case statusCode = "StatusCode"
        case message = "Message"
        case data = "Data"
    }
}

/// The Kaspi QR API's answers, with Kaspi's own (PascalCase) field names.
enum QRAnswer {
    struct None: Encodable {}

    struct TradePoint: Encodable {
        var TradePointId: Int64
        var TradePointName: String
    }

    struct QRCreated: Encodable {
        struct Options: Encodable {
            var StatusPollingInterval: Int
            var QrCodeScanWaitTimeout: Int
            var PaymentConfirmationTimeout: Int
        }
        var QrToken: String
        var ExpireDate: String
        var QrPaymentId: Int64
        var PaymentMethods: [String]
        var QrPaymentBehaviorOptions: Options
    }

    struct LinkCreated: Encodable {
        struct Options: Encodable {
            var StatusPollingInterval: Int
            var LinkActivationWaitTimeout: Int
            var PaymentConfirmationTimeout: Int
        }
        var PaymentLink: String
        var ExpireDate: String
        var PaymentId: Int64
        var PaymentMethods: [String]
        var PaymentBehaviorOptions: Options
    }

    /// `payment/status` (v02 fills the rest once paid), `return/status`, `remote/cancel`.
    struct Status: Encodable {
        var Status: String
        var TransactionId: String?
        var ProductType: String?
        var Amount: Decimal?
        var LoanOfferName: String?
        var LoanTerm: Int?
        var IsOffer: Bool?
        var StoreName: String?
        var Address: String?
        var City: String?
    }

    struct Details: Encodable {
        var QrPaymentId: Int64
        var TotalAmount: Decimal
        var AvailableReturnAmount: Decimal
        var TransactionDate: String
    }

    struct ReturnCreated: Encodable {
        struct Options: Encodable {
            var QrCodeScanEventPollingInterval: Int
            var QrCodeScanWaitTimeout: Int
        }
        var QrToken: String
        var ExpireDate: String
        var QrReturnId: Int64
        var QrReturnBehaviorOptions: Options
    }

    struct ReturnOperation: Encodable {
        var QrPaymentId: Int64
        var TransactionDate: String
        var Amount: Decimal
    }

    /// ASP.NET's answer to a request that fails validation.
    struct ValidationProblem: Encodable {
        var type = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
        var title = "One or more validation errors occurred."
        var status = 400
        var errors: [String: [String]]
    }

    struct NotFoundProblem: Encodable {
        var title = "Not Found"
        var status = 404
        var detail: String
    }
}

/// The Kaspi QR API's paths and the method each answers, as its guide lists them (and
/// `openapi/kaspi-qr.yaml`): a known path asked with another method is a 405.
enum QRAPIMethods {
    static let table: [(version: String, path: [String], method: HTTPRequest.Method)] = [
        ("v01", ["health", "ping"], .get), ("v01", ["partner", "tradepoints"], .get), ("v01", ["partner", "tradepoints", "{}"], .get),
        ("v01", ["device", "register"], .post), ("v01", ["device", "delete"], .post), ("v01", ["qr", "create"], .post),
        ("v01", ["qr", "create-link"], .post), ("v01", ["payment", "status", "{}"], .get), ("v02", ["payment", "status", "{}"], .get),
        ("v01", ["payment", "details"], .get), ("v01", ["payment", "return"], .post), ("v01", ["return", "create"], .post),
        ("v01", ["return", "status", "{}"], .get), ("v01", ["return", "operations"], .post), ("v01", ["remote", "client-info"], .get),
        ("v01", ["remote", "create"], .post), ("v01", ["remote", "cancel"], .post), ("v01", ["test", "payment", "{}"], .post),
    ]

    /// The methods `path` answers under `version`; empty for a path the API does not have.
    static func methods(version: String, path: [String]) -> Set<HTTPRequest.Method> {
        Set(
            table.filter { entry in
                entry.version == version && entry.path.count == path.count && zip(entry.path, path).allSatisfy { $0 == "{}" || $0 == $1 }
            }.map(\.method))
    }
}
