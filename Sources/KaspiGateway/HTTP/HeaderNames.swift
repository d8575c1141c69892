import HTTPTypes

extension HTTPField.Name {
    /// `Idempotency-Key`: a merchant's key that makes a POST safe to retry.
    public static let idempotencyKey = known("Idempotency-Key")
    /// `Idempotent-Replayed: true` marks an answer replayed for an Idempotency-Key.
    public static let idempotentReplayed = known("Idempotent-Replayed")
    /// `Client-Secret`: an order's client secret, sent by the payer's app to the client endpoint.
    public static let clientSecret = known("Client-Secret")
    /// `X-Forwarded-For`: the addresses a request passed through, as proxies append them.
    public static let xForwardedFor = known("X-Forwarded-For")
    /// `Forwarded` (RFC 7239): the same, with `for=` parameters.
    public static let forwarded = known("Forwarded")
    /// `X-Request-Id`: the request's id in the gateway's logs, answered on every response.
    public static let requestID = known("X-Request-Id")
    /// Standard Webhooks' `webhook-id`.
    public static let webhookID = known("webhook-id")
    /// Standard Webhooks' `webhook-timestamp`.
    public static let webhookTimestamp = known("webhook-timestamp")
    /// Standard Webhooks' `webhook-signature`.
    public static let webhookSignature = known("webhook-signature")

    /// A name written in this file, a valid token, so the fallback is never taken; it exists so
    /// that nothing here can trap. A test checks every name.
    private static func known(_ token: String) -> Self {
        Self(token) ?? .via
    }
}
