import Foundation
import KaspiGatewayStore

/// A provider decorator that measures every call to Kaspi, its capabilities' calls included.
struct MeasuredProvider: PaymentProvider {
    let base: any PaymentProvider
    let metrics: GatewayMetrics
    /// The base's capabilities, each measured; resolved once.
    let capabilities: ProviderCapabilities

    init(base: any PaymentProvider, metrics: GatewayMetrics) {
        self.base = base
        self.metrics = metrics
        let offered = base.capabilities
        let meter = KaspiCallMeter(metrics: metrics)
        capabilities = ProviderCapabilities(
            webhooks: offered.webhooks,
            directRefunds: offered.directRefunds.map { MeasuredDirectRefunds(base: $0, meter: meter) },
            customerReturns: offered.customerReturns.map { MeasuredCustomerReturns(base: $0, meter: meter) },
            remoteInvoices: offered.remoteInvoices.map { MeasuredRemoteInvoices(base: $0, meter: meter) })
    }

    var name: String { base.name }
    func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? { base.pollPlan(for: order, now: now) }

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await KaspiCallMeter(metrics: metrics).measure("create_payment") { () throws(ProviderError) in try await base.createPayment(request) }
    }
    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        try await KaspiCallMeter(metrics: metrics).measure("create_qr") { () throws(ProviderError) in try await base.createQR(request) }
    }
    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await KaspiCallMeter(metrics: metrics).measure("status") { () throws(ProviderError) in try await base.status(of: order) }
    }
}

/// Times a call to Kaspi and counts its failures by code.
struct KaspiCallMeter: Sendable {
    let metrics: GatewayMetrics

    func measure<T>(_ call: String, _ body: () async throws(ProviderError) -> T) async throws(ProviderError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await body()
            metrics.kaspiCall(call, duration: ContinuousClock.now - started, errorCode: nil)
            return result
        } catch {
            metrics.kaspiCall(call, duration: ContinuousClock.now - started, errorCode: error.code)
            throw error
        }
    }
}

struct MeasuredDirectRefunds: DirectRefundCapability {
    let base: any DirectRefundCapability
    let meter: KaspiCallMeter

    func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        try await meter.measure("refund") { () throws(ProviderError) in try await base.refund(order, amount: amount) }
    }
}

struct MeasuredCustomerReturns: CustomerReturnCapability {
    let base: any CustomerReturnCapability
    let meter: KaspiCallMeter

    func createCustomerReturn() async throws(ProviderError) -> ProviderCustomerReturn {
        try await meter.measure("return.create") { () throws(ProviderError) in try await base.createCustomerReturn() }
    }
    func customerReturn(id: String) async throws(ProviderError) -> ProviderCustomerReturnStatus {
        try await meter.measure("return.status") { () throws(ProviderError) in try await base.customerReturn(id: id) }
    }
    func refund(_ order: GatewayOrder, amount: Int, returnID: String) async throws(ProviderError) -> ProviderRefund {
        try await meter.measure("refund") { () throws(ProviderError) in try await base.refund(order, amount: amount, returnID: returnID) }
    }
}

struct MeasuredRemoteInvoices: RemoteInvoiceCapability {
    let base: any RemoteInvoiceCapability
    let meter: KaspiCallMeter

    func clientName(phoneNumber: String) async throws(ProviderError) -> String {
        try await meter.measure("remote.client_info") { () throws(ProviderError) in try await base.clientName(phoneNumber: phoneNumber) }
    }
    func createRemoteInvoice(_ request: ProviderPaymentRequest, phoneNumber: String, comment: String?) async throws(ProviderError) -> ProviderPayment
    {
        try await meter.measure("remote.create") { () throws(ProviderError) in
            try await base.createRemoteInvoice(request, phoneNumber: phoneNumber, comment: comment)
        }
    }
    func cancelRemoteInvoice(_ order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await meter.measure("remote.cancel") { () throws(ProviderError) in try await base.cancelRemoteInvoice(order) }
    }
}
