import Foundation

/// The gateway's answers to Kaspi's failures and to interrupted work, shared by its parts.
extension GatewayError {
    static func providerFailure(_ error: ProviderError) -> GatewayError {
        if error.ambiguous {
            return GatewayError(.providerUnavailable, "PROVIDER_UNAVAILABLE", "Kaspi did not answer in time: \(error.message)")
        }
        return refusal(error) ?? GatewayError(.providerRefused, "PROVIDER_REFUSED", "Kaspi refused it (\(error.code)): \(error.message)")
    }

    /// Kaspi's refusal on the merits, which no retry changes: 409 or 422 with Kaspi's own
    /// code, not the 502 of Kaspi failing (which clients retry).
    static func refusal(_ error: ProviderError) -> GatewayError? {
        switch error.refusal {
        case .conflict?: GatewayError(.providerConflict, error.code, "Kaspi refused it: \(error.message)")
        case .unprocessable?: GatewayError(.providerRejected, error.code, "Kaspi refused it: \(error.message)")
        case nil: nil
        }
    }

    /// The answer to a retry whose interrupted work cannot be resumed (it ended otherwise
    /// meanwhile): look the resource up, and use a new key for a new attempt.
    static func notResumable(_ resource: String) -> GatewayError {
        GatewayError(
            .conflict, "IDEMPOTENCY_INTERRUPTED",
            "The first request with this Idempotency-Key was interrupted, and what it created (\(resource)) has moved on since; look that up, and use a new key for a new attempt."
        )
    }

    /// The answer to a resumed request that must wait: the key is handed back, not answered
    /// (``IdempotencyMiddleware``), and a retry after `seconds` resumes it again.
    static func resumeLater(after seconds: TimeInterval, _ why: String) -> GatewayError {
        let wait = max(1, Int(seconds.rounded(.up)))
        return GatewayError(
            .conflict, "IDEMPOTENCY_IN_PROGRESS", "The first request with this Idempotency-Key was interrupted and \(why); retry in \(wait) s.",
            retryAfter: wait)
    }
}
