extension KaspiQRAPI {
    /// Why a Kaspi QR API call failed. Its ``description`` never holds the Api-Key, a device
    /// token or a request body.
    public enum APIError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Kaspi answered with a non-zero `StatusCode` (whatever the HTTP status).
        case kaspi(StatusCode, message: String?, call: String)
        /// A call that creates something (a purchase, a link, a return, a refund, an invoice)
        /// may or may not have taken effect: its answer was lost. It was not sent again, because
        /// every create makes a new one. `externalId` is what was sent as `ExternalId`, to find
        /// it in Kaspi's records.
        case unknownOutcome(call: String, externalID: String?, reason: String)
        /// No answer within the deadline (a read, after its retries).
        case timeout(call: String)
        /// The connection failed (a read, after its retries).
        case transport(call: String, reason: String)
        /// The TLS handshake failed for good: Kaspi refused the client certificate (another CA,
        /// expired, revoked), or Kaspi's certificate is not one the CA bundle trusts. Nothing
        /// was processed, so even a create did not happen, and it is not retried.
        case tlsRefused(call: String, reason: String)
        /// An HTTP status with no Kaspi envelope in the body (e.g. 404 for a path the server
        /// does not have, 502 from a proxy).
        case unexpectedHTTPStatus(Int, call: String, bodySnippet: String)
        /// The body is not the envelope or its data is malformed.
        case undecodable(call: String, reason: String, bodySnippet: String)
        /// The request was refused before sending: an invalid argument.
        case invalidRequest(String)

        /// A stable machine code: the Kaspi code's (``StatusCode/code``) or one of
        /// `KASPI_QR_UNKNOWN_OUTCOME`, `KASPI_QR_TIMEOUT`, `KASPI_QR_TRANSPORT`, `KASPI_QR_TLS_REFUSED`,
        /// `KASPI_QR_HTTP_STATUS`, `KASPI_QR_UNDECODABLE`, `KASPI_QR_INVALID_REQUEST`.
        public var code: String {
            switch self {
            case .kaspi(let status, _, _): status.code
            case .unknownOutcome: "KASPI_QR_UNKNOWN_OUTCOME"
            case .timeout: "KASPI_QR_TIMEOUT"
            case .transport: "KASPI_QR_TRANSPORT"
            case .tlsRefused: "KASPI_QR_TLS_REFUSED"
            case .unexpectedHTTPStatus: "KASPI_QR_HTTP_STATUS"
            case .undecodable: "KASPI_QR_UNDECODABLE"
            case .invalidRequest: "KASPI_QR_INVALID_REQUEST"
            }
        }

        /// Kaspi's code, when Kaspi answered with one.
        public var statusCode: StatusCode? {
            if case .kaspi(let status, _, _) = self { return status }
            return nil
        }

        /// Whether the same call may succeed if made again later. An unknown outcome is not:
        /// check first whether it took effect.
        public var isRetryable: Bool {
            switch self {
            case .kaspi(let status, _, _): status.isRetryable
            case .timeout, .transport: true
            case .unexpectedHTTPStatus(let http, _, _): http == 429 || http >= 500
            case .unknownOutcome, .undecodable, .invalidRequest, .tlsRefused: false
            }
        }

        /// Who should see it.
        public var audience: Audience {
            switch self {
            case .kaspi(let status, _, _): status.audience
            default: .merchant
            }
        }

        /// Whether a read may be retried by the client itself.
        var isTransient: Bool {
            switch self {
            case .timeout, .transport: true
            case .kaspi(let status, _, _): status == .serviceUnavailable
            case .unexpectedHTTPStatus(let http, _, _): http == 429 || http == 502 || http == 503 || http == 504
            default: false
            }
        }

        public var description: String {
            switch self {
            case .kaspi(let status, let message, let call):
                let said = message.map { $0.isEmpty || $0 == "OK" ? "" : " Kaspi said: \(Redaction.quoted($0, limit: 200))." } ?? ""
                return "\(call): Kaspi answered \(status).\(said) \(status.advice)"
            case .unknownOutcome(let call, let externalID, let reason):
                var next = externalID.map { " Look for ExternalId \(Redaction.quoted($0)) in the Kaspi Pay app before creating it again." } ?? ""
                if call == "payment/return" { next = " Read payment/details: AvailableReturnAmount shows whether it went through." }
                return "\(call): the answer was lost (\(reason)), so it may or may not have taken effect; it was not sent again.\(next)"
            case .timeout(let call): return "\(call): Kaspi did not answer in time."
            case .transport(let call, let reason): return "\(call): could not reach Kaspi: \(reason)."
            case .tlsRefused(let call, let reason): return "\(call): \(reason). Kaspi processed nothing, and it was not retried."
            case .unexpectedHTTPStatus(let http, let call, let snippet):
                return "\(call): HTTP \(http) without a Kaspi answer\(snippet.isEmpty ? "" : ": \(snippet)")."
            case .undecodable(let call, let reason, let snippet):
                return "\(call): the answer could not be read (\(reason))\(snippet.isEmpty ? "" : ": \(snippet)")."
            case .invalidRequest(let reason): return "Invalid request: \(reason)"
            }
        }
    }
}
