import ArgumentParser
import Foundation
import KaspiPay

struct OrdersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders", abstract: "Create orders, read their status, refund them.",
        subcommands: [Create.self, Status.self, RefundOrder.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a payment order and print its payment URL.")

        @Option(help: "Amount in whole tenge (at least 100).")
        var amount: Int

        @Option(name: .customLong("order-id"), help: "Your unique order id (default: a new one).")
        var orderID: String?

        @Option(name: .customLong("return-url"), help: "Where the payer goes after paying.")
        var returnURL: String

        @Option(name: .customLong("fail-url"), help: "Where the payer goes after a decline or cancel.")
        var failURL: String

        @Option(help: "Shown to the payer (at most 256 characters).")
        var description: String?

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let orderID = try OrderID(orderID ?? "ORDER-" + UUID().uuidString.prefix(13).lowercased())
                let returnURL = try url(self.returnURL, field: "--return-url")
                let failURL = try url(self.failURL, field: "--fail-url")
                let order = NewOrder(
                    amount: try parseAmount(amount), orderID: orderID, returnURL: returnURL, failURL: failURL,
                    description: description)
                let created = try await connection.withClient { try await $0.orders.create(order) }
                if output.json {
                    Console.json([
                        "orderId": created.orderID.rawValue, "paymentUrl": created.paymentURL.absoluteString,
                        "status": created.status.rawValue, "recovered": created.recovered,
                    ])
                } else {
                    Console.out("Order \(created.orderID) created (\(created.status)).")
                    Console.out("Payment URL: \(created.paymentURL.absoluteString)")
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an order's status.")

        @Argument(help: "The order id.")
        var orderID: String

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let orderID = try OrderID(orderID)
                let status = try await connection.withClient { try await $0.orders.status(of: orderID) }
                if output.json {
                    Console.json([
                        "orderId": orderID.rawValue, "status": status.status.rawValue, "amount": status.amount?.tenge,
                        "transactionId": status.transactionID, "refundedAmount": status.refundedAmount?.tenge,
                    ])
                } else {
                    var line = "\(orderID): \(status.status)"
                    if let amount = status.amount { line += ", \(amount) tenge" }
                    if let refunded = status.refundedAmount, refunded.tenge > 0 { line += ", \(refunded) refunded" }
                    if let transaction = status.transactionID { line += ", transaction \(transaction)" }
                    Console.out(line)
                }
            }
        }
    }

    struct RefundOrder: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "refund", abstract: "Refund all or part of an approved order.")

        @Argument(help: "The order id.")
        var orderID: String

        @Option(help: "Amount to refund in whole tenge.")
        var amount: Int

        @Option(name: .customLong("transaction-id"), help: "Kaspi's transaction id of the payment, checked by the server.")
        var transactionID: String?

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                let orderID = try OrderID(orderID)
                let amount = try parseAmount(amount)
                let refund = try await connection.withClient {
                    try await $0.refunds.create(orderID: orderID, amount: amount, transactionID: transactionID)
                }
                if output.json {
                    Console.json([
                        "orderId": refund.orderID.rawValue, "refundId": refund.refundID, "amount": refund.amount.tenge,
                        "refundedAmount": refund.refundedAmount.tenge, "recovered": refund.recovered,
                    ])
                } else {
                    Console.out(
                        "Refunded \(refund.amount) tenge of \(refund.orderID) (\(refund.refundedAmount) refunded in all)"
                            + (refund.refundID.map { ", refund \($0)" } ?? "") + ".")
                }
            }
        }
    }
}

/// Parses a URL flag, with the SDK's own error for a malformed one.
func url(_ text: String, field: String) throws -> URL {
    guard let url = URL(string: text), url.scheme != nil else {
        throw KaspiError.invalidURL(field: field, value: text, reason: "it is not an absolute URL")
    }
    return url
}
