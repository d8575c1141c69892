import Foundation

/// The words of ``KaspiPayButton`` and ``KaspiQRCodeView`` in Kazakh, Russian and English,
/// from the package's resources (`Resources/<language>.lproj/Localizable.strings`), chosen by
/// the app's locale: a Kazakh or Russian locale gets its language, any other English.
public enum CheckoutStrings {
    /// A text the views show or say.
    public enum Key: String, Sendable, CaseIterable {
        /// The button's title.
        case payWithKaspi = "pay_with_kaspi"
        /// The button's title while the payment runs.
        case waitingForKaspi = "waiting_for_kaspi"
        /// The button's accessibility hint: what pressing it does.
        case payHint = "pay_hint"
        /// The QR view's accessibility label.
        case qrCode = "qr_code"
    }

    /// The languages the views speak, as `.lproj` folder names.
    public static let languages = ["kk", "ru", "en"]

    /// The language of `locale` the views speak: `kk`, `ru`, else `en`.
    public static func language(for locale: Locale) -> String {
        let code = locale.language.languageCode?.identifier ?? locale.identifier
        let primary = code.prefix(while: { $0 != "-" && $0 != "_" }).lowercased()
        return languages.contains(primary) ? primary : "en"
    }

    /// `key`'s text in `locale`'s language (English when the resources lack it).
    public static func text(_ key: Key, locale: Locale = .current) -> String {
        for language in [language(for: locale), "en"] {
            guard let path = Bundle.module.path(forResource: language, ofType: "lproj"), let bundle = Bundle(path: path) else { continue }
            let text = bundle.localizedString(forKey: key.rawValue, value: "\u{0}", table: "Localizable")
            if text != "\u{0}" && text != key.rawValue { return text }
        }
        return key.rawValue
    }
}
