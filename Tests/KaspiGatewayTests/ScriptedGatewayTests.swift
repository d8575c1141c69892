import Foundation
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPay
import Testing

@testable import KaspiGateway

/// The gateway's branches on a scripted provider: refusals, lost answers, resumptions and poll
/// outcomes, each decided in isolation, on a clock the test moves.
@Suite("Gateway branches on a scripted provider")
struct ScriptedGatewayTests {
    static func paid(_ gateway: Gateway, _ provider: ScriptedProvider, amount: Int = 5000) async throws -> GatewayOrder {
        provider.script("create", .payment("https://kaspi.example/pay/1"))
        let (order, _, _) = try await gateway.createCheckout(CheckoutRequest(amount: amount), kind: .redirect)
        provider.script("status", .status(ProviderStatus(report: .approved, transactionID: "T-1")))
        let paid = try await gateway.refreshStatus(order, source: .poll)
        #expect(paid.state == .paid)
        return paid
    }

    static func error(_ body: () async throws(GatewayError) -> GatewayOrder) async -> GatewayError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test("a refused refund is released; a refusal on the merits is a conflict with Kaspi's code", arguments: Backend.available)
    func refusedRefunds(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, _ in
            let order = try await Self.paid(gateway, provider)
            provider.script("refund", .failure(ProviderError(code: "KASPI_SAYS_NO", message: "try later")))
            let refused = await Self.error { () async throws(GatewayError) in try await gateway.refund(orderID: order.id, amount: 1000) }
            #expect(refused?.kind == .providerRefused && refused?.code == "PROVIDER_REFUSED")
            provider.script(
                "refund", .failure(ProviderError(code: "KASPI_QR_REFUND_EXCEEDS_AMOUNT", message: "beyond what is left", refusal: .conflict)))
            let conflict = await Self.error { () async throws(GatewayError) in try await gateway.refund(orderID: order.id, amount: 1000) }
            #expect(conflict?.kind == .providerConflict && conflict?.code == "KASPI_QR_REFUND_EXCEEDS_AMOUNT")
            let refunds = try await gateway.store.refunds(orderID: order.id)
            #expect(refunds.map(\.status) == [.failed, .failed])
            #expect(try await gateway.store.order(id: order.id)?.refundedAmount == 0)
        }
    }

    @Test("a refund whose answer is lost stays reserved, then Kaspi's record settles it either way", arguments: Backend.available)
    func lostRefundAnswers(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, clock in
            let order = try await Self.paid(gateway, provider)
            let timeout = ProviderError(code: "KASPI_TIMEOUT", message: "no answer", ambiguous: true)
            provider.script("refund", .failure(timeout))
            let lost = await Self.error { () async throws(GatewayError) in try await gateway.refund(orderID: order.id, amount: 1000) }
            #expect(lost?.kind == .providerOutcomeUnknown && lost?.code == "PROVIDER_REFUND_UNKNOWN")
            #expect(try await gateway.store.order(id: order.id)?.refundedAmount == 1000)
            // Not before a call could still be under way.
            #expect(try await gateway.resolveRefundsOnce() == 0)
            clock.advance(by: 121)
            provider.script("status", .status(ProviderStatus(report: .approved, transactionID: "T-1", refundedAmount: 1000)))
            #expect(try await gateway.resolveRefundsOnce() == 1)
            #expect(try await gateway.store.refunds(orderID: order.id).map(\.status) == [.succeeded])
            // Another, which Kaspi's record shows never happened: released.
            provider.script("refund", .failure(timeout))
            _ = await Self.error { () async throws(GatewayError) in try await gateway.refund(orderID: order.id, amount: 500) }
            clock.advance(by: 121)
            provider.script("status", .status(ProviderStatus(report: .approved, transactionID: "T-1", refundedAmount: 1000)))
            #expect(try await gateway.resolveRefundsOnce() == 1)
            #expect(try await gateway.store.refunds(orderID: order.id).map(\.status) == [.succeeded, .failed])
            #expect(try await gateway.store.order(id: order.id)?.refundedAmount == 1000)
        }
    }

    @Test(
        "a resumed refund is settled from Kaspi's record, sent only if it never happened, and never re-sent once refused",
        arguments: Backend.available)
    func resumedRefunds(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, clock in
            let order = try await Self.paid(gateway, provider)
            // Reserved by a request that died before Kaspi was asked.
            let pending = try await gateway.store.recordRefund(
                orderID: order.id, amount: 1000, refundID: "rf_interrupted", at: clock.now, reserving: nil)
            #expect(pending.refundedAmount == 1000)
            // Too early: a call may still be on its way.
            let early = await Self.error { () async throws(GatewayError) in
                try await gateway.refund(orderID: order.id, amount: 1000, resuming: "rf_interrupted")
            }
            #expect(early?.code == "IDEMPOTENCY_IN_PROGRESS" && (early?.retryAfter ?? 0) >= 1)
            #expect(!provider.calls.contains("refund"))
            // Later Kaspi's record shows no refund: released, then sent once.
            clock.advance(by: 121)
            provider.script("status", .status(ProviderStatus(report: .approved, transactionID: "T-1", refundedAmount: 0)))
            provider.script("refund", .refunded("kaspi-1"))
            let refunded = try await gateway.refund(orderID: order.id, amount: 1000, resuming: "rf_interrupted")
            #expect(refunded.refundedAmount == 1000)
            #expect(provider.calls.filter { $0 == "refund" }.count == 1)
            #expect(try await gateway.store.refunds(orderID: order.id).map(\.status).sorted { $0.rawValue < $1.rawValue } == [.failed, .succeeded])
            // One Kaspi refused before the retry came: answered as not made, not sent again.
            provider.script("refund", .failure(ProviderError(code: "KASPI_SAYS_NO", message: "no")))
            _ = await Self.error { () async throws(GatewayError) in try await gateway.refund(orderID: order.id, amount: 500) }
            let refused = try #require(try await gateway.store.refunds(orderID: order.id).first { $0.amount == 500 && $0.status == .failed })
            let notMade = await Self.error { () async throws(GatewayError) in
                try await gateway.refund(orderID: order.id, amount: 500, resuming: refused.id)
            }
            #expect(notMade?.code == "REFUND_NOT_MADE")
            #expect(provider.calls.filter { $0 == "refund" }.count == 2)
        }
    }

    @Test("a create whose answer is lost leaves the order to reconciliation", arguments: Backend.available)
    func lostCreateAnswers(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, clock in
            provider.script("create", .failure(ProviderError(code: "KASPI_TIMEOUT", message: "no answer", ambiguous: true)))
            let lost = await Self.error { () async throws(GatewayError) in
                try await gateway.createCheckout(CheckoutRequest(amount: 4000), kind: .redirect).order
            }
            #expect(lost?.code == "PROVIDER_UNAVAILABLE")
            let stored = try #require(try await gateway.store.orders(OrderQuery()).orders.first)
            #expect(stored.state == .created)
            // Kaspi has it after all: the first poll moves it on.
            clock.advance(by: 61)
            provider.script("status", .status(ProviderStatus(report: .pending, transactionID: nil)))
            #expect(try await gateway.reconcileOnce() == 1)
            #expect(try await gateway.store.order(id: stored.id)?.state == .pending)
            // Another that never reached Kaspi: once its create cannot be in flight, expired.
            provider.script("create", .failure(ProviderError(code: "KASPI_TIMEOUT", message: "no answer", ambiguous: true)))
            let other = await Self.error { () async throws(GatewayError) in
                try await gateway.createCheckout(CheckoutRequest(amount: 4100), kind: .redirect).order
            }
            #expect(other != nil)
            let never = try #require(try await gateway.store.orders(OrderQuery()).orders.first { $0.amount == 4100 })
            clock.advance(by: 121)
            provider.script("status", .failure(ProviderError(code: "ORDER_NOT_FOUND", message: "unknown", notFound: true)))
            _ = try await gateway.refreshStatus(never, source: .poll)
            #expect(try await gateway.store.order(id: never.id)?.state == .expired)
        }
    }

    @Test("a resumed checkout asks Kaspi as a create that may have arrived; one already answered is not asked again", arguments: Backend.available)
    func resumedCheckouts(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, clock in
            let order = GatewayOrder(
                id: "ord_interrupted", provider: provider.name, providerOrderID: "kk_interrupted", kind: .redirect, amount: 4200,
                createdAt: clock.now)
            try await gateway.store.insert(order)
            provider.script("create", .payment("https://kaspi.example/pay/resumed"))
            let resumed = try await gateway.createCheckout(CheckoutRequest(amount: 4200), kind: .redirect, resuming: order.id)
            #expect(resumed.order.id == order.id && resumed.order.paymentURL == "https://kaspi.example/pay/resumed")
            #expect(provider.resumedCreates == 1)
            let again = try await gateway.createCheckout(CheckoutRequest(amount: 4200), kind: .redirect, resuming: order.id)
            #expect(again.order.paymentURL == "https://kaspi.example/pay/resumed")
            #expect(provider.calls == ["create"])
            // What it created moved on meanwhile: not resumed, said so.
            _ = try await gateway.store.update(orderID: order.id) { OrderStateMachine.expire($0, at: clock.now, reason: "test") }
            let other = GatewayOrder(
                id: "ord_gone", provider: provider.name, providerOrderID: "kk_gone", kind: .redirect, amount: 4200, createdAt: clock.now)
            try await gateway.store.insert(other)
            _ = try await gateway.store.update(orderID: other.id) { OrderStateMachine.expire($0, at: clock.now, reason: "test") }
            let gone = await Self.error { () async throws(GatewayError) in
                try await gateway.createCheckout(CheckoutRequest(amount: 4200), kind: .redirect, resuming: other.id).order
            }
            #expect(gone?.code == "IDEMPOTENCY_INTERRUPTED")
        }
    }

    @Test("a failure at or after the provider's earliest end is an expiry; before it, the payer's refusal", arguments: Backend.available)
    func pollOutcomes(_ backend: Backend) async throws {
        try await withScriptedGateway(backend) { gateway, provider, clock in
            let start = clock.now
            provider.setPlan(
                ProviderPollPlan(
                    nextPollAt: start.addingTimeInterval(1), deadline: start.addingTimeInterval(20), phase: "confirmation",
                    earliestEnd: start.addingTimeInterval(10)))
            var orders: [GatewayOrder] = []
            for amount in [1000, 1100, 1200] {
                provider.script("create", .payment("https://kaspi.example/pay/\(amount)"))
                orders.append(try await gateway.createCheckout(CheckoutRequest(amount: amount), kind: .redirect).order)
            }
            clock.advance(by: 5)
            provider.script("status", .status(ProviderStatus(report: .declined, transactionID: nil, providerStatus: "Error")))
            #expect(try await gateway.refreshStatus(orders[0], source: .poll).state == .declined)
            clock.advance(by: 5)
            provider.script("status", .status(ProviderStatus(report: .declined, transactionID: nil, providerStatus: "Error")))
            let cancelled = try await gateway.refreshStatus(orders[1], source: .poll)
            #expect(cancelled.state == .expired)
            #expect(try await gateway.store.events(orderID: orders[1].id).last?.detail.contains("Kaspi cancelled it at its deadline") == true)
            // Still waiting at the latest deadline: expired, asked again later for a late payment.
            clock.advance(by: 10)
            provider.script("status", .status(ProviderStatus(report: .pending, transactionID: nil, providerStatus: "Wait")))
            let expired = try await gateway.refreshStatus(orders[2], source: .poll)
            #expect(expired.state == .expired && expired.nextPollAt != nil)
        }
    }
}
