import Foundation
import Hummingbird
import KaspiPay
import KaspiWeb
import NIOCore

extension Sandbox {
    /// The sandbox-only helpers, under `/sandbox/`: settle orders, list and reset them, read
    /// and re-send webhooks, inject faults, move the clock.
    func addHelpers(to router: Router<BasicRequestContext>) {
        let group = router.group("sandbox")
        addQRHelpers(to: group)
        group.get("") { _, _ in await self.indexPage() }
        group.get("orders") { request, _ in
            let tradePoint = request.uri.queryParameters.get("tradePointId")
            return Self.json(.ok, encoding: await self.state.allOrders(tradePoint: tradePoint), readable: true)
        }
        // Counts, for load tests: every order (once its write is done) and those in memory.
        group.get("stats") { _, _ in
            try await self.state.waitForWrites()
            try await self.qrState.waitForWrites()
            let (orders, inMemory) = await (self.state.orderCount(), self.state.residentCount)
            let (purchases, purchasesInMemory) = await (self.qrState.purchaseCount(), self.qrState.residentPurchaseCount)
            return Self.json(
                .ok,
                encoding: SandboxStats(
                    orders: orders, ordersInMemory: inMemory, memoryOrderLimit: self.configuration.memoryOrderLimit, qrPurchases: purchases,
                    qrPurchasesInMemory: purchasesInMemory))
        }
        group.post("orders/:orderId/:action") { request, context in
            let orderID = try context.parameters.require("orderId")
            let status: PaymentStatus
            switch context.parameters.get("action") {
            case "approve", "approved", "pay": status = .approved
            case "decline", "declined": status = .declined
            case "cancel", "cancelled": status = .cancelled
            default: return Self.helperError(.notFound, "UNKNOWN_ACTION", "Use approve, decline or cancel.")
            }
            let owners = await self.state.tradePoints(havingOrder: orderID)
            let tradePoint = request.uri.queryParameters.get("tradePointId") ?? (owners.count == 1 ? owners[0] : nil)
            guard let tradePoint, owners.contains(tradePoint) else {
                if owners.count > 1 {
                    return Self.helperError(.conflict, "AMBIGUOUS_ORDER", "Several trade points have order \(orderID); add ?tradePointId=.")
                }
                return Self.helperError(.notFound, "ORDER_NOT_FOUND", "No order \(orderID).")
            }
            guard let order = try await self.trigger(status, orderID: orderID, tradePointID: tradePoint) else {
                return Self.helperError(.notFound, "ORDER_NOT_FOUND", "No order \(orderID).")
            }
            return Self.json(.ok, encoding: order, readable: true)
        }
        group.post("reset") { request, _ in
            await self.state.reset(tradePoint: request.uri.queryParameters.get("tradePointId"))
            try await self.state.waitForWrites()
            return Self.json(.ok, encoding: ["reset": true])
        }
        group.get("webhooks") { request, _ in
            let query = request.uri.queryParameters
            return Self.json(
                .ok, encoding: await self.state.allDeliveries(tradePoint: query.get("tradePointId"), orderID: query.get("orderId")), readable: true)
        }
        group.get("webhooks.html") { _, _ in await self.webhooksPage() }
        group.post("webhooks/:id/resend") { request, context in
            let id = try context.parameters.require("id")
            guard let delivery = await self.state.delivery(id: id) else {
                return Self.helperError(.notFound, "WEBHOOK_NOT_FOUND", "No webhook \(id).")
            }
            let attempt = await self.send(delivery, manual: true)
            if request.headers[.accept]?.contains("text/html") == true {
                return Response(status: .seeOther, headers: [.location: "/sandbox/webhooks.html"])
            }
            return Self.json(.ok, encoding: attempt, readable: true)
        }
        group.get("faults/:tradePointId") { _, context in
            let id = try context.parameters.require("tradePointId")
            guard await self.state.tradePoint(id: id) != nil else {
                return Self.helperError(.notFound, "TRADE_POINT_NOT_FOUND", "No trade point \(id).")
            }
            return Self.json(.ok, encoding: await self.state.faults(for: id), readable: true)
        }
        group.put("faults/:tradePointId") { request, context in
            let id = try context.parameters.require("tradePointId")
            guard await self.state.tradePoint(id: id) != nil else {
                return Self.helperError(.notFound, "TRADE_POINT_NOT_FOUND", "No trade point \(id).")
            }
            let body = try await request.body.collect(upTo: 16 * 1024)
            guard let faults = try? JSONDecoder().decode(SandboxFaults.self, from: Data(buffer: body)) else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "The body must be a JSON object of fault settings (see docs/sandbox.md).")
            }
            if let problem = faults.problem() { return Self.helperError(.badRequest, "INVALID_REQUEST", problem) }
            await self.state.setFaults(faults, for: id)
            return Self.json(.ok, encoding: faults, readable: true)
        }
        group.get("clock") { _, _ in Self.json(.ok, encoding: ClockAnswer(now: self.clock.now, offsetSeconds: self.clock.currentOffset)) }
        group.post("clock/advance") { request, _ in
            struct Advance: Decodable { var seconds: Double }
            let body = try await request.body.collect(upTo: 1024)
            guard let seconds = (try? JSONDecoder().decode(Advance.self, from: body))?.seconds else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", #"Send {"seconds": N}."#)
            }
            guard seconds >= 0, seconds <= 366 * 86400 else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "seconds must be between 0 and one year.")
            }
            await self.advanceClock(by: seconds)
            try await self.state.waitForWrites()
            return Self.json(.ok, encoding: ClockAnswer(now: self.clock.now, offsetSeconds: self.clock.currentOffset))
        }
    }

    static func helperError(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(status, encoding: ErrorBody(code: code, message: message))
    }

    func indexPage() async -> Response {
        struct Point { var id, name, webhookURL, prefixes: String }
        struct Scenario {
            var amount: Int
            var outcome: String
        }
        struct Order {
            var token, orderID, status: String
            var amount, refunded: Int
        }
        struct Page {
            var title: String
            var tradePoints: [Point]
            var scenarios: [Scenario]
            var orders: [Order]
        }
        let page = Page(
            title: "Sandbox",
            tradePoints: configuration.tradePoints.map { point in
                Point(
                    id: point.id, name: point.displayName, webhookURL: point.webhookURL ?? "none",
                    prefixes: point.returnURLPrefixes.isEmpty ? "any" : point.returnURLPrefixes.joined(separator: ", "))
            },
            scenarios: ScenarioAmount.table.map { row in
                Scenario(amount: row.amount, outcome: "\(row.status)" + (row.afterSeconds > 0 ? " after \(Int(row.afterSeconds)) s" : " at once"))
            },
            orders: await state.allOrders(last: 50).reversed().map { order in
                Order(
                    token: order.paymentToken, orderID: order.orderID, status: order.status.rawValue, amount: order.amount,
                    refunded: order.refundedAmount)
            })
        return pages.page("index", page).response
    }

    func webhooksPage() async -> Response {
        struct Delivery {
            var id, orderID, status, state: String
            var attempts: [String]
        }
        struct Page {
            var title: String
            var deliveries: [Delivery]
        }
        let deliveries = await state.allDeliveries().reversed().map { delivery in
            Delivery(
                id: delivery.id, orderID: delivery.orderID, status: delivery.status.rawValue, state: delivery.state.rawValue,
                attempts: delivery.attempts.map { attempt in
                    "\(attempt.responseCode.map(String.init) ?? (attempt.error ?? "no answer")) in \(attempt.latencyMs) ms\(attempt.manual ? " (by hand)" : "")"
                })
        }
        return pages.page("webhooks", Page(title: "Webhooks", deliveries: deliveries)).response
    }
}

/// The sandbox's clock: now, and how far it was moved.
struct ClockAnswer: Encodable {
    var now: Date
    var offsetSeconds: Double
}

/// `GET /sandbox/stats`.
struct SandboxStats: Codable, Sendable {
    var orders: Int
    var ordersInMemory: Int
    /// How many orders, and how many QR purchases, memory holds at most.
    var memoryOrderLimit: Int
    var qrPurchases: Int
    var qrPurchasesInMemory: Int
}
