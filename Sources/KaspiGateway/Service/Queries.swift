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
    public func events(orderID: String) async throws(GatewayError) -> [OrderEvent] {
        _ = try await order(id: orderID)
        do { return try await store.events(orderID: orderID) } catch { throw GatewayError.storage(error) }
    }

    /// An order's refunds, oldest first.
    public func refunds(orderID: String) async throws(GatewayError) -> [RefundRecord] {
        _ = try await order(id: orderID)
        do { return try await store.refunds(orderID: orderID) } catch { throw GatewayError.storage(error) }
    }

    /// A page of orders, newest first.
    public func orders(_ query: OrderQuery) async throws(GatewayError) -> (orders: [GatewayOrder], next: OrderCursor?) {
        do { return try await store.orders(query) } catch { throw GatewayError.storage(error) }
    }

    /// The newest outgoing events, of one order or of all.
    public func outgoingEvents(orderID: String?, limit: Int = 100) async throws(GatewayError) -> [OutboxMessage] {
        do { return try await store.outboxMessages(orderID: orderID, limit: limit) } catch { throw GatewayError.storage(error) }
    }

    /// Outgoing events written after `cursor` (of one order when given), oldest first.
    public func outgoingEvents(after cursor: OrderCursor?, orderID: String? = nil, limit: Int = 100) async throws(GatewayError) -> [OutboxMessage] {
        do { return try await store.outboxMessages(after: cursor, orderID: orderID, limit: limit) } catch { throw GatewayError.storage(error) }
    }

    /// Queues an outgoing event for delivery again, now.
    public func resend(messageID: String) async throws(GatewayError) {
        let found: Bool
        do { found = try await store.requeue(messageID: messageID, now: now()) } catch { throw GatewayError.storage(error) }
        guard found else { throw GatewayError(.notFound, "EVENT_NOT_FOUND", "No event \(messageID).") }
    }
}
