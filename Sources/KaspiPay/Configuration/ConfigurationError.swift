/// A problem with the client's configuration, found before any request is sent.
public enum ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A required environment variable is not set (or is empty).
    case missingVariable(String)
    /// The API key has the wrong shape. Its value is never included.
    case invalidAPIKey(reason: String)
    /// The trade point id has the wrong shape.
    case invalidTradePointID(String, reason: String)
    /// `KASPI_ENV` holds something other than `production`, `test` or a URL.
    case invalidEnvironment(String)
    /// `KASPI_BASE_URL` (or a custom base URL) is not an absolute http(s) URL.
    case invalidBaseURL(String, reason: String)
    /// Both `KASPI_ENV` and `KASPI_BASE_URL` are set and disagree.
    case conflictingEnvironment(env: String, baseURL: String)
    /// `KASPI_RATE_LIMIT` is not a whole number of requests a minute from 0 to 100000.
    case invalidRateLimit(String)

    /// A stable machine-readable code.
    public var code: String {
        switch self {
        case .missingVariable: "CONFIG_MISSING_VARIABLE"
        case .invalidAPIKey: "CONFIG_INVALID_API_KEY"
        case .invalidTradePointID: "CONFIG_INVALID_TRADE_POINT_ID"
        case .invalidEnvironment: "CONFIG_INVALID_ENVIRONMENT"
        case .invalidBaseURL: "CONFIG_INVALID_BASE_URL"
        case .conflictingEnvironment: "CONFIG_CONFLICTING_ENVIRONMENT"
        case .invalidRateLimit: "CONFIG_INVALID_RATE_LIMIT"
        }
    }

    public var description: String {
        switch self {
        case .missingVariable(let name):
            "\(name) is not set: export it (see the README's configuration section)."
        case .invalidAPIKey(let reason):
            "The API key is malformed: \(reason). Copy it again from the Kaspi merchant portal."
        case .invalidTradePointID(let value, let reason):
            "The trade point id \(Redaction.quoted(value)) is malformed: \(reason). Copy it from the Kaspi merchant portal."
        case .invalidEnvironment(let value):
            "KASPI_ENV is \(Redaction.quoted(value)): use production, test, or an absolute http(s) URL."
        case .invalidBaseURL(let value, let reason):
            "The base URL \(Redaction.quoted(value)) is invalid: \(reason). Use an absolute http(s) URL such as http://127.0.0.1:8181."
        case .conflictingEnvironment(let env, let baseURL):
            "KASPI_ENV=\(Redaction.quoted(env)) and KASPI_BASE_URL=\(Redaction.quoted(baseURL)) disagree: set only one of them."
        case .invalidRateLimit(let value):
            "KASPI_RATE_LIMIT is \(Redaction.quoted(value)): use a whole number of requests a minute from 1 to 100000, or 0 to switch the client-side limit off."
        }
    }
}
