import Foundation

extension KaspiQRAPI {
    /// An organization's BIN or IIN: 12 digits, leading zeros kept.
    public struct OrganizationBIN: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The 12 digits.
        public let value: String

        /// - Throws: ``ConfigurationError/invalidOrganizationBIN(_:)`` unless it is 12 digits.
        public init(_ value: String) throws(ConfigurationError) {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            guard trimmed.utf8.count == 12, trimmed.utf8.allSatisfy({ (48...57).contains($0) }) else {
                throw .invalidOrganizationBIN(value)
            }
            self.value = trimmed
        }

        init(unchecked value: String) { self.value = value }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            do { self = try OrganizationBIN(text) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not 12 digits"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }

        public var description: String { value }
    }

    /// The token `device/register` hands out: the device's credential in every later call.
    /// Printed shortened, so that logs do not carry it whole.
    public struct DeviceToken: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The token as Kaspi sent it (a GUID in practice; older documents show a number).
        public let value: String

        /// - Throws: ``APIError/invalidRequest(_:)`` when it is empty, longer than 128
        ///   characters, or holds whitespace or control characters.
        public init(_ value: String) throws(APIError) {
            guard !value.isEmpty, value.utf8.count <= 128,
                value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
            else { throw .invalidRequest("a device token is 1 to 128 printable ASCII characters") }
            self.value = value
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            let text: String
            if let string = try? container.decode(String.self) { text = string } else { text = String(try container.decode(Int64.self)) }
            do { self = try DeviceToken(text) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a device token"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }

        /// The first and last four characters.
        public var description: String {
            value.count <= 8 ? "DeviceToken(…)" : "DeviceToken(\(value.prefix(4))…\(value.suffix(4)))"
        }
    }

    /// A trade point of the organization.
    public struct TradePoint: Sendable, Hashable, Codable {
        /// `TradePointId`.
        public var id: Int64
        /// `TradePointName`, free text such as "Shop (street, number)".
        public var name: String

        /// Creates a trade point.
        public init(id: Int64, name: String) {
            self.id = id
            self.name = name
        }

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            id = try object.int64("TradePointId")
            name = try object.optionalString("TradePointName") ?? ""
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            try container.encode(id, forKey: AnyKey("TradePointId"))
            try container.encode(name, forKey: AnyKey("TradePointName"))
        }
    }

    /// How long each phase of a purchase may take and how often to ask, as Kaspi hands it out.
    public struct BehaviorOptions: Sendable, Hashable {
        /// `StatusPollingInterval`: seconds between two status calls.
        public var statusPollingInterval: Int
        /// `QrCodeScanWaitTimeout` for a QR, `LinkActivationWaitTimeout` for a link: seconds
        /// from creation for the payer to scan or open it.
        public var scanTimeout: Int
        /// `PaymentConfirmationTimeout`: seconds from the first `Wait` for the payer to confirm.
        public var confirmationTimeout: Int

        /// Creates options, in seconds.
        public init(statusPollingInterval: Int, scanTimeout: Int, confirmationTimeout: Int) {
            self.statusPollingInterval = statusPollingInterval
            self.scanTimeout = scanTimeout
            self.confirmationTimeout = confirmationTimeout
        }

        /// The guide's example values: 5 / 180 / 65.
        public static let guideDefaults = BehaviorOptions(statusPollingInterval: 5, scanTimeout: 180, confirmationTimeout: 65)

        init(_ object: LenientObject, scanKey: String) throws {
            statusPollingInterval = Int(clamping: try object.optionalInt64("StatusPollingInterval") ?? 5)
            scanTimeout = Int(clamping: try object.optionalInt64(scanKey) ?? 180)
            confirmationTimeout = Int(clamping: try object.optionalInt64("PaymentConfirmationTimeout") ?? 65)
        }
    }

    /// What a purchase is: a QR shown to the payer, a link they open, or a remote invoice.
    public enum PurchaseKind: String, Sendable, Hashable, Codable {
        case qr, link, remote
    }

    /// A QR purchase from `qr/create`.
    public struct QRPurchase: Sendable, Hashable, Decodable {
        /// `QrToken`: the text to draw as the QR code.
        public var qrToken: String
        /// `ExpireDate`: after it, scanning fails.
        public var expireDate: Date
        /// `QrPaymentId`: for status, details and refunds.
        public var paymentID: Int64
        /// `PaymentMethods`, e.g. `["Gold", "Red", "Loan"]`.
        public var paymentMethods: [String]
        /// `QrPaymentBehaviorOptions`.
        public var options: BehaviorOptions

