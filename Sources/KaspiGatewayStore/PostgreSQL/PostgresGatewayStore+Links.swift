import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Payment links

    public func insert(_ link: PaymentLink, reserving reservation: IdempotencyReservation?) async throws {
        try await transaction { connection in
            if let reservation { try await reserve(reservation, resource: link.id, on: connection) }
            var q = Query("INSERT INTO payment_links (\(linkColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            q.bind(link.id)
            q.bind(link.amount)
            q.bind(link.description)
            q.bind(link.merchantReference)
            q.bind(link.expiresAt)
            q.bind(link.createdAt)
            q.bind(link.orderID)
            _ = try await rows(q, on: connection)
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        var q = Query("SELECT \(linkColumns) FROM payment_links WHERE id = $1")
        q.bind(id)
        return try await rows(q).first.map { try RowDecoding.link($0) }
    }

    public func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool {
        var q = Query("UPDATE payment_links SET order_id = $1 WHERE id = $2 AND order_id IS NOT DISTINCT FROM $3 RETURNING id")
        q.bind(orderID)
        q.bind(linkID)
        q.bind(expected)
        return try await !rows(q).isEmpty
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        var q = Query("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT $1")
        q.bind(limit)
        return try await rows(q).map { try RowDecoding.link($0) }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        var insert = Query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        insert.bind(key)
        insert.bind(value())
        _ = try await rows(insert)
        var select = Query("SELECT value FROM settings WHERE key = $1")
        select.bind(key)
        return try await rows(select).first?.string("value") ?? ""
    }

    public func setting(_ key: String) async throws -> String? {
        var select = Query("SELECT value FROM settings WHERE key = $1")
        select.bind(key)
        return try await rows(select).first?.string("value")
    }
}
