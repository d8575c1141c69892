import Foundation
import KaspiGatewayStore
import KaspiPay

/// What the gateway asks every payment provider for: create a payment, read its status, and
/// the poll plan. The guide's Kaspi Pay API (``KaspiPayProvider``) and Kaspi's partner API, the
/// Kaspi QR API (``KaspiQRProvider``), are the two. What only some providers can do is a
/// capability (``ProviderCapabilities``), resolved once when the gateway is built: nothing
/// outside a provider assumes webhooks, a refund call, or either API's field names.
public protocol PaymentProvider: Sendable {
    /// A stable name stored with each order, e.g. `kaspi-pay`.
    var name: String { get }
    /// What the provider can do beyond the core.
    var capabilities: ProviderCapabilities { get }

    /// When to ask about an order next and until when it can still be paid, from what the
    /// provider handed out (its interval and deadlines); nil for the gateway's own schedule.
    func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan?

    /// Creates a payment the payer completes on the provider's page.
    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment
    /// Creates a QR payment.
    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR
    /// Asks for an order's status.
    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus
}

/// A provider that pushes status changes (the guide's webhooks); the gateway polls either way.
public protocol WebhookCapability: Sendable {
    /// Verifies and reads a pushed notification from its raw body.
    func readWebhook(_ body: [UInt8]) throws(ProviderError) -> ProviderWebhook
}

/// A provider that refunds through its API, without the payer (the guide's API; the Kaspi QR
/// API's r3).
public protocol DirectRefundCapability: Sendable {
    /// Refunds part or all of a paid order.
    func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund
}

/// A provider that refunds with the customer present, who scans a return QR (the Kaspi QR
/// API's r2).
public protocol CustomerReturnCapability: Sendable {
    /// A return QR for the customer to scan.
    func createCustomerReturn() async throws(ProviderError) -> ProviderCustomerReturn
    /// A customer return's status, and once the customer scanned, their purchases.
    func customerReturn(id: String) async throws(ProviderError) -> ProviderCustomerReturnStatus
    /// Refunds with a return QR the purchase's customer scanned.
    func refund(_ order: GatewayOrder, amount: Int, returnID: String) async throws(ProviderError) -> ProviderRefund
}

/// A provider that bills phone numbers, paid in the payer's app (the Kaspi QR API's r3).
public protocol RemoteInvoiceCapability: Sendable {
    /// The name of the client a phone number belongs to, shown before billing them.
    func clientName(phoneNumber: String) async throws(ProviderError) -> String
    /// Bills a phone number.
    func createRemoteInvoice(_ request: ProviderPaymentRequest, phoneNumber: String, comment: String?) async throws(ProviderError) -> ProviderPayment
    /// Cancels an unpaid remote invoice.
    func cancelRemoteInvoice(_ order: GatewayOrder) async throws(ProviderError) -> ProviderStatus
}

/// What a provider can do beyond creating payments and reading their status; a capability it
/// lacks is nil, and the gateway answers that it is not supported.
public struct ProviderCapabilities: Sendable {
    /// Pushed status changes.
    public var webhooks: (any WebhookCapability)?
    /// Refunds through the API.
    public var directRefunds: (any DirectRefundCapability)?
    /// Refunds with the customer present.
    public var customerReturns: (any CustomerReturnCapability)?
    /// Invoices to phone numbers.
    public var remoteInvoices: (any RemoteInvoiceCapability)?

    /// Creates a set of capabilities; none by default.
    public init(
        webhooks: (any WebhookCapability)? = nil, directRefunds: (any DirectRefundCapability)? = nil,
        customerReturns: (any CustomerReturnCapability)? = nil, remoteInvoices: (any RemoteInvoiceCapability)? = nil
    ) {
        self.webhooks = webhooks
        self.directRefunds = directRefunds
        self.customerReturns = customerReturns
        self.remoteInvoices = remoteInvoices
    }

    /// How refunds are made: through the API, with the customer present, or in the Kaspi Pay
    /// app and recorded (neither).
    public var refundMethod: RefundMethod {
        if directRefunds != nil { return .direct }
        if customerReturns != nil { return .customerPresent }
        return .manual
    }
}

/// A return QR for the customer to scan.
public struct ProviderCustomerReturn: Sendable, Hashable {
    /// The provider's id for the return (the Kaspi QR API's `QrReturnId`).
    public var id: String
    /// What the QR code holds.
    public var qrToken: String
    /// The QR code, as a PNG image.
    public var png: [UInt8]
    /// When the customer's time to scan it ends.
    public var expiresAt: Date
    /// How often to ask about it, seconds.
    public var pollingInterval: Int
}

/// Where a customer return stands.
public struct ProviderCustomerReturnStatus: Sendable, Hashable {
    /// The provider's word: `QrTokenCreated`, `CustomerIdentityObtained`, `Error`.
    public var status: String
    /// Whether the customer scanned it (their purchases are listed).
    public var identified: Bool
    /// The customer's purchases at this merchant, newest first.
    public var purchases: [Purchase]

    /// One of the customer's purchases.
    public struct Purchase: Sendable, Hashable {
        /// The provider's id for the payment.
        public var providerPaymentID: String
        /// What the customer paid.
        public var amount: Decimal
        /// When they paid, when the provider says.
        public var at: Date?
    }
}

extension PaymentProvider {
    /// No plan of its own: the gateway polls on its own schedule.
    public func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? { nil }
    /// Nothing beyond the core, unless the provider says otherwise.
    public var capabilities: ProviderCapabilities { ProviderCapabilities() }
}

