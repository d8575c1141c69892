import Foundation
import KaspiPay

/// The Kaspi QR API side of the sandbox: organizations with their trade points, timings,
/// and the TLS ports that r2 and r3 need.
///
/// Keys (all optional): `organizations` (each `bin`, `name`, `apiKey`, `tradePoints` with
/// `id`, `name`, `enabled`, `acceptsQr`), `statusPollingInterval`, `qrCodeScanWaitTimeout`,
/// `linkActivationWaitTimeout`, `paymentConfirmationTimeout`, `returnPollingInterval`,
/// `returnScanWaitTimeout`, `remoteInvoiceLifetime`, `remoteStatusMinInterval`,
/// `clientInfoPerMinute`, `linkBase`, `tlsPorts`, `certificatesDirectory`, `r3AllowedIps`.
public struct SandboxQRAPIConfiguration: Sendable, Codable, Hashable {
    /// A trade point of an organization.
    public struct TradePoint: Sendable, Codable, Hashable {
        /// Kaspi's number for it.
        public var id: Int64
        /// Its name, as the payer sees it.
        public var name: String
        /// A disabled trade point answers 990000018.
        public var enabled: Bool = true
        /// One that does not take QR payments answers 990000026.
        public var acceptsQR: Bool = true

        /// Creates a trade point.
        public init(id: Int64, name: String, enabled: Bool = true, acceptsQR: Bool = true) {
            self.id = id
            self.name = name
            self.enabled = enabled
            self.acceptsQR = acceptsQR
        }

        enum CodingKeys: String, CodingKey {
            case id, name, enabled
            case acceptsQR = "acceptsQr"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(Int64.self, forKey: .id)
            name = try container.decodeIfPresent(String.self, forKey: .name) ?? "Trade point \(id)"
            enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
            acceptsQR = try container.decodeIfPresent(Bool.self, forKey: .acceptsQR) ?? true
        }
    }

    /// An organization (a merchant), known by its BIN.
    public struct Organization: Sendable, Codable, Hashable {
        /// 12 digits.
        public var bin: String
        /// The organization's name, on the payment page.
        public var name: String
        /// The r1 `Api-Key`.
        public var apiKey: String
        /// Its trade points.
        public var tradePoints: [TradePoint]

        /// Creates an organization.
        public init(bin: String, name: String, apiKey: String, tradePoints: [TradePoint]) {
            self.bin = bin
            self.name = name
            self.apiKey = apiKey
            self.tradePoints = tradePoints
        }
    }

    /// The organizations the sandbox knows; test ones by default.
    public var organizations: [Organization] = Self.defaultOrganizations
    /// `StatusPollingInterval`, seconds.
    public var statusPollingInterval: Int = 5
    /// `QrCodeScanWaitTimeout`, seconds from creation.
    public var qrCodeScanWaitTimeout: Int = 180
    /// `LinkActivationWaitTimeout`, seconds from creation.
    public var linkActivationWaitTimeout: Int = 180
    /// `PaymentConfirmationTimeout`, seconds from the first `Wait`.
    public var paymentConfirmationTimeout: Int = 65
    /// `QrReturnBehaviorOptions`: polling interval and scan timeout, seconds.
    public var returnPollingInterval: Int = 5
    /// Seconds the customer has to scan an r2 return QR.
    public var returnScanWaitTimeout: Int = 180
    /// How long a remote invoice can be paid, seconds (24 hours).
    public var remoteInvoiceLifetime: Int = 86_400
    /// Status reads of one remote invoice closer than this many seconds are refused, as
    /// Kaspi's anti-abuse refuses timer-driven reads.
    public var remoteStatusMinInterval: Double = 10
    /// `remote/client-info` calls a minute per device.
    public var clientInfoPerMinute: Int = 50
    /// Where payment links point: `{linkBase}/pay/<41 digits>`. Nil: the sandbox's own URL,
    /// so links open the sandbox's payment page. `https://pay.kaspi.kz` makes them look real.
    public var linkBase: String?
    /// TLS ports serving the QR API (all three schemes); r2 and r3 need them. Empty: none.
    /// Kaspi's test host uses 8543, 8544, 8545.
    public var tlsPorts: [Int] = []
    /// Where the CA, the server certificate and the client certificate live (see
    /// `kaspi sandbox certs`); created there on first start when missing.
    public var certificatesDirectory: String?
    /// r3's IP allow-list; empty allows every address.
    public var r3AllowedIPs: [String] = []
    /// Refuse, in the TLS handshake itself, a client certificate the sandbox's CA did not
    /// issue or that has expired (a TLS alert), as a TLS-terminating front does; by default
    /// the handshake accepts any and the API answers `-10000`, as Kaspi documents.
    public var verifyClientCertificates = false

