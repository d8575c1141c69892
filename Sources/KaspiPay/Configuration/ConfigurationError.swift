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
    /// Kaspi publishes no production host for this QR API scheme (r2): set a base URL.
    case unknownProductionHost(String)
    /// The integration guide's API has no host Kaspi has confirmed: set `KASPI_BASE_URL`.
    case unconfirmedHost(String)
    /// `KASPI_QR_SCHEME` is not r1, r2 or r3.
    case invalidScheme(String)
    /// An organization BIN/IIN is not 12 digits.
    case invalidOrganizationBIN(String)
    /// A Kaspi QR API device token has the wrong shape. Its value is never included.
    case invalidDeviceToken(variable: String)
    /// A file named by the configuration (certificate, key, CA bundle) is missing or unreadable.
    case unreadableFile(variable: String, path: String)
    /// Credentials would travel without TLS: `http://` beyond this machine, or r2/r3 (whose
    /// client certificate only TLS carries) over `http://` at all.
    case insecureBaseURL(String, reason: String)
    /// A production key or certificate would go to a host that is not Kaspi's and that
    /// `KASPI_TRUSTED_HOST` does not name.
    case untrustedHost(String)
    /// A forward proxy (`KASPI_QR_PROXY`, `HTTPS_PROXY`) is not `http://host:port`. The value is
    /// never included: it may hold a password.
    case invalidProxy(variable: String, reason: String)

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
        case .unknownProductionHost: "CONFIG_UNKNOWN_PRODUCTION_HOST"
        case .unconfirmedHost: "CONFIG_UNCONFIRMED_HOST"
        case .invalidScheme: "CONFIG_INVALID_SCHEME"
        case .invalidOrganizationBIN: "CONFIG_INVALID_ORGANIZATION_BIN"
        case .unreadableFile: "CONFIG_UNREADABLE_FILE"
        case .invalidDeviceToken: "CONFIG_INVALID_DEVICE_TOKEN"
        case .insecureBaseURL: "CONFIG_INSECURE_BASE_URL"
        case .untrustedHost: "CONFIG_UNTRUSTED_HOST"
        case .invalidProxy: "CONFIG_INVALID_PROXY"
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
        case .unknownProductionHost(let scheme):
            "Kaspi publishes no production host for the \(scheme) scheme: set KASPI_BASE_URL to the address in the bank's e-mail."
        case .unconfirmedHost(let env):
            "KASPI_ENV=\(Redaction.quoted(env)) names no host for the integration guide's API: Kaspi has confirmed none. Set KASPI_BASE_URL to the server you were given (or a local sandbox), or use the Kaspi QR API."
        case .invalidScheme(let value):
            "KASPI_QR_SCHEME is \(Redaction.quoted(value)): use r1, r2 or r3."
        case .invalidOrganizationBIN(let value):
            "The organization BIN \(Redaction.quoted(value)) is malformed: it is 12 digits (leading zeros kept)."
        case .invalidDeviceToken(let variable):
            "\(variable) is not a device token (1 to 128 printable characters): copy the token device/register returned."
        case .unreadableFile(let variable, let path):
            "\(variable) names \(Redaction.quoted(path)), which cannot be read: check the path and its permissions."
        case .insecureBaseURL(let value, let reason):
            "The base URL \(Redaction.quoted(value)) would carry credentials without TLS: \(reason)."
        case .untrustedHost(let host):
            "A production key or certificate goes only to Kaspi's hosts (*.kaspi.kz), not to \(Redaction.quoted(host)). If that host is yours (a proxy) or the address the bank gave you, name it in KASPI_TRUSTED_HOST."
        case .invalidProxy(let variable, let reason):
            "\(variable) is not a forward proxy's address: \(reason). Use http://HOST:PORT (or http://USER:PASSWORD@HOST:PORT); the proxy carries TLS to Kaspi with CONNECT."
        }
    }
}