extension ProviderError {
    static let customerReturnsUnsupported = ProviderError(
        code: "RETURNS_NOT_SUPPORTED", message: "Refunds with a return QR exist on the Kaspi QR API's r2 scheme only.")
    static let remoteInvoicesUnsupported = ProviderError(
        code: "REMOTE_INVOICES_NOT_SUPPORTED", message: "Remote invoices exist on the Kaspi QR API's r3 scheme only.")
}

/// How a provider refunds.
public enum RefundMethod: String, Sendable, Hashable {
    /// Through the API, without the payer (the guide's API; the Kaspi QR API's r3).
    case direct
    /// Through the API with the payer present, who scans a return QR (the Kaspi QR API's r2).
    case customerPresent = "customer_present"
    /// Not through the API: the merchant refunds in the Kaspi Pay app and records it (r1).
    case manual
}

/// When to poll an order and until when it can be paid.
public struct ProviderPollPlan: Sendable, Hashable {
    /// The next poll.
    public var nextPollAt: Date
    /// When the running phase ends: past it without a final status, the order has expired.
    public var deadline: Date
    /// The running phase, for the timeline (e.g. `scan`, `confirmation`).
    public var phase: String
    /// Whether an expired order is still asked about later for a late payment (false for
    /// remote invoices, which must not be read on a timer).
    public var latePolls: Bool
    /// The earliest the provider can have ended the payment by itself at one of its
    /// deadlines: a failure it reports at or after this is an expiry, not a refusal
    /// (``PollPolicy``). Nil when the provider never ends payments by itself.
    public var earliestEnd: Date?

    /// Creates a plan.
    public init(nextPollAt: Date, deadline: Date, phase: String, latePolls: Bool = true, earliestEnd: Date? = nil) {
        self.nextPollAt = nextPollAt
        self.deadline = deadline
        self.phase = phase
        self.latePolls = latePolls
        self.earliestEnd = earliestEnd
    }
}

/// What the gateway asks the provider to create: a payment page, a QR code or an invoice.
public struct ProviderPaymentRequest: Sendable, Hashable {
    /// The id the provider will know the order by (the Kaspi QR API's `ExternalId`).
    public var providerOrderID: String
    /// The amount, in whole tenge.
    public var amount: Int
    /// What is paid for, shown to the payer.
    public var description: String?
    /// Where the payer goes after paying (on providers that send them back).
    public var returnURL: URL
    /// Where the payer goes when the payment fails.
    public var failURL: URL
    /// The merchant's reference, which may choose the trade point.
    public var merchantReference: String? = nil
    /// Whether an earlier run may have sent this create before it crashed: a provider that
    /// can tell (the guide's API, by the same order id) returns that payment rather than
    /// failing; one that cannot makes a new one (the lost one was never shown to a payer).
    public var resuming: Bool = false
}

/// A payment the provider created: where to send the payer.
public struct ProviderPayment: Sendable, Hashable {
    /// The page (or app link) where the payer pays.
    public var paymentURL: String
    /// What the provider needs to follow the order, stored with it.
    public var providerState: String? = nil
    /// The provider's own id for the payment, when it assigns one.
    public var providerPaymentID: String? = nil
}

/// A QR payment the provider created.
public struct ProviderQR: Sendable, Hashable {
    /// What the QR code holds.
    public var token: String
    /// The QR code, as a PNG image.
    public var png: [UInt8]
    /// What the provider needs to follow the order, stored with it.
    public var providerState: String? = nil
    /// The provider's own id for the payment, when it assigns one.
    public var providerPaymentID: String? = nil
}

/// What the provider says of an order now.
public struct ProviderStatus: Sendable, Hashable {
    /// The payment's status, which the state machine applies.
    public var report: PaymentStatus
    /// The provider's transaction id, once paid.
    public var transactionID: String?
    /// What the provider's record says was refunded in all, when it says.
    public var refundedAmount: Int? = nil
    /// The order's provider state after this status, when it changed, and why.
    public var providerState: String? = nil
    /// Why the provider state changed, for the timeline.
    public var providerStateNote: String? = nil
    /// The provider's own word for the status (e.g. `Wait`), for the timeline.
    public var providerStatus: String? = nil
}

/// A refund the provider confirmed.
public struct ProviderRefund: Sendable, Hashable {
    /// The provider's id for the refund.
    public var refundID: String
}

/// A webhook the provider sent, verified.
public struct ProviderWebhook: Sendable, Hashable {
    /// The order it is about, by the provider's id for it.
    public var providerOrderID: String
    /// The amount it names, in tenge; the gateway checks it against the order's.
    public var amount: Int
    /// The status it reports.
    public var report: PaymentStatus
    /// The provider's transaction id, when it gives one.
    public var transactionID: String?
}

/// Why a provider call failed.
public struct ProviderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable code, e.g. the provider's own (`INVALID_RETURN_URL`) or `PROVIDER_UNAVAILABLE`.
    public var code: String
    /// What happened, safe to show and log.
    public var message: String
    /// True when the call may have taken effect (timeout, 5xx): check before repeating.
    public var ambiguous: Bool
    /// True when the provider does not know the order.
    public var notFound: Bool
    /// A business refusal that no retry can change, when it is one.
    public var refusal: Refusal?

    /// A refusal on the merits, not a failure of the provider.
    public enum Refusal: Sendable, Hashable {
        /// The request conflicts with the payment's state at the provider (a refund beyond
        /// what it still holds).
        case conflict
        /// The request can never succeed as made (no such Kaspi client).
        case unprocessable
    }

    /// Creates an error.
    public init(code: String, message: String, ambiguous: Bool = false, notFound: Bool = false, refusal: Refusal? = nil) {
        self.code = code
        self.message = message
        self.ambiguous = ambiguous
        self.notFound = notFound
        self.refusal = refusal
    }

    public var description: String { "\(code): \(message)" }
}
