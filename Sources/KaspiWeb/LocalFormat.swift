import Foundation

/// Money and times as payers in Kazakhstan read them, per page language: amounts in ICU's
/// `kk_KZ`, `ru_KZ` and `en_KZ` formats (`15 000 ₸`, grouped with no-break spaces in all
/// three), times in Kazakhstan's time zone with the zone written out.
package enum LocalFormat {
    /// Kazakhstan's time zone (one zone, UTC+5, since March 2024).
    package static let timeZone = TimeZone(identifier: "Asia/Almaty") ?? TimeZone(secondsFromGMT: 5 * 3600) ?? .gmt

    /// Whole tenge: `15 000 ₸`, with no-break spaces.
    package static func tenge(_ amount: Int, _ language: PageLanguage) -> String {
        let formatter = NumberFormatter()
        formatter.locale = language.locale
        formatter.numberStyle = .decimal
        formatter.usesGroupingSeparator = true
        formatter.maximumFractionDigits = 0
        let digits = formatter.string(from: NSNumber(value: amount)) ?? String(amount)
        // The sign follows the number with a no-break space, as Kaspi writes it in every language.
        return digits + "\u{00A0}₸"
    }

    /// A moment on a payer's page or the dashboard: the date and time in Kazakhstan, and the
    /// zone (`2 декабря 2026 г., 15:04 (UTC+5)`).
    package static func time(_ date: Date, _ language: PageLanguage) -> String {
        kazakhstan(date, language, "dMMMMyyyyHHmm") + " (\(zoneName(at: date)))"
    }

    /// A short moment for tables: `02.12.2026 15:04` (ru, kk), `02/12/2026 15:04` (en), in
    /// Kazakhstan's time.
    package static func shortTime(_ date: Date, _ language: PageLanguage) -> String { kazakhstan(date, language, "ddMMyyyyHHmm") }

    /// A moment to the second, for timelines: `02.12.2026 15:04:05` (ru, kk), in Kazakhstan's time.
    package static func preciseTime(_ date: Date, _ language: PageLanguage) -> String { kazakhstan(date, language, "ddMMyyyyHHmmss") }

    /// `date` in Kazakhstan's time, in `language`'s order for the ICU skeleton `template`.
    private static func kazakhstan(_ date: Date, _ language: PageLanguage, _ template: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = language.locale
        formatter.timeZone = timeZone
        formatter.setLocalizedDateFormatFromTemplate(template)
        return formatter.string(from: date)
    }

    /// `UTC+5`: the zone's offset at that moment.
    package static func zoneName(at date: Date) -> String {
        let seconds = timeZone.secondsFromGMT(for: date)
        let hours = seconds / 3600
        let minutes = abs(seconds % 3600) / 60
        let sign = seconds < 0 ? "-" : "+"
        return minutes == 0 ? "UTC\(sign)\(abs(hours))" : String(format: "UTC%@%d:%02d", sign, abs(hours), minutes)
    }
}
