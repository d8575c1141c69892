import Foundation

#if canImport(UIKit)
import UIKit
#elseif canImport(AppKit)
import AppKit
#endif

/// Where a payment URL was opened.
public enum OpenResult: Sendable, Hashable {
    /// The Kaspi app took it (a universal link).
    case kaspiApp
    /// The browser took it: the Kaspi app is not installed, or not on this device.
    case browser
    /// Nothing could open it.
    case failed
}

/// Hands a payment URL to the system, outside the app and never in a web view: Kaspi's pages
/// must not run where the app could read them. Tests inject one that plays the payer.
public protocol PaymentOpener: Sendable {
    /// Opens `url` and says where.
    func open(_ url: URL) async -> OpenResult
}

/// The system's opener: on iOS the Kaspi app when it is installed (a universal link), else the
/// browser; on macOS the default browser; elsewhere nothing (``OpenResult/failed``).
public struct SystemPaymentOpener: PaymentOpener {
    /// The system opener.
    public init() {}

    public func open(_ url: URL) async -> OpenResult {
        #if canImport(UIKit) && !os(watchOS)
        return await Self.openOnMain(url)
        #elseif canImport(AppKit)
        return await MainActor.run { NSWorkspace.shared.open(url) } ? .browser : .failed
        #else
        return .failed
        #endif
    }

    #if canImport(UIKit) && !os(watchOS)
    /// The Kaspi app first (universal links only), then the browser.
    @MainActor
    private static func openOnMain(_ url: URL) async -> OpenResult {
        let application = UIApplication.shared
        if await application.open(url, options: [.universalLinksOnly: true]) { return .kaspiApp }
        return await application.open(url, options: [:]) ? .browser : .failed
    }
    #endif
}
