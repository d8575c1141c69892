import Foundation
import KaspiPay
import KaspiPayAsyncHTTPClient

/// The Kaspi QR API's client certificate (r2, r3) and when it stops being valid: Kaspi refuses
/// an expired one, and every payment stops with it. The gateway logs the date at start, shows
/// a banner on the dashboard in the last ``warningWindow``, exports the seconds left as
/// `kaspi_gateway_client_certificate_expiry_seconds`, and `kaspi gateway check` warns.
public struct ClientCertificate: Sendable, Hashable {
    /// The file it was read from (a PEM certificate or a PKCS#12 file).
    public var path: String
    /// The end of its validity.
    public var notValidAfter: Date

    /// How long before the end warnings start: 30 days.
    public static let warningWindow: TimeInterval = 30 * 86_400

    /// A certificate read elsewhere.
    public init(path: String, notValidAfter: Date) {
        self.path = path
        self.notValidAfter = notValidAfter
    }

    /// The client certificate of the settings, or nil on r1 (no certificate).
    ///
    /// - Throws: ``KaspiPay/ConfigurationError/unreadableFile(variable:path:)``.
    public static func read(_ settings: KaspiQRAPI.Settings) throws(ConfigurationError) -> ClientCertificate? {
        guard let files = settings.certificates, let found = try KaspiTLSSettings(files).clientCertificateExpiry() else { return nil }
        return ClientCertificate(path: found.path, notValidAfter: found.notValidAfter)
    }

    /// Seconds left at `now`; negative once it has expired.
    public func secondsLeft(at now: Date) -> TimeInterval { notValidAfter.timeIntervalSince(now) }

    /// Whole days left at `now` (rounded down; negative once expired).
    public func daysLeft(at now: Date) -> Int { Int((secondsLeft(at: now) / 86_400).rounded(.down)) }

    /// Whether `now` is inside the warning window or past the end.
    public func needsRenewal(at now: Date) -> Bool { secondsLeft(at: now) <= Self.warningWindow }

    /// One line for people: when it ends and what to do, stronger inside the window.
    public func summary(at now: Date) -> String {
        let date = Self.dateText(notValidAfter)
        let left = secondsLeft(at: now)
        if left <= 0 {
            return "The client certificate \(path) expired on \(date): Kaspi refuses it. Ask Kaspi for a new one and restart the gateway with it."
        }
        let days = daysLeft(at: now)
        let when = days == 0 ? "in less than a day" : days == 1 ? "in 1 day" : "in \(days) days"
        if needsRenewal(at: now) {
            return
                "The client certificate \(path) expires \(when), on \(date): ask Kaspi for a new one before then (docs/deploy.md, \"Certificate renewal\")."
        }
        return "The client certificate \(path) is valid until \(date) (\(days) days)."
    }

    static func dateText(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: date)
    }
}
