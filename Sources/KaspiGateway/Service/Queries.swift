import Foundation
import KaspiGatewayStore

extension Gateway {
    /// An order by id.
    ///
    /// - Throws: `ORDER_NOT_FOUND`, or `STORAGE_UNAVAILABLE`.
    public func order(id: String) async throws(GatewayError) -> GatewayOrder {
        let order: GatewayOrder?
        do { order = try await store.order(id: id) } catch { throw GatewayError.storage(error) }
        guard let order else { throw .notFound(id) }
        return order
    }

    /// An order's timeline, oldest first.
    public func events(orderId: String) async throws(GatewayError) -> [OrderEvent] {
        _ = try await order(id: orderId)
        do { return try await store.events(orderId: orderId) } catch { throw GatewayError.storage(error) }
    }

    /// An order's refunds, oldest first.
    public func refunds(orderId: String) async throws(GatewayError) -> [RefundRecord] {
        _ = try await order(id: orderId)
        do { return try await store.refunds(orderId: orderId) } catch { throw GatewayError.storage(error) }
    }

    /// A page of orders, newest first.
    public func orders(_ query: OrderQuery) async throws(GatewayError) -> (orders: [GatewayOrder], next: OrderCursor?) {
        do { return try await store.orders(query) } catch { throw GatewayError.storage(error) }
    }

    /// The newest outgoing events, of one order or of all.
    public func outgoingEvents(orderId: String?, limit: Int = 100) async throws(GatewayError) -> [OutboxMessage] {
        do { return try await store.outboxMessages(orderId: orderId, limit: limit) } catch { throw GatewayError.storage(error) }
    }

    /// Queues an outgoing event for delivery again, now.
    public func resend(messageId: String) async throws(GatewayError) {
        do { try await store.requeue(messageId: messageId, now: now()) } catch { throw GatewayError.storage(error) }
    }
}