        /// Creates a QR purchase (for tests and for resuming a wait).
        public init(qrToken: String, expireDate: Date, paymentID: Int64, paymentMethods: [String], options: BehaviorOptions) {
            self.qrToken = qrToken
            self.expireDate = expireDate
            self.paymentID = paymentID
            self.paymentMethods = paymentMethods
            self.options = options
        }

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            qrToken = try object.string("QrToken")
            expireDate = try object.date("ExpireDate")
            paymentID = try object.int64("QrPaymentId")
            paymentMethods = try object.stringArray("PaymentMethods")
            options = try object.object("QrPaymentBehaviorOptions", as: ScanOptions.self)?.options ?? .guideDefaults
        }
    }

    /// A payment link from `qr/create-link`.
    public struct LinkPurchase: Sendable, Hashable, Decodable {
        /// `PaymentLink`, e.g. `https://pay.kaspi.kz/pay/<41 digits>`: open it outside any web view.
        public var paymentLink: String
        /// `ExpireDate`.
        public var expireDate: Date
        /// `PaymentId` (the same id space as `QrPaymentId`).
        public var paymentID: Int64
        /// `PaymentMethods`.
        public var paymentMethods: [String]
        /// `PaymentBehaviorOptions`; ``BehaviorOptions/scanTimeout`` is `LinkActivationWaitTimeout`.
        public var options: BehaviorOptions

        /// Creates a payment link (for tests and for resuming a wait).
        public init(paymentLink: String, expireDate: Date, paymentID: Int64, paymentMethods: [String], options: BehaviorOptions) {
            self.paymentLink = paymentLink
            self.expireDate = expireDate
            self.paymentID = paymentID
            self.paymentMethods = paymentMethods
            self.options = options
        }

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            paymentLink = try object.string("PaymentLink")
            expireDate = try object.date("ExpireDate")
            paymentID = try object.int64("PaymentId")
            paymentMethods = try object.stringArray("PaymentMethods")
            options = try object.object("PaymentBehaviorOptions", as: LinkOptions.self)?.options ?? .guideDefaults
        }
    }

    struct ScanOptions: Decodable {
        var options: BehaviorOptions
        init(from decoder: any Decoder) throws { options = try BehaviorOptions(LenientObject(decoder), scanKey: "QrCodeScanWaitTimeout") }
    }

    struct LinkOptions: Decodable {
        var options: BehaviorOptions
        init(from decoder: any Decoder) throws { options = try BehaviorOptions(LenientObject(decoder), scanKey: "LinkActivationWaitTimeout") }
    }

    /// A purchase's status. Unknown values are kept and are not final.
    public enum PaymentStatus: Sendable, Hashable, Codable, CustomStringConvertible {
        /// Created; not yet scanned or opened.
        case qrTokenCreated
        /// Scanned or opened; the payer has not confirmed yet.
        case wait
        /// Paid: the only success.
        case processed
        /// Cancelled by the payer, failed, or timed out.
        case error
        /// A remote invoice, issued and not yet paid.
        case remotePaymentCreated
        /// A remote invoice cancelled with `remote/cancel`.
        case remotePaymentCanceled
        /// Anything else (not final).
        case unknown(String)

        /// Reads Kaspi's text in any case; anything else is kept as `unknown`.
        public init(rawValue: String) {
            switch rawValue.lowercased() {
            case "qrtokencreated": self = .qrTokenCreated
            case "wait": self = .wait
            case "processed": self = .processed
            case "error": self = .error
            case "remotepaymentcreated": self = .remotePaymentCreated
            case "remotepaymentcanceled", "remotepaymentcancelled": self = .remotePaymentCanceled
            default: self = .unknown(rawValue)
            }
        }

        /// The value as Kaspi writes it.
        public var rawValue: String {
            switch self {
            case .qrTokenCreated: "QrTokenCreated"
            case .wait: "Wait"
            case .processed: "Processed"
            case .error: "Error"
            case .remotePaymentCreated: "RemotePaymentCreated"
            case .remotePaymentCanceled: "RemotePaymentCanceled"
            case .unknown(let raw): raw
            }
        }

        /// Decodes Kaspi's text, in any case.
        public init(from decoder: any Decoder) throws {
            self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
        }

        /// Encodes the value as Kaspi writes it.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        /// Whether it can no longer change: `Processed`, `Error`, `RemotePaymentCanceled`.
        public var isFinal: Bool {
            switch self {
            case .processed, .error, .remotePaymentCanceled: true
            default: false
            }
        }

        public var description: String { rawValue }
    }

    /// `payment/status`: v01 fills ``status`` only; v02 adds the rest once the purchase is paid.
    public struct PaymentStatusDetails: Sendable, Hashable, Decodable {
        /// `Status`: where the purchase stands.
        public var status: PaymentStatus
        /// `TransactionId` (v02): Kaspi's transaction, digits.
        public var transactionID: String?
        /// `LoanOfferName` (v02), e.g. an instalment plan.
        public var loanOfferName: String?
        /// `LoanTerm` (v02), months.
        public var loanTerm: Int?
        /// `IsOffer` (v02).
        public var isOffer: Bool?
        /// `ProductType` (v02), e.g. `Gold` or `Loan`.
        public var productType: String?
        /// `Amount` (v02).
        public var amount: Decimal?
        /// `StoreName`, `Address`, `City` (v02).
        public var storeName: String?
        /// `Address` (v02): the trade point's.
        public var address: String?
        /// `City` (v02).
        public var city: String?
        /// Which version answered.
        public var version: String = "v01"

        /// Creates details with a status only, as v01 answers.
        public init(status: PaymentStatus) { self.status = status }

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            status = PaymentStatus(rawValue: try object.string("Status"))
            transactionID = try object.optionalString("TransactionId")
            loanOfferName = try object.optionalString("LoanOfferName")
            loanTerm = try object.optionalInt64("LoanTerm").map { Int(clamping: $0) }
            isOffer = try object.optionalBool("IsOffer")
            productType = try object.optionalString("ProductType")
            amount = try object.optionalDecimal("Amount")
            storeName = try object.optionalString("StoreName")
            address = try object.optionalString("Address")
            city = try object.optionalString("City")
        }
    }

    /// A return QR from `return/create` (r2): the customer scans it to identify themselves.
    public struct ReturnQR: Sendable, Hashable, Decodable {
        /// `QrToken`: draw it as a QR code.
        public var qrToken: String
        /// `ExpireDate`.
        public var expireDate: Date
        /// `QrReturnId`.
        public var returnID: Int64
        /// `QrReturnBehaviorOptions.QrCodeScanEventPollingInterval`, seconds.
        public var pollingInterval: Int
        /// `QrReturnBehaviorOptions.QrCodeScanWaitTimeout`, seconds from creation.
        public var scanTimeout: Int

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            qrToken = try object.string("QrToken")
            expireDate = try object.date("ExpireDate")
            returnID = try object.int64("QrReturnId")
            let options = try object.object("QrReturnBehaviorOptions", as: ReturnOptions.self)
            pollingInterval = options?.interval ?? 5
            scanTimeout = options?.timeout ?? 180
        }

        struct ReturnOptions: Decodable {
            var interval: Int
            var timeout: Int
            init(from decoder: any Decoder) throws {
                let object = try LenientObject(decoder)
                interval = Int(clamping: try object.optionalInt64("QrCodeScanEventPollingInterval") ?? 5)
                timeout = Int(clamping: try object.optionalInt64("QrCodeScanWaitTimeout") ?? 180)
            }
        }
    }

    /// A return QR's status (r2).
    public enum ReturnStatus: Sendable, Hashable, Codable, CustomStringConvertible {
        /// Not yet scanned.
        case qrTokenCreated
        /// The customer scanned it: list their purchases with `return/operations`.
        case customerIdentityObtained
        /// The return failed.
        case error
        /// Anything else (not final).
        case unknown(String)

        /// Reads Kaspi's text in any case; anything else is kept as `unknown`.
        public init(rawValue: String) {
            switch rawValue.lowercased() {
            case "qrtokencreated": self = .qrTokenCreated
            case "customeridentityobtained": self = .customerIdentityObtained
            case "error": self = .error
            default: self = .unknown(rawValue)
            }
        }

        public var rawValue: String {
            switch self {
            case .qrTokenCreated: "QrTokenCreated"
            case .customerIdentityObtained: "CustomerIdentityObtained"
            case .error: "Error"
            case .unknown(let raw): raw
            }
        }

        /// Decodes Kaspi's text, in any case.
        public init(from decoder: any Decoder) throws {
            self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
        }

        /// Encodes the value as Kaspi writes it.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        /// `CustomerIdentityObtained` and `Error` end the scan phase.
        public var isFinal: Bool {
            switch self {
            case .customerIdentityObtained, .error: true
            default: false
            }
        }

        public var description: String { rawValue }
    }

    /// One of the customer's purchases at this partner, from `return/operations` (r2).
    public struct ReturnablePurchase: Sendable, Hashable, Decodable {
        /// `QrPaymentId`.
        public var paymentID: Int64
        /// `TransactionDate`.
        public var transactionDate: Date?
        /// `Amount`: the purchase's total.
        public var amount: Decimal

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            paymentID = try object.int64("QrPaymentId")
            transactionDate = try object.optionalDate("TransactionDate")
            amount = try object.decimal("Amount")
        }
    }

    /// `payment/details` (r2, r3): what is left to refund.
    public struct PaymentDetails: Sendable, Hashable, Decodable {
        /// `QrPaymentId`.
        public var paymentID: Int64
        /// `TotalAmount`.
        public var totalAmount: Decimal
        /// `AvailableReturnAmount`: Kaspi's record of what can still be refunded.
        public var availableReturnAmount: Decimal
        /// `TransactionDate`.
        public var transactionDate: Date?

        public init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            paymentID = try object.int64("QrPaymentId")
            totalAmount = try object.decimal("TotalAmount")
            availableReturnAmount = try object.decimal("AvailableReturnAmount")
            transactionDate = try object.optionalDate("TransactionDate")
        }
    }

    /// A refund made with `payment/return`.
    public struct Refund: Sendable, Hashable, Decodable {
        /// `ReturnOperationId`.
        public var returnOperationID: Int64

        public init(from decoder: any Decoder) throws {
            returnOperationID = try LenientObject(decoder).int64("ReturnOperationId")
        }
    }

    /// `remote/client-info` (r3): whom an invoice to this phone number would bill.
    public struct ClientInfo: Sendable, Hashable, Decodable {
        /// `ClientName`: the customer's full name.
        public var clientName: String

        public init(from decoder: any Decoder) throws {
            clientName = try LenientObject(decoder).string("ClientName")
        }
    }

    /// A remote invoice from `remote/create` (r3). It is payable for 24 hours; read its
    /// status on a user action, never on a timer (Kaspi's anti-abuse refuses that).
    public struct RemoteInvoice: Sendable, Hashable, Decodable {
        /// `QrPaymentId`.
        public var paymentID: Int64

        /// Creates an invoice record.
        public init(paymentID: Int64) { self.paymentID = paymentID }

        public init(from decoder: any Decoder) throws {
            paymentID = try LenientObject(decoder).int64("QrPaymentId")
        }
    }

    struct DeviceRegistration: Decodable {
        var token: DeviceToken
        init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            let text = try object.string("DeviceToken")
            do { token = try DeviceToken(text) } catch { throw object.malformed("DeviceToken", "a device token") }
        }
    }

    struct StatusOnly: Decodable {
        var status: String
        init(from decoder: any Decoder) throws { status = try LenientObject(decoder).string("Status") }
    }

    /// The envelope of every answer: `{StatusCode, Message?, Data?}`.
    struct Envelope: Decodable {
        var statusCode: Int
        var message: String?
        var hasData: Bool

        init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            guard let code = try object.optionalInt64("StatusCode") else { throw object.missing("StatusCode") }
            statusCode = Int(clamping: code)
            message = try? object.optionalString("Message")
            hasData = object.has("Data")
        }
    }

    /// The `Data` of an envelope.
    struct DataOf<T: Decodable>: Decodable {
        var data: T
        init(from decoder: any Decoder) throws {
            let object = try LenientObject(decoder)
            guard let data = try object.object("Data", as: T.self) else { throw object.missing("Data") }
            self.data = data
        }
    }
}

/// Amounts on the wire: a JSON number in tenge with at most two decimals.
extension Decimal {
    /// Whether it is a valid Kaspi QR API amount: positive, at most two decimals.
    var isValidKaspiAmount: Bool {
        guard self > 0, self < 1_000_000_000_000 else { return false }
        var scaled = self * 100
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        return rounded == scaled
    }
}
