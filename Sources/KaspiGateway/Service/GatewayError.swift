import KaspiGatewayStore

/// Why the gateway refused or could not finish something, in the domain's terms: the HTTP
/// edge (and only it) turns ``Kind`` into a status code.
public struct GatewayError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure it is; callers decide by this, not by ``code``.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The caller's input is wrong; sending it again changes nothing.
        case invalidRequest
        /// The caller did not prove who it is.
        case unauthenticated
        /// The caller is known but may not do this (a restricted API key).
        case forbidden
        /// No such order, refund, link or return.
        case notFound
        /// The resource's state does not allow it (a refund of an unpaid order, say).
        case conflict
        /// The resource existed and is over (an expired payment link).
        case gone
        /// The request is larger than the gateway takes.
        case tooLarge
        /// Asked too often; ``GatewayError/retryAfter`` says when to ask again.
        case tooSoon
        /// Kaspi answered and refused, for a reason of its own (a retry later may succeed).
        case providerRefused
        /// Kaspi refused on the merits, because of the payment's state there (a refund beyond
        /// what Kaspi still holds): no retry changes it.
        case providerConflict
        /// Kaspi refused on the merits, because the request can never succeed as made (no such
        /// Kaspi client): no retry changes it.
        case providerRejected
        /// Kaspi could not be reached or did not answer in time; nothing was changed.
        case providerUnavailable
        /// Kaspi was asked, and its answer was lost: the outcome is settled by reconciliation.
        case providerOutcomeUnknown
        /// The database could not take the change; retry later.
        case storageUnavailable
        /// The gateway's own configuration is wrong (its public URL, say).
        case misconfigured
        /// A failure nobody foresaw; the log has the details.
        case `internal`
    }

    /// What kind of failure it is.
    public var kind: Kind
    /// A stable machine code, such as `ORDER_NOT_FOUND`.
    public var code: String
    /// What happened and what to do, for a person; never holds a secret.
    public var message: String
    /// Seconds after which asking again may succeed, when known.
    public var retryAfter: Int?

    /// Creates an error.
    public init(_ kind: Kind, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    /// `CODE: message`.
    public var description: String { "\(code): \(message)" }

    static func invalid(_ message: String) -> Self { .init(.invalidRequest, "INVALID_REQUEST", message) }
    static let unauthorized = Self(.unauthenticated, "UNAUTHORIZED", "Send Authorization: Bearer <your gateway API key>.")
    static func notFound(_ id: String) -> Self { .init(.notFound, "ORDER_NOT_FOUND", "No order \(id).") }
    static let storageUnavailable = Self(.storageUnavailable, "STORAGE_UNAVAILABLE", "The gateway could not store the change; retry later.")
    static let internalError = Self(.internal, "INTERNAL_ERROR", "Something went wrong; look the resource up before you retry.")

    /// The store's refusals, in the gateway's words.
    static func from(_ error: StoreError) -> Self {
        switch error {
        case .orderNotFound(let id): .notFound(id)
        case .refundExceedsPaid: .init(.conflict, "REFUND_EXCEEDS_PAID", "The refund would exceed what remains of the paid amount.")
        case .notRefundable(_, let state): .init(.conflict, "NOT_REFUNDABLE", "The order is \(state.rawValue); only a paid order can be refunded.")
        case .idempotencyConflict: .init(.conflict, "IDEMPOTENCY_CONFLICT", "This Idempotency-Key was used with a different request; use a new key.")
        case .idempotencyInProgress:
            .init(
                .conflict, "IDEMPOTENCY_IN_PROGRESS",
                "A request with this Idempotency-Key is still being processed; retry after a moment for its answer.",
                retryAfter: 1)
        case .duplicateOrder: .init(.conflict, "DUPLICATE_ORDER", "An order with this id exists.")
        case .refundAlreadyResolved(let id): .init(.conflict, "REFUND_ALREADY_RESOLVED", "Refund \(id) was settled already.")
        case .schemaTooNew, .database: .storageUnavailable
        }
    }

    /// Any error from the store (or one of ours passed through) as a gateway error.
    static func storage(_ error: any Error) -> Self {
        if let error = error as? GatewayError { return error }
        if let error = error as? StoreError { return .from(error) }
        return .storageUnavailable
    }
}
