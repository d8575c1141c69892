import Foundation

extension KaspiQRAPI {
    /// Where the client certificate and trusted CAs for r2 and r3 live, as files. The
    /// AsyncHTTPClient transport turns them into TLS settings.
    public struct CertificateFiles: Sendable, Hashable {
        /// The client identity.
        public enum Identity: Sendable, Hashable {
            /// A PEM certificate and a PEM key.
            case pem(certificatePath: String, keyPath: String)
            /// A PKCS#12 (`.p12`, `.pfx`) file and its password.
            case pkcs12(path: String, password: String)
        }

        /// The client certificate and its key.
        public var identity: Identity
        /// A PEM bundle of the CAs that sign the server (Kaspi's root and intermediate for the
        /// test host, or a sandbox's `ca.pem`); nil trusts the system's roots.
        public var caBundlePath: String?

        /// Creates the files' description.
        public init(identity: Identity, caBundlePath: String? = nil) {
            self.identity = identity
            self.caBundlePath = caBundlePath
        }
    }

    /// A forward HTTP proxy that Kaspi calls leave through (Kaspi registers the caller's
    /// address for r2 and r3, so servers often leave through one fixed address). TLS, with the
    /// client certificate, runs end to end through the proxy's `CONNECT` tunnel: the proxy
    /// sees the host name and the bytes' sizes, never the requests.
    public struct Proxy: Sendable, Hashable, CustomStringConvertible {
        /// The proxy's host name or address.
        public var host: String
        /// Its port.
        public var port: Int
        /// The user for the proxy's basic authentication, if it asks for one.
        public var user: String?
        /// Its password (never in ``description``).
        public var password: String?

        /// A proxy at `host:port`, with basic authentication when `user` is given.
        public init(host: String, port: Int, user: String? = nil, password: String? = nil) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
        }

