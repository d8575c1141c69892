extension KaspiQRAPI {
    /// Who should see an error: the payer at the till or on their phone, or the merchant
    /// (their staff or developers), who must fix something first.
    public enum Audience: String, Sendable, Hashable {
        /// Something the payer can act on (another account, try again later).
        case payer
        /// Something the merchant must fix or look into (configuration, integration, Kaspi).
        case merchant
    }

    /// A Kaspi QR API `StatusCode`: 0 is success, anything else an error.
    ///
    /// Every code of the guide's table (its Appendix 3 and the per-call lists) has a case;
    /// codes it lists without a description are ``undocumented(_:)``, and codes it does not
    /// list at all are ``unknown(_:)``. The variants some clients print (`-99000018` for
    /// `990000018` and so on) read as the documented code.
    public enum StatusCode: Sendable, Hashable, CustomStringConvertible {
        case success
        /// -999: the service is temporarily unavailable.
        case serviceUnavailable
        /// -10000: no client certificate (r2/r3), or a missing or wrong `Api-Key` (r1).
        case noClientCertificate
        /// -1501: no device with this id or token.
        case deviceNotFound
        /// -1502: the device is not active (disabled or deleted).
        case deviceNotActive
        /// -1503: the device is already registered on another trade point.
        case deviceOnAnotherTradePoint
        /// -1601: no such purchase (or return).
        case purchaseNotFound
        /// -14000002: the organization has no trade points.
        case noTradePoints
        /// -99000001: no purchase with this id (refunds, remote cancel).
        case purchaseNotFoundForOperation
        /// -99000002: no such trade point.
        case tradePointNotFound
        /// -99000003: the purchase belongs to another trade point than this device.
        case tradePointMismatch
        /// -99000005: the refund exceeds what is left of the purchase.
        case refundExceedsAmount
        /// -99000006: the refund failed; retry, and call the bank if it keeps failing.
        case refundFailed
        /// -99000011: the purchase's status does not allow a refund (not `Processed`).
        case refundNotAllowed
        /// -99000020: a partial refund is not possible.
        case partialRefundNotPossible
        /// 990000018: the trade point is disabled.
        case tradePointDisabled
        /// 990000026: the trade point does not accept QR payments.
        case tradePointDoesNotAcceptQR
        /// 990000028: the amount is invalid.
        case invalidAmount
        /// 990000033: no payment method is available.
        case noPaymentMethods
        /// A code the guide lists without a description (-1401, -1404, 99000010, 990000029,
        /// 990000031, 990000032: the remote-invoice calls).
        case undocumented(Int)
        /// A code the guide does not list.
        case unknown(Int)

        /// Reads a wire code.
        public init(rawValue: Int) {
            switch rawValue {
            case 0: self = .success
            case -999: self = .serviceUnavailable
            case -10000: self = .noClientCertificate
            case -1501: self = .deviceNotFound
            case -1502: self = .deviceNotActive
            case -1503: self = .deviceOnAnotherTradePoint
            case -1601: self = .purchaseNotFound
            case -14_000_002: self = .noTradePoints
            case -99_000_001: self = .purchaseNotFoundForOperation
            case -99_000_002: self = .tradePointNotFound
            case -99_000_003: self = .tradePointMismatch
            case -99_000_005: self = .refundExceedsAmount
            case -99_000_006: self = .refundFailed
            case -99_000_011: self = .refundNotAllowed
            case -99_000_020: self = .partialRefundNotPossible
            case 990_000_018, -99_000_018, -990_000_018, 99_000_018: self = .tradePointDisabled
            case 990_000_026, -99_000_026, -990_000_026, 99_000_026: self = .tradePointDoesNotAcceptQR
            case 990_000_028, -99_000_028, -990_000_028, 99_000_028: self = .invalidAmount
            case 990_000_033, -99_000_033, -990_000_033, 99_000_033: self = .noPaymentMethods
            case -1401, -1404, 99_000_010, 990_000_029, 990_000_031, 990_000_032: self = .undocumented(rawValue)
            default: self = .unknown(rawValue)
            }
        }

        /// The code as the guide prints it.
        public var rawValue: Int {
            switch self {
            case .success: 0
            case .serviceUnavailable: -999
            case .noClientCertificate: -10000
            case .deviceNotFound: -1501
            case .deviceNotActive: -1502
            case .deviceOnAnotherTradePoint: -1503
            case .purchaseNotFound: -1601
            case .noTradePoints: -14_000_002
            case .purchaseNotFoundForOperation: -99_000_001
            case .tradePointNotFound: -99_000_002
            case .tradePointMismatch: -99_000_003
            case .refundExceedsAmount: -99_000_005
            case .refundFailed: -99_000_006
            case .refundNotAllowed: -99_000_011
            case .partialRefundNotPossible: -99_000_020
            case .tradePointDisabled: 990_000_018
            case .tradePointDoesNotAcceptQR: 990_000_026
            case .invalidAmount: 990_000_028
            case .noPaymentMethods: 990_000_033
            case .undocumented(let code), .unknown(let code): code
            }
        }

        /// Every code with a case of its own, for tables and tests.
        public static let documented: [StatusCode] = [
            .serviceUnavailable, .noClientCertificate, .deviceNotFound, .deviceNotActive, .deviceOnAnotherTradePoint,
            .purchaseNotFound, .noTradePoints, .purchaseNotFoundForOperation, .tradePointNotFound, .tradePointMismatch,
            .refundExceedsAmount, .refundFailed, .refundNotAllowed, .partialRefundNotPossible, .tradePointDisabled,
            .tradePointDoesNotAcceptQR, .invalidAmount, .noPaymentMethods,
            .undocumented(-1401), .undocumented(-1404), .undocumented(99_000_010), .undocumented(990_000_029),
            .undocumented(990_000_031), .undocumented(990_000_032),
        ]

        /// A stable machine code, e.g. `KASPI_QR_DEVICE_NOT_FOUND`.
        public var code: String {
            switch self {
            case .success: "KASPI_QR_OK"
            case .serviceUnavailable: "KASPI_QR_SERVICE_UNAVAILABLE"
            case .noClientCertificate: "KASPI_QR_NOT_AUTHENTICATED"
            case .deviceNotFound: "KASPI_QR_DEVICE_NOT_FOUND"
            case .deviceNotActive: "KASPI_QR_DEVICE_NOT_ACTIVE"
            case .deviceOnAnotherTradePoint: "KASPI_QR_DEVICE_ON_ANOTHER_TRADE_POINT"
            case .purchaseNotFound: "KASPI_QR_PURCHASE_NOT_FOUND"
            case .noTradePoints: "KASPI_QR_NO_TRADE_POINTS"
            case .purchaseNotFoundForOperation: "KASPI_QR_OPERATION_PURCHASE_NOT_FOUND"
            case .tradePointNotFound: "KASPI_QR_TRADE_POINT_NOT_FOUND"
            case .tradePointMismatch: "KASPI_QR_TRADE_POINT_MISMATCH"
            case .refundExceedsAmount: "KASPI_QR_REFUND_EXCEEDS_AMOUNT"
            case .refundFailed: "KASPI_QR_REFUND_FAILED"
            case .refundNotAllowed: "KASPI_QR_REFUND_NOT_ALLOWED"
            case .partialRefundNotPossible: "KASPI_QR_PARTIAL_REFUND_NOT_POSSIBLE"
            case .tradePointDisabled: "KASPI_QR_TRADE_POINT_DISABLED"
            case .tradePointDoesNotAcceptQR: "KASPI_QR_TRADE_POINT_NO_QR"
            case .invalidAmount: "KASPI_QR_INVALID_AMOUNT"
            case .noPaymentMethods: "KASPI_QR_NO_PAYMENT_METHODS"
            case .undocumented(let code), .unknown(let code): "KASPI_QR_CODE_\(code < 0 ? "M\(-code)" : "\(code)")"
            }
        }

        /// What the code means, from the guide's Appendix 3.
        public var meaning: String {
            switch self {
            case .success: "Success."
            case .serviceUnavailable: "The service is temporarily unavailable."
            case .noClientCertificate:
                "Not authenticated: no valid client certificate (r2/r3), a certificate not allowed for this organization (r3), or a missing or wrong Api-Key (r1)."
            case .deviceNotFound: "No device with this id or token."
            case .deviceNotActive: "The device is not active: it was disabled or deleted."
            case .deviceOnAnotherTradePoint: "The device is already registered on another trade point."
            case .purchaseNotFound: "No such purchase or return."
            case .noTradePoints: "The organization has no trade points: create one in the Kaspi Pay app."
            case .purchaseNotFoundForOperation: "No purchase with this id."
            case .tradePointNotFound: "No such trade point."
            case .tradePointMismatch: "The purchase belongs to another trade point than this device's."
            case .refundExceedsAmount: "The refund exceeds what is left of the purchase."
            case .refundFailed: "The refund failed: retry, and contact the bank if it keeps failing."
            case .refundNotAllowed: "The purchase's status does not allow a refund (it is not Processed)."
            case .partialRefundNotPossible: "A partial refund is not possible for this purchase."
            case .tradePointDisabled: "The trade point is disabled."
            case .tradePointDoesNotAcceptQR: "The trade point does not accept QR payments."
            case .invalidAmount: "The amount is invalid."
            case .noPaymentMethods: "No payment method is available."
            case .undocumented(let code), .unknown(let code): "unknown code \(code)"
            }
        }

        /// Whether the same call may succeed later unchanged: -999, a failed refund
        /// (-99000006), and no payment methods for now.
        public var isRetryable: Bool {
            switch self {
            case .serviceUnavailable, .refundFailed, .noPaymentMethods: true
            default: false
            }
        }

        /// Who should see the error.
        public var audience: Audience {
            switch self {
            case .serviceUnavailable, .noPaymentMethods, .undocumented(-1401), .undocumented(-1404),
                .undocumented(990_000_029), .undocumented(990_000_031), .undocumented(990_000_032):
                .payer
            default: .merchant
            }
        }

        /// What to do about it.
        public var advice: String {
            switch self {
            case .success: "Nothing."
            case .serviceUnavailable: "Try again in a moment; tell the payer Kaspi is briefly unavailable."
            case .noClientCertificate: "Check the Api-Key (r1) or the client certificate, its key and the organization BIN (r2/r3)."
            case .deviceNotFound, .deviceNotActive: "Register the device again (device/register) and use the new token."
            case .deviceOnAnotherTradePoint: "Use another DeviceId, or delete the device from its trade point first."
            case .purchaseNotFound, .purchaseNotFoundForOperation: "Check the payment id."
            case .noTradePoints: "Create a trade point in the Kaspi Pay app."
            case .tradePointNotFound: "Check the trade point id against partner/tradepoints."
            case .tradePointMismatch: "Refund from a device of the purchase's own trade point."
            case .refundExceedsAmount: "Read payment/details and refund at most AvailableReturnAmount."
            case .refundFailed: "Retry the refund after checking payment/details; contact the bank if it keeps failing."
            case .refundNotAllowed: "Wait until the purchase is Processed; refunds are refused before."
            case .partialRefundNotPossible: "Refund the whole remaining amount, or refund in the Kaspi Pay app."
            case .tradePointDisabled: "Enable the trade point in the Kaspi Pay app."
            case .tradePointDoesNotAcceptQR: "Enable QR payments for the trade point in the Kaspi Pay app."
            case .invalidAmount: "Send a positive amount in tenge with at most two decimals."
            case .noPaymentMethods: "Ask the payer to use another account or try later."
            case .undocumented, .unknown: "Kaspi documents no meaning for this code: show it to the merchant and contact the bank."
            }
        }

        public var description: String {
            switch self {
            case .undocumented(let code), .unknown(let code): "unknown code \(code)"
            default: "\(rawValue) (\(meaning))"
            }
        }
    }
}