    /// The defaults: Kaspi's timings and the test organizations.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case organizations, statusPollingInterval, qrCodeScanWaitTimeout, linkActivationWaitTimeout, paymentConfirmationTimeout,
            returnPollingInterval, returnScanWaitTimeout, remoteInvoiceLifetime, remoteStatusMinInterval, clientInfoPerMinute,
            linkBase, tlsPorts, certificatesDirectory, verifyClientCertificates
        case r3AllowedIPs = "r3AllowedIps"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SandboxQRAPIConfiguration()
        organizations = try c.decodeIfPresent([Organization].self, forKey: .organizations) ?? d.organizations
        statusPollingInterval = try c.decodeIfPresent(Int.self, forKey: .statusPollingInterval) ?? d.statusPollingInterval
        qrCodeScanWaitTimeout = try c.decodeIfPresent(Int.self, forKey: .qrCodeScanWaitTimeout) ?? d.qrCodeScanWaitTimeout
        linkActivationWaitTimeout = try c.decodeIfPresent(Int.self, forKey: .linkActivationWaitTimeout) ?? d.linkActivationWaitTimeout
        paymentConfirmationTimeout = try c.decodeIfPresent(Int.self, forKey: .paymentConfirmationTimeout) ?? d.paymentConfirmationTimeout
        returnPollingInterval = try c.decodeIfPresent(Int.self, forKey: .returnPollingInterval) ?? d.returnPollingInterval
        returnScanWaitTimeout = try c.decodeIfPresent(Int.self, forKey: .returnScanWaitTimeout) ?? d.returnScanWaitTimeout
        remoteInvoiceLifetime = try c.decodeIfPresent(Int.self, forKey: .remoteInvoiceLifetime) ?? d.remoteInvoiceLifetime
        remoteStatusMinInterval = try c.decodeIfPresent(Double.self, forKey: .remoteStatusMinInterval) ?? d.remoteStatusMinInterval
        clientInfoPerMinute = try c.decodeIfPresent(Int.self, forKey: .clientInfoPerMinute) ?? d.clientInfoPerMinute
        linkBase = try c.decodeIfPresent(String.self, forKey: .linkBase)
        tlsPorts = try c.decodeIfPresent([Int].self, forKey: .tlsPorts) ?? []
        certificatesDirectory = try c.decodeIfPresent(String.self, forKey: .certificatesDirectory)
        r3AllowedIPs = try c.decodeIfPresent([String].self, forKey: .r3AllowedIPs) ?? []
        verifyClientCertificates = try c.decodeIfPresent(Bool.self, forKey: .verifyClientCertificates) ?? false
    }

    /// The default organizations: one with three trade points (one open, one disabled, one
    /// without QR), a second one for r3's several organizations, and one with no trade points.
    public static let defaultOrganizations: [Organization] = [
        Organization(
            bin: "123456789012", name: "KaspiKit Sandbox LLP", apiKey: "test_0f8fad5b-d9cb-469f-a165-70867728950e",
            tradePoints: [
                TradePoint(id: 19, name: "Sandbox Shop (Abay 1)"),
                TradePoint(id: 20, name: "Closed Shop (Abay 2)", enabled: false),
                TradePoint(id: 21, name: "Cash Only Shop (Abay 3)", acceptsQR: false),
            ]),
        Organization(
            bin: "987654321098", name: "KaspiKit Second LLP", apiKey: "test_7c9e6679-7425-40de-944b-e07fc1f90ae7",
            tradePoints: [TradePoint(id: 104039, name: "Second Shop (Dostyk 5)")]),
        Organization(bin: "000000000001", name: "Empty LLP", apiKey: "test_e4eaaaf2-d142-11e1-b3e4-080027620cdd", tradePoints: []),
    ]

    /// Checks every value, naming the first problem.
    public func validate() throws(SandboxConfigurationError) {
        var bins = Set<String>()
        var keys = Set<String>()
        var points = Set<Int64>()
        for org in organizations {
            guard (try? KaspiQRAPI.OrganizationBIN(org.bin)) != nil else { throw .invalid("qrApi.organizations.bin", "\(org.bin) is not 12 digits") }
            guard bins.insert(org.bin).inserted else { throw .invalid("qrApi.organizations.bin", "\(org.bin) appears twice") }
            guard (try? APIKey(org.apiKey)) != nil, keys.insert(org.apiKey).inserted else {
                throw .invalid("qrApi.organizations[\(org.bin)].apiKey", "is malformed or shared with another organization")
            }
            for point in org.tradePoints {
                guard point.id > 0, points.insert(point.id).inserted else {
                    throw .invalid("qrApi.organizations[\(org.bin)].tradePoints.id", "\(point.id) is not positive or appears twice")
                }
            }
        }
        for (name, value) in [
            ("statusPollingInterval", statusPollingInterval), ("qrCodeScanWaitTimeout", qrCodeScanWaitTimeout),
            ("linkActivationWaitTimeout", linkActivationWaitTimeout), ("paymentConfirmationTimeout", paymentConfirmationTimeout),
            ("returnPollingInterval", returnPollingInterval), ("returnScanWaitTimeout", returnScanWaitTimeout),
            ("remoteInvoiceLifetime", remoteInvoiceLifetime), ("clientInfoPerMinute", clientInfoPerMinute),
        ] where !(1...1_000_000).contains(value) {
            throw .invalid("qrApi.\(name)", "must be between 1 and 1000000")
        }
        guard remoteStatusMinInterval >= 0, remoteStatusMinInterval <= 3600 else {
            throw .invalid("qrApi.remoteStatusMinInterval", "must be between 0 and 3600 seconds")
        }
        if let linkBase, (try? KaspiEnvironment.custom(parsing: linkBase)) == nil {
            throw .invalid("qrApi.linkBase", "must be an absolute http(s) URL")
        }
        guard tlsPorts.allSatisfy({ (0...65535).contains($0) }), tlsPorts.count <= 8 else {
            throw .invalid("qrApi.tlsPorts", "must be at most 8 ports between 0 and 65535")
        }
        if !tlsPorts.isEmpty, certificatesDirectory == nil {
            throw .invalid("qrApi.certificatesDirectory", "is required with tlsPorts")
        }
    }
}
