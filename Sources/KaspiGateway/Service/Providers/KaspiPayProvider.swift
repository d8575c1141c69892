import Foundation
import KaspiGatewayStore
import KaspiPay

/// The guide's Kaspi Pay API, through the SDK (its retries, recovery and rate limiter).
public struct KaspiPayProvider: PaymentProvider, WebhookCapability, DirectRefundCapability {
    /// `kaspi-pay`, stored with every order it creates.
    public let name = "kaspi-pay"
    /// The guide's API posts webhooks and refunds through the API.
    public var capabilities: ProviderCapabilities { ProviderCapabilities(webhooks: self, directRefunds: self) }
    let client: KaspiClient
    let verifier: WebhookVerifier

    /// Creates the provider over an SDK client; webhooks are verified with the client's key.
    public init(client: KaspiClient) {
        self.client = client
        self.verifier = WebhookVerifier(apiKey: client.configuration.apiKey)
    }

    static func map(_ error: KaspiError) -> ProviderError {
        var message = error.description
        if let colon = message.firstIndex(of: ":") { message = String(message[message.index(after: colon)...]).trimmingCharacters(in: .whitespaces) }
        switch error {
        case .timeout, .transport, .createOutcomeUnknown, .refundOutcomeUnknown:
            return ProviderError(code: error.code, message: message, ambiguous: true)
        case .unexpectedStatus(let status, _) where status >= 500:
            return ProviderError(code: error.code, message: message, ambiguous: true)
        case .orderNotFound:
            return ProviderError(code: error.code, message: message, notFound: true)
        default:
            return ProviderError(code: error.code, message: message, ambiguous: error.isTransient)
        }
    }

    private func newOrder(_ request: ProviderPaymentRequest) throws(ProviderError) -> (Amount, OrderID) {
        do {
            return (try Amount(tenge: request.amount), try OrderID(request.providerOrderID))
        } catch {
            throw Self.map(error)
        }
    }

    /// Creates an order with the guide's API and returns its payment URL.
    public func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        let (amount, orderID) = try newOrder(request)
        do {
            let created = try await client.orders.create(
                NewOrder(amount: amount, orderID: orderID, returnURL: request.returnURL, failURL: request.failURL, description: request.description),
                resuming: request.resuming)
            return ProviderPayment(paymentURL: created.paymentURL.absoluteString)
        } catch {
            throw Self.map(error)
        }
    }

    /// Creates a QR payment with the guide's API.
    public func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        let (amount, orderID) = try newOrder(request)
        do {
            let qr = try await client.qr.create(amount: amount, orderID: orderID, resuming: request.resuming)
            return ProviderQR(token: qr.token, png: qr.png)
        } catch {
            throw Self.map(error)
        }
    }

    /// Reads an order's status with the guide's API.
    public func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        do {
            let orderID = try OrderID(order.providerOrderID)
            let status = try await client.orders.status(of: orderID)
            return ProviderStatus(report: status.status, transactionID: status.transactionID, refundedAmount: status.refundedAmount?.tenge)
        } catch {
            throw Self.map(error)
        }
    }

    /// Refunds part or all of an order with the guide's API.
    public func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        do {
            let refund = try await client.refunds.create(
                orderID: try OrderID(order.providerOrderID), amount: try Amount(tenge: amount), transactionID: order.transactionID)
            return ProviderRefund(refundID: refund.refundID ?? GatewayID.make("rf"))
        } catch {
            throw Self.map(error)
        }
    }

    /// Verifies a webhook's signature and reads it.
    public func readWebhook(_ body: [UInt8]) throws(ProviderError) -> ProviderWebhook {
        do {
            let event = try verifier.verify(body: body)
            return ProviderWebhook(
                providerOrderID: event.orderID.rawValue, amount: event.amount.tenge, report: event.status,
                transactionID: event.transactionID)
        } catch {
            var message = error.description
            if let colon = message.firstIndex(of: ":") {
                message = String(message[message.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            }
            throw ProviderError(code: error.code, message: message)
        }
    }
}
