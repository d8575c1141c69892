import Foundation

/// Why a checkout session could not go on.
public enum CheckoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The gateway knows no order with this id and client secret (`CHECKOUT_NOT_FOUND`): the
    /// secret is wrong, or the order belongs to another gateway.
    case checkoutNotFound
    /// The gateway could not be reached, or did not answer: `reason` says how. Asked again
    /// by ``CheckoutSession/result(progress:)`` until the order's deadline.
    case unreachable(reason: String)
    /// The gateway answered with an error: its status, code and message.
    case gateway(status: Int, code: String, message: String, retryAfter: Int?)
    /// The gateway's answer could not be read.
    case invalidAnswer(reason: String)
    /// The order has no payment URL to open (a QR order, or a final one): show its QR code or
    /// its outcome instead.
    case nothingToOpen(state: CheckoutOrder.State)
    /// The system could not open the payment URL.
    case couldNotOpen
    /// The gateway's URL is `http://` to another machine: the client secret would cross the
    /// network in the clear. Use `https://` (`http://` to this machine is allowed, for tests).
    case insecureGateway(URL)

    /// Whether asking again later may succeed.
    public var isTransient: Bool {
        switch self {
        case .unreachable: true
        case .gateway(let status, _, _, _): status == 429 || status >= 500
        case .checkoutNotFound, .invalidAnswer, .nothingToOpen, .couldNotOpen, .insecureGateway: false
        }
    }

    /// The seconds the gateway asked to wait (`Retry-After`), if it did.
    public var retryAfter: Int? {
        if case .gateway(_, _, _, let retryAfter) = self { return retryAfter }
        return nil
    }

    /// A sentence for a log (never the client secret).
    public var description: String {
        switch self {
        case .checkoutNotFound: "The gateway knows no checkout with this order id and client secret."
        case .unreachable(let reason): "The gateway could not be reached: \(reason)"
        case .gateway(let status, let code, let message, _): "The gateway answered \(status) \(code): \(message)"
        case .invalidAnswer(let reason): "The gateway's answer could not be read: \(reason)"
        case .nothingToOpen(let state): "The order (\(state)) has no payment URL to open."
        case .couldNotOpen: "The system could not open the payment URL."
        case .insecureGateway(let url):
            "The gateway's URL \(url.absoluteString) is not https://: the client secret would cross the network in the clear."
        }
    }
}
