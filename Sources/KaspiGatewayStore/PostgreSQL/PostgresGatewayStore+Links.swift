import Foundation
import Logging
import PostgresNIO

extension PostgresGatewayStore {
    // MARK: Payment links

    public func insert(_ link: PaymentLink, reserving reservation: IdempotencyReservation?) async throws {
        try await transaction { connection in
            if let reservation { try await reserve(reservation, resource: link.id, on: connection) }
            let q: PostgresQuery = """
                INSERT INTO payment_links (\(unescaped: linkColumns)) VALUES (\(link.id), \(Int64(link.amount)), \(link.description),
                    \(link.merchantReference), \(ms: link.expiresAt), \(ms: link.createdAt), \(link.orderID))
                """
            _ = try await rows(q, on: connection)
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        try await rows("SELECT \(unescaped: linkColumns) FROM payment_links WHERE id = \(id)").first.map { try RowDecoding.link($0) }
    }

    public func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool {
        try await !rows(
            "UPDATE payment_links SET order_id = \(orderID) WHERE id = \(linkID) AND order_id IS NOT DISTINCT FROM \(expected) RETURNING id"
        )
        .isEmpty
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        try await rows("SELECT \(unescaped: linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT \(Int64(limit))").map {
            try RowDecoding.link($0)
        }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        _ = try await rows("INSERT INTO settings (key, value) VALUES (\(key), \(value())) ON CONFLICT (key) DO NOTHING")
        return try await rows("SELECT value FROM settings WHERE key = \(key)").first?.string("value") ?? ""
    }

    public func setting(_ key: String) async throws -> String? {
        try await rows("SELECT value FROM settings WHERE key = \(key)").first?.string("value")
    }
}
