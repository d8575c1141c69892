import Foundation

extension KaspiQRAPI {
    /// A client of a scheme chosen at run time (from configuration). The calls every scheme
    /// offers forward to the typed client; the scheme's own calls are reached by matching the
    /// case, so that what a scheme lacks still cannot be called on it.
    public enum AnyClient: Sendable {
        case r1(KaspiQRAPI.Client<KaspiQRAPI.R1>)
        case r2(KaspiQRAPI.Client<KaspiQRAPI.R2>)
        case r3(KaspiQRAPI.Client<KaspiQRAPI.R3>)

        /// The scheme.
        public var scheme: SchemeName {
            switch self {
            case .r1: .r1
            case .r2: .r2
            case .r3: .r3
            }
        }

        /// The organization an r3 client acts for.
        public var organizationBin: OrganizationBIN? {
            if case .r3(let c) = self { return c.organizationBin }
            return nil
        }

        /// The same client acting for another organization (r3; the others are returned as they are).
        public func acting(for bin: OrganizationBIN?) -> AnyClient {
            guard let bin, case .r3(let c) = self else { return self }
            return .r3(c.acting(for: bin))
        }

        /// `payment/details`, on r2 and r3.
        ///
        /// - Throws: ``APIError/invalidRequest(_:)`` on r1, which has no such call.
        public func paymentDetails(paymentID: Int64, device: DeviceToken) async throws(APIError) -> PaymentDetails {
            switch self {
            case .r1: throw .invalidRequest("payment/details exists on r2 and r3 only")
            case .r2(let c): try await c.paymentDetails(paymentID: paymentID, device: device)
            case .r3(let c): try await c.paymentDetails(paymentID: paymentID, device: device)
            }
        }

        /// Plays the payer on Kaspi's test host (`test/payment/...`), on any scheme.
        public func simulate(_ action: Client<R1>.TestAction, paymentID: Int64) async throws(APIError) {
            switch self {
            case .r1(let c): try await c.simulate(action, paymentID: paymentID)
            case .r2(let c): try await c.simulate(.init(rawValue: action.rawValue) ?? .scan, paymentID: paymentID)
            case .r3(let c): try await c.simulate(.init(rawValue: action.rawValue) ?? .scan, paymentID: paymentID)
            }
        }

        /// `health/ping` with this scheme's client.
        public func ping() async throws(KaspiQRAPI.APIError) {
            switch self {
            case .r1(let c): try await c.ping()
            case .r2(let c): try await c.ping()
            case .r3(let c): try await c.ping()
            }
        }

        /// The organization's trade points, with this scheme's client.
        public func tradePoints() async throws(KaspiQRAPI.APIError) -> [KaspiQRAPI.TradePoint] {
            switch self {
            case .r1(let c): try await c.tradePoints()
            case .r2(let c): try await c.tradePoints()
            case .r3(let c): try await c.tradePoints()
            }
        }

        /// Registers a device, with this scheme's client.
        public func registerDevice(id: String, tradePointID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.DeviceToken {
            switch self {
            case .r1(let c): try await c.registerDevice(id: id, tradePointID: tradePointID)
            case .r2(let c): try await c.registerDevice(id: id, tradePointID: tradePointID)
            case .r3(let c): try await c.registerDevice(id: id, tradePointID: tradePointID)
            }
        }

        /// Deletes a device, with this scheme's client.
        public func deleteDevice(_ token: KaspiQRAPI.DeviceToken) async throws(KaspiQRAPI.APIError) {
            switch self {
            case .r1(let c): try await c.deleteDevice(token)
            case .r2(let c): try await c.deleteDevice(token)
            case .r3(let c): try await c.deleteDevice(token)
            }
        }

        /// Creates a QR purchase, with this scheme's client.
        public func createQR(
            device: KaspiQRAPI.DeviceToken, amount: Decimal, externalID: String?
        ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.QRPurchase {
            switch self {
            case .r1(let c): try await c.createQR(device: device, amount: amount, externalID: externalID)
            case .r2(let c): try await c.createQR(device: device, amount: amount, externalID: externalID)
            case .r3(let c): try await c.createQR(device: device, amount: amount, externalID: externalID)
            }
        }

        /// Creates a payment link, with this scheme's client.
        public func createLink(
            device: KaspiQRAPI.DeviceToken, amount: Decimal, externalID: String?
        ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.LinkPurchase {
            switch self {
            case .r1(let c): try await c.createLink(device: device, amount: amount, externalID: externalID)
            case .r2(let c): try await c.createLink(device: device, amount: amount, externalID: externalID)
            case .r3(let c): try await c.createLink(device: device, amount: amount, externalID: externalID)
            }
        }

        /// A purchase's status (v02, falling back to v01), with this scheme's client.
        public func status(paymentID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentStatusDetails {
            switch self {
            case .r1(let c): try await c.status(paymentID: paymentID)
            case .r2(let c): try await c.status(paymentID: paymentID)
            case .r3(let c): try await c.status(paymentID: paymentID)
            }
        }

        /// A purchase's status from v01 only, with this scheme's client.
        public func statusV01(paymentID: Int64) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentStatusDetails {
            switch self {
            case .r1(let c): try await c.statusV01(paymentID: paymentID)
            case .r2(let c): try await c.statusV01(paymentID: paymentID)
            case .r3(let c): try await c.statusV01(paymentID: paymentID)
            }
        }

        /// Waits for a purchase's outcome at Kaspi's interval and deadlines, with this scheme's client.
        public func waitForPayment(
            _ purchase: some KaspiQRAPI.PollablePurchase, elapsedSinceCreation: Duration = .zero,
            progress: (@Sendable (KaspiQRAPI.PollProgress) async -> Void)?
        ) async throws(KaspiQRAPI.APIError) -> KaspiQRAPI.PaymentOutcome {
            switch self {
            case .r1(let c): try await c.waitForPayment(purchase, elapsedSinceCreation: elapsedSinceCreation, progress: progress)
            case .r2(let c): try await c.waitForPayment(purchase, elapsedSinceCreation: elapsedSinceCreation, progress: progress)
            case .r3(let c): try await c.waitForPayment(purchase, elapsedSinceCreation: elapsedSinceCreation, progress: progress)
            }
        }
    }
}
