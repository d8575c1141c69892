import Foundation
import KaspiGatewayStore

/// A provider decorator that measures every call to Kaspi.
struct MeasuredProvider: PaymentProvider {
    let base: any PaymentProvider
    let metrics: GatewayMetrics

    var name: String { base.name }
    var sendsWebhooks: Bool { base.sendsWebhooks }
    var refundMethod: RefundMethod { base.refundMethod }
    var supportsRemoteInvoices: Bool { base.supportsRemoteInvoices }
    func clientName(phoneNumber: String) async throws(ProviderError) -> String {
        try await measure("remote.client_info") { () async throws(ProviderError) in try await base.clientName(phoneNumber: phoneNumber) }
    }
    func createRemoteInvoice(_ request: ProviderPaymentRequest, phoneNumber: String, comment: String?) async throws(ProviderError) -> ProviderPayment
    {
        try await measure("remote.create") { () async throws(ProviderError) in
            try await base.createRemoteInvoice(request, phoneNumber: phoneNumber, comment: comment)
        }
    }
    func createCustomerReturn() async throws(ProviderError) -> ProviderCustomerReturn {
        try await measure("return.create") { () async throws(ProviderError) in try await base.createCustomerReturn() }
    }
    func customerReturn(id: String) async throws(ProviderError) -> ProviderCustomerReturnStatus {
        try await measure("return.status") { () async throws(ProviderError) in try await base.customerReturn(id: id) }
    }
    func refund(_ order: GatewayOrder, amount: Int, customerReturnID: String?) async throws(ProviderError) -> ProviderRefund {
        try await measure("refund") { () async throws(ProviderError) in
            try await base.refund(order, amount: amount, customerReturnID: customerReturnID)
        }
    }
    func cancelRemoteInvoice(_ order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await measure("remote.cancel") { () async throws(ProviderError) in try await base.cancelRemoteInvoice(order) }
    }
    func pollPlan(for order: GatewayOrder, now: Date) -> ProviderPollPlan? { base.pollPlan(for: order, now: now) }

    private func measure<T>(_ call: String, _ body: () async throws(ProviderError) -> T) async throws(ProviderError) -> T {
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

    func createPayment(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderPayment {
        try await measure("create_payment") { () throws(ProviderError) in try await base.createPayment(request) }
    }
    func createQR(_ request: ProviderPaymentRequest) async throws(ProviderError) -> ProviderQR {
        try await measure("create_qr") { () throws(ProviderError) in try await base.createQR(request) }
    }
    func status(of order: GatewayOrder) async throws(ProviderError) -> ProviderStatus {
        try await measure("status") { () throws(ProviderError) in try await base.status(of: order) }
    }
    func refund(_ order: GatewayOrder, amount: Int) async throws(ProviderError) -> ProviderRefund {
        try await measure("refund") { () throws(ProviderError) in try await base.refund(order, amount: amount) }
    }
    func readWebhook(_ body: [UInt8]) throws(ProviderError) -> ProviderWebhook { try base.readWebhook(body) }
}
