#if canImport(SwiftUI)
import SwiftUI

/// "Pay with Kaspi": opens the session's payment and reports the outcome the gateway confirms.
/// It passes the app's deep links and its return to the foreground to the session. All logic
/// is in ``CheckoutSession``.
@available(iOS 16.0, macOS 13.0, *)
public struct KaspiPayButton: View {
    let session: CheckoutSession
    let onOutcome: @MainActor (Result<CheckoutOutcome, any Error>) -> Void
    @State private var running = false
    @Environment(\.scenePhase) private var scenePhase
    @Environment(\.locale) private var locale

    /// A button that runs `session` and calls `onOutcome` with its outcome or error.
    public init(session: CheckoutSession, onOutcome: @escaping @MainActor (Result<CheckoutOutcome, any Error>) -> Void) {
        self.session = session
        self.onOutcome = onOutcome
    }

    public var body: some View {
        Button {
            guard !running else { return }
            running = true
            Task { @MainActor in
                let outcome: Result<CheckoutOutcome, any Error>
                do {
                    try await session.open()
                    outcome = .success(try await session.result())
                } catch {
                    outcome = .failure(error)
                }
                running = false
                onOutcome(outcome)
            }
        } label: {
            HStack(spacing: 8) {
                if running { ProgressView() }
                Text(CheckoutStrings.text(running ? .waitingForKaspi : .payWithKaspi, locale: locale)).bold()
            }
            .frame(maxWidth: .infinity, minHeight: 44)
        }
        .buttonStyle(.borderedProminent)
        .tint(Color(red: 0.94, green: 0.22, blue: 0.20))
        .disabled(running)
        .accessibilityHint(Text(CheckoutStrings.text(.payHint, locale: locale)))
        .onOpenURL { url in _ = session.handle(url: url) }
        // Back in the foreground while a payment runs: the payer is back (no deprecated
        // onChange, so that the layer builds without warnings from iOS 16 to now).
        .task(id: scenePhase) {
            if scenePhase == .active, running { session.payerReturned() }
        }
    }
}

/// A QR order's code, drawn with our own encoder, for tablets and points of sale.
@available(iOS 16.0, macOS 13.0, *)
public struct KaspiQRCodeView: View {
    let code: CheckoutQRCode?
    @Environment(\.locale) private var locale

    /// The code of `token` (the order's `qrToken`); an empty view when it cannot be encoded.
    public init(token: String) {
        self.code = try? CheckoutQRCode(token: token)
    }

    public var body: some View {
        Canvas { context, size in
            guard let code else { return }
            let side = min(size.width, size.height)
            let module = side / CGFloat(code.size)
            context.fill(Path(CGRect(x: 0, y: 0, width: side, height: side)), with: .color(.white))
            var dark = Path()
            for y in 0..<code.size {
                for x in 0..<code.size where code.isDark(x: x, y: y) {
                    dark.addRect(CGRect(x: CGFloat(x) * module, y: CGFloat(y) * module, width: module, height: module))
                }
            }
            context.fill(dark, with: .color(.black))
        }
        .aspectRatio(1, contentMode: .fit)
        .accessibilityLabel(Text(CheckoutStrings.text(.qrCode, locale: locale)))
    }
}
#endif
