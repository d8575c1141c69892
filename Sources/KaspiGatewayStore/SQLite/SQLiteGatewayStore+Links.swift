import Foundation
import KaspiSQLite
import Logging
import NIOPosix
import SQLiteNIO
import Synchronization

extension SQLiteGatewayStore {
    // MARK: Payment links

    public func insert(_ link: PaymentLink, reserving reservation: IdempotencyReservation?) async throws {
        try await transaction { db in
            if let reservation { try Self.reserve(reservation, resource: link.id, db) }
            try db.run(
                "INSERT INTO payment_links (\(linkColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(link.id), .integer(link.amount), Self.text(link.description), Self.text(link.merchantReference),
                    Self.int(link.expiresAt?.ms), .integer(Int(link.createdAt.ms)), Self.text(link.orderID),
                ])
        }
    }

    public func paymentLink(id: String) async throws -> PaymentLink? {
        try await fetch("SELECT \(linkColumns) FROM payment_links WHERE id = ?", [.text(id)]).first.map { try RowDecoding.link(SQLiteRowReader($0)) }
    }

    public func attach(orderID: String, toLink linkID: String, replacing expected: String?) async throws -> Bool {
        try await transaction { db in
            let rows = try db.run(
                "UPDATE payment_links SET order_id = ? WHERE id = ? AND order_id IS ? RETURNING id",
                [.text(orderID), .text(linkID), Self.text(expected)])
            return !rows.isEmpty
        }
    }

    public func paymentLinks(limit: Int) async throws -> [PaymentLink] {
        try await fetch("SELECT \(linkColumns) FROM payment_links ORDER BY created_at DESC, id DESC LIMIT ?", [.integer(limit)])
            .map { try RowDecoding.link(SQLiteRowReader($0)) }
    }

    public func setting(_ key: String, orInsert value: @autoclosure () -> String) async throws -> String {
        let candidate = value()
        return try await transaction { db in
            try db.run("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", [.text(key), .text(candidate)])
            return try db.run("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string ?? candidate
        }
    }

    public func setting(_ key: String) async throws -> String? {
        try await fetch("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string
    }
}
