extension KaspiQRAPI {
    /// A purchase that is followed by polling: a QR or a link. Remote invoices are not: Kaspi
    /// refuses status reads on a timer for them.
    public protocol PollablePurchase: Sendable {
        /// The id for `payment/status`.
        var paymentID: Int64 { get }
        /// The deadlines and interval Kaspi handed out.
        var options: BehaviorOptions { get }
    }

    /// Which deadline is running.
    public enum PollingPhase: String, Sendable, Hashable {
        /// Until the payer scans the QR or opens the link: creation + `QrCodeScanWaitTimeout`
        /// (`LinkActivationWaitTimeout` for links).
        case scan
        /// Until the payer confirms: the first `Wait` + `PaymentConfirmationTimeout`.
        case confirmation
    }

    /// A purchase's deadlines as the guide defines them, in time elapsed since creation. A
    /// pure value: the gateway stores one per order, the polling helper keeps one per wait.
    public struct PaymentDeadlines: Sendable, Hashable {
        /// The options from the create call.
        public let options: BehaviorOptions
        /// When `Wait` was first seen, since creation.
        public private(set) var firstWaitAt: Duration?

        /// Creates a purchase to wait for from its options, and when `Wait` was first seen when resuming.
        public init(options: BehaviorOptions, firstWaitAt: Duration? = nil) {
            self.options = options
            self.firstWaitAt = firstWaitAt
        }

        /// Notes a status read at `elapsed`: the confirmation deadline starts at the first `Wait`.
        public mutating func observe(_ status: PaymentStatus, at elapsed: Duration) {
            if status == .wait, firstWaitAt == nil { firstWaitAt = elapsed }
        }

        /// The running phase.
        public var phase: PollingPhase { firstWaitAt == nil ? .scan : .confirmation }

        /// The running deadline, since creation.
        public var deadline: Duration {
            if let firstWaitAt { return firstWaitAt + .seconds(max(0, options.confirmationTimeout)) }
            return .seconds(max(0, options.scanTimeout))
        }

        /// The time between two status reads: Kaspi's `StatusPollingInterval`, at least 1 s.
        public var pollingInterval: Duration { .seconds(max(1, options.statusPollingInterval)) }

        /// Whether the running deadline has passed at `elapsed`.
        public func hasExpired(at elapsed: Duration) -> Bool { elapsed >= deadline }
    }

    /// Where a wait stands, reported after each status read.
    public struct PollProgress: Sendable, Hashable {
        /// The last status read.
        public var status: PaymentStatus
        /// The running phase.
        public var phase: PollingPhase
        /// Time since creation.
        public var elapsed: Duration
        /// Time left before the running deadline (zero once passed).
        public var remaining: Duration
        /// Status reads so far.
        public var polls: Int
    }

    /// How a wait ended.
    public enum PaymentOutcome: Sendable, Hashable {
        /// Paid (`Processed`), with what the status call returned (v02: the transaction id).
        case processed(PaymentStatusDetails)
        /// `Error`: cancelled by the payer, failed, or cancelled by Kaspi.
        case failed(PaymentStatusDetails)
        /// The deadline of `phase` passed without a final status; Kaspi cancels the purchase.
        case expired(phase: PollingPhase, lastStatus: PaymentStatus)
    }
}

extension KaspiQRAPI.QRPurchase: KaspiQRAPI.PollablePurchase {}
extension KaspiQRAPI.LinkPurchase: KaspiQRAPI.PollablePurchase {}

extension KaspiQRAPI.Client {
    /// Polls a QR or link purchase until it is final or its deadline passes, the way the
    /// guide defines it: every `StatusPollingInterval`; the scan (or link activation)
    /// deadline from creation; the confirmation deadline from the first `Wait`; one last read
    /// at a deadline before reporting it expired.
    ///
    /// - Parameters:
    ///   - purchase: from ``createQR(device:amount:externalID:)`` or ``createLink(device:amount:externalID:)``.
    ///   - elapsedSinceCreation: how long ago it was created, when resuming a wait.
    ///   - firstWaitAt: when `Wait` was first seen (since creation), when resuming.
    ///   - progress: called after each status read.
    /// - Throws: a non-retryable ``KaspiQRAPI/APIError``; a retryable one when it persists
    ///   past the deadline (the outcome is then unknown, not expired).
    public func waitForPayment(
        _ purchase: some KaspiQRAPI.PollablePurchase, elapsedSinceCreation: Duration = .zero, firstWaitAt: Duration? = nil,
        progress: (@Sendable (KaspiQRAPI.PollProgress) async -> Void)? = nil
    ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentOutcome {
        let clock = executor.clock
        let origin = clock.now() - elapsedSinceCreation
        var deadlines = KaspiQRAPI.PaymentDeadlines(options: purchase.options, firstWaitAt: firstWaitAt)
        var polls = 0
        var lastStatus = KaspiQRAPI.PaymentStatus.qrTokenCreated
        var lastError: KaspiQRAPI.APIError?
        while true {
            polls += 1
            do {
                let details = try await status(paymentID: purchase.paymentID)
                lastError = nil
                lastStatus = details.status
                let elapsed = clock.now() - origin
                deadlines.observe(details.status, at: elapsed)
                await progress?(
                    .init(
                        status: details.status, phase: deadlines.phase, elapsed: elapsed,
                        remaining: max(.zero, deadlines.deadline - elapsed), polls: polls))
                switch details.status {
                case .processed: return .processed(details)
                case .error: return .failed(details)
                default: break
                }
            } catch {
                guard error.isRetryable else { throw error }
                lastError = error
            }
            let elapsed = clock.now() - origin
            if deadlines.hasExpired(at: elapsed) {
                if let lastError { throw lastError }
                return .expired(phase: deadlines.phase, lastStatus: lastStatus)
            }
            let wait = min(deadlines.pollingInterval, deadlines.deadline - elapsed)
            do { try await clock.sleep(max(.zero, wait)) } catch { throw .transport(call: "payment/status", reason: "cancelled") }
        }
    }
}