        /// Parses `http://[user:password@]host[:port]` (port 3128 when absent, as squid and
        /// most proxies use); `variable` names where it came from in errors.
        public init(parsing text: String, variable: String) throws(ConfigurationError) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let withScheme = trimmed.contains("://") ? trimmed : "http://" + trimmed
            guard let url = URLComponents(string: withScheme), let scheme = url.scheme?.lowercased() else {
                throw .invalidProxy(variable: variable, reason: "it is not a URL")
            }
            guard scheme == "http" else { throw .invalidProxy(variable: variable, reason: "only http:// proxies are supported, not \(scheme)://") }
            guard let host = url.host, !host.isEmpty else { throw .invalidProxy(variable: variable, reason: "it names no host") }
            guard url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil else {
                throw .invalidProxy(variable: variable, reason: "it has a path or query; give only the host and port")
            }
            let port = url.port ?? 3128
            guard (1...65_535).contains(port) else { throw .invalidProxy(variable: variable, reason: "the port is out of range") }
            self.init(host: host, port: port, user: url.user?.removingPercentEncoding, password: url.password?.removingPercentEncoding)
        }

        /// `host:port`, never the credentials.
        public var description: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }

        /// The proxy for Kaspi calls from the environment: `KASPI_QR_PROXY`, else the standard
        /// `HTTPS_PROXY` (or `https_proxy`) unless `NO_PROXY` (or `no_proxy`) names `host`.
        public static func fromEnvironment(_ environment: [String: String], for host: String) throws(ConfigurationError) -> Proxy? {
            func value(_ name: String) -> String? {
                guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
                return raw
            }
            if let own = value("KASPI_QR_PROXY") { return try Proxy(parsing: own, variable: "KASPI_QR_PROXY") }
            let name = value("HTTPS_PROXY") != nil ? "HTTPS_PROXY" : "https_proxy"
            guard let standard = value(name) else { return nil }
            if let exempt = value("NO_PROXY") ?? value("no_proxy"), bypasses(host: host, noProxy: exempt) { return nil }
            return try Proxy(parsing: standard, variable: name)
        }

        /// `NO_PROXY`'s usual reading: `*`, a host, or a domain suffix (`.kaspi.kz` or
        /// `kaspi.kz`), comma-separated; ports are ignored.
        static func bypasses(host: String, noProxy: String) -> Bool {
            let host = host.lowercased()
            for entry in noProxy.split(separator: ",") {
                var name = entry.trimmingCharacters(in: .whitespaces).lowercased()
                if name == "*" { return true }
                if let colon = name.lastIndex(of: ":"), !name.contains("]"), name.filter({ $0 == ":" }).count == 1 {
                    name = String(name[..<colon])
                }
                if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
                if name.hasPrefix(".") { name.removeFirst() }
                guard !name.isEmpty else { continue }
                if host == name || host.hasSuffix("." + name) { return true }
            }
            return false
        }
    }

    /// Everything needed to talk to the Kaspi QR API, read from the environment by
    /// ``init(environment:)``:
    /// - `KASPI_QR_SCHEME` (required): `r1`, `r2` or `r3`;
    /// - `KASPI_ENV`: `test` (Kaspi's test host `mtokentest.kaspi.kz`, the default), `production`,
    ///   or a URL; `KASPI_BASE_URL`: any host root (a sandbox), overriding `KASPI_ENV`;
    /// - r1: `KASPI_QR_API_KEY` (secret);
    /// - r2, r3: `KASPI_QR_CERT` and `KASPI_QR_KEY` (PEM), or `KASPI_QR_PKCS12` and
    ///   `KASPI_QR_PKCS12_PASSWORD` (secret); `KASPI_QR_CA_BUNDLE` (PEM) to trust Kaspi's CA;
    /// - r3: `KASPI_QR_ORGANIZATION_BIN`;
    /// - `KASPI_QR_DEVICE_TOKEN` (secret, optional): the registered device to use;
    /// - `KASPI_QR_PROXY`, else `HTTPS_PROXY` (minus `NO_PROXY`): a forward proxy (``Proxy``).
    ///
    /// Credentials never travel in the clear: r2 and r3 need `https://`, r1's `http://` goes only
    /// to this machine (`CONFIG_INSECURE_BASE_URL`); production (`KASPI_ENV=production`, also
    /// with `KASPI_BASE_URL`, or a `prod_` key) goes only to `*.kaspi.kz` or a host named in
    /// `KASPI_TRUSTED_HOST` (`CONFIG_UNTRUSTED_HOST`).
    public struct Settings: Sendable {
        /// `KASPI_QR_SCHEME`: r1, r2 or r3.
        public var scheme: SchemeName
        /// Kaspi's test host, its production host, or any URL (a sandbox).
        public var host: Host
        /// r1's `Api-Key` (`KASPI_QR_API_KEY`).
        public var apiKey: APIKey?
        /// r2 and r3's client certificate.
        public var certificates: CertificateFiles?
        /// r3's organization (`KASPI_QR_ORGANIZATION_BIN`).
        public var organizationBin: OrganizationBIN?
        /// The registered device to use (`KASPI_QR_DEVICE_TOKEN`).
        public var deviceToken: DeviceToken?
        /// The forward proxy Kaspi calls leave through, if any.
        public var proxy: Proxy?

        /// Creates settings in code rather than from the environment.
        public init(
            scheme: SchemeName, host: Host, apiKey: APIKey? = nil, certificates: CertificateFiles? = nil,
            organizationBin: OrganizationBIN? = nil, deviceToken: DeviceToken? = nil, proxy: Proxy? = nil
        ) {
            self.proxy = proxy
            self.scheme = scheme
            self.host = host
            self.apiKey = apiKey
            self.certificates = certificates
            self.organizationBin = organizationBin
            self.deviceToken = deviceToken
        }

        /// Reads the settings (see the type's documentation).
        ///
        /// - Throws: ``ConfigurationError`` naming the first missing or malformed variable.
        public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) {
            func value(_ name: String) -> String? {
                guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
                return raw
            }
            guard let schemeText = value("KASPI_QR_SCHEME") else { throw .missingVariable("KASPI_QR_SCHEME") }
            guard let scheme = SchemeName(parsing: schemeText) else { throw .invalidScheme(schemeText) }
            self.scheme = scheme
            if let base = value("KASPI_BASE_URL") {
                self.host = .custom(try KaspiEnvironment.custom(parsing: base).baseURL)
            } else {
                self.host = try value("KASPI_ENV").map { text throws(ConfigurationError) in try Host(parsing: text) } ?? .test
            }
            let root = try host.root(for: scheme)
            let production =
                host == .production || value("KASPI_ENV").map { (try? Host(parsing: $0)) == .production } == true
                || (scheme == .r1 && value("KASPI_QR_API_KEY")?.hasPrefix("prod_") == true)
            try CredentialDestination.check(root, production: production, requiresTLS: scheme != .r1, trusted: value("KASPI_TRUSTED_HOST"))
            switch scheme {
            case .r1:
                guard let key = value("KASPI_QR_API_KEY") else { throw .missingVariable("KASPI_QR_API_KEY") }
                apiKey = try APIKey(key)
            case .r2, .r3:
                let ca = value("KASPI_QR_CA_BUNDLE")
                if let p12 = value("KASPI_QR_PKCS12") {
                    guard let password = environment["KASPI_QR_PKCS12_PASSWORD"] else { throw .missingVariable("KASPI_QR_PKCS12_PASSWORD") }
                    certificates = CertificateFiles(identity: .pkcs12(path: p12, password: password), caBundlePath: ca)
                } else {
                    guard let cert = value("KASPI_QR_CERT") else { throw .missingVariable("KASPI_QR_CERT") }
                    guard let key = value("KASPI_QR_KEY") else { throw .missingVariable("KASPI_QR_KEY") }
                    certificates = CertificateFiles(identity: .pem(certificatePath: cert, keyPath: key), caBundlePath: ca)
                }
                if scheme == .r3 {
                    guard let bin = value("KASPI_QR_ORGANIZATION_BIN") else { throw .missingVariable("KASPI_QR_ORGANIZATION_BIN") }
                    organizationBin = try OrganizationBIN(bin)
                }
            }
            proxy = try Proxy.fromEnvironment(environment, for: root.host ?? "")
            if let token = value("KASPI_QR_DEVICE_TOKEN") {
                do { deviceToken = try DeviceToken(token) } catch { throw .invalidDeviceToken(variable: "KASPI_QR_DEVICE_TOKEN") }
            }
        }
    }
}
