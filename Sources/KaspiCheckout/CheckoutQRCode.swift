import QRCodeEncoder

/// The modules of a QR order's code, for a view to draw: our own encoder (byte mode, level M),
/// with the quiet zone the standard asks for around it.
public struct CheckoutQRCode: Sendable, Hashable {
    /// Modules per side, the quiet zone included.
    public let size: Int
    private let code: QRCode
    private let border: Int

    /// Encodes `token` (the order's `qrToken`).
    ///
    /// - Parameter border: the quiet zone, in modules (the standard's is 4).
    /// - Throws: when the token is too long for a QR code.
    public init(token: String, border: Int = 4) throws {
        self.code = try QRCode(encoding: token)
        self.border = max(0, border)
        self.size = code.size + 2 * self.border
    }

    /// Whether the module at column `x`, row `y` is dark; the quiet zone and anything outside
    /// are light.
    public func isDark(x: Int, y: Int) -> Bool {
        let (column, row) = (x - border, y - border)
        guard column >= 0, row >= 0, column < code.size, row < code.size else { return false }
        return code[column, row]
    }
}
