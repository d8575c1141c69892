import Foundation
import KaspiCheckout
import Testing

/// The button's and the QR view's words, looked up through the package's resources as the
/// views do, on Linux as on iOS.
@Suite struct CheckoutStringsTests {
    @Test func eachLanguageHasEveryWordFromItsOwnTable() {
        let expected: [String: [CheckoutStrings.Key: String]] = [
            "kk": [.payWithKaspi: "Kaspi арқылы төлеу", .waitingForKaspi: "Kaspi күтілуде…"],
            "ru": [.payWithKaspi: "Оплатить через Kaspi", .waitingForKaspi: "Ждём Kaspi…"],
            "en": [.payWithKaspi: "Pay with Kaspi", .waitingForKaspi: "Waiting for Kaspi…"],
        ]
        for (language, words) in expected {
            for (key, text) in words { #expect(CheckoutStrings.text(key, locale: Locale(identifier: language)) == text) }
        }
        // Every key, in every language, is a text of its own (no key shown, no English left over).
        for key in CheckoutStrings.Key.allCases {
            let texts = CheckoutStrings.languages.map { CheckoutStrings.text(key, locale: Locale(identifier: $0)) }
            #expect(texts.allSatisfy { !$0.isEmpty && $0 != key.rawValue }, "\(key): \(texts)")
            #expect(Set(texts).count == 3, "\(key) is the same in two languages: \(texts)")
        }
    }

    @Test func theAppsLocaleChoosesAndAnyOtherIsEnglish() {
        #expect(CheckoutStrings.language(for: Locale(identifier: "kk_KZ")) == "kk")
        #expect(CheckoutStrings.language(for: Locale(identifier: "ru-RU")) == "ru")
        #expect(CheckoutStrings.language(for: Locale(identifier: "ru_KZ")) == "ru")
        #expect(CheckoutStrings.language(for: Locale(identifier: "de_DE")) == "en")
        #expect(CheckoutStrings.text(.qrCode, locale: Locale(identifier: "fr_FR")) == CheckoutStrings.text(.qrCode, locale: Locale(identifier: "en")))
        #expect(CheckoutStrings.text(.qrCode, locale: Locale(identifier: "kk_KZ")).contains("Kaspi QR"))
    }
}
