import Foundation
import Hummingbird
import KaspiPay
import NIOCore
import KaspiSupport

extension Sandbox {
    /// The sandbox-only helpers, under `/sandbox/`: settle orders, list and reset them, read
    /// and re-send webhooks, inject faults, move the clock.
    func addHelpers(to router: Router<BasicRequestContext>) {
        let group = router.group("sandbox")
        addQRHelpers(to: group)
        group.get("") { _, _ in Self.html(.ok, await self.indexPage()) }
        group.get("orders") { request, _ in
            let tradePoint = request.uri.queryParameters.get("tradePointId")
            return Self.json(.ok, encoding: await self.state.allOrders(tradePoint: tradePoint))
        }
        group.post("orders/:orderId/:action") { request, context in
            let orderId = context.parameters.get("orderId") ?? ""
            let status: String
            switch context.parameters.get("action") {
            case "approve", "approved", "pay": status = "APPROVED"
            case "decline", "declined": status = "DECLINED"
            case "cancel", "cancelled": status = "CANCELLED"
            default: return Self.helperError(.notFound, "UNKNOWN_ACTION", "Use approve, decline or cancel.")
            }
            let owners = await self.state.tradePoints(havingOrder: orderId)
            let tradePoint = request.uri.queryParameters.get("tradePointId") ?? (owners.count == 1 ? owners[0] : nil)
            guard let tradePoint, owners.contains(tradePoint) else {
                if owners.count > 1 {
                    return Self.helperError(.conflict, "AMBIGUOUS_ORDER", "Several trade points have order \(orderId); add ?tradePointId=.")
                }
                return Self.helperError(.notFound, "ORDER_NOT_FOUND", "No order \(orderId).")
            }
            guard let order = try await self.trigger(status, orderId: orderId, tradePointId: tradePoint) else {
                return Self.helperError(.notFound, "ORDER_NOT_FOUND", "No order \(orderId).")
            }
            return Self.json(.ok, encoding: order)
        }
        group.post("reset") { request, _ in
            await self.state.reset(tradePoint: request.uri.queryParameters.get("tradePointId"))
            try await self.state.waitForWrites()
            return Self.json(.ok, #"{"reset":true}"#)
        }
        group.get("webhooks") { request, _ in
            let query = request.uri.queryParameters
            return Self.json(.ok, encoding: await self.state.allDeliveries(tradePoint: query.get("tradePointId"), orderId: query.get("orderId")))
        }
        group.get("webhooks.html") { _, _ in Self.html(.ok, await self.webhooksPage()) }
        group.post("webhooks/:id/resend") { request, context in
            let id = context.parameters.get("id") ?? ""
            guard let delivery = await self.state.delivery(id: id) else {
                return Self.helperError(.notFound, "WEBHOOK_NOT_FOUND", "No webhook \(id).")
            }
            let attempt = await self.send(delivery, manual: true)
            if request.headers[.accept]?.contains("text/html") == true {
                return Response(status: .seeOther, headers: [.location: "/sandbox/webhooks.html"])
            }
            return Self.json(.ok, encoding: attempt)
        }
        group.get("faults/:tradePointId") { _, context in
            let id = context.parameters.get("tradePointId") ?? ""
            guard await self.state.tradePoint(id: id) != nil else {
                return Self.helperError(.notFound, "TRADE_POINT_NOT_FOUND", "No trade point \(id).")
            }
            return Self.json(.ok, encoding: await self.state.faults(for: id))
        }
        group.put("faults/:tradePointId") { request, context in
            let id = context.parameters.get("tradePointId") ?? ""
            guard await self.state.tradePoint(id: id) != nil else {
                return Self.helperError(.notFound, "TRADE_POINT_NOT_FOUND", "No trade point \(id).")
            }
            let body = try await request.body.collect(upTo: 16 * 1024)
            guard let faults = try? JSONDecoder().decode(SandboxFaults.self, from: Data(buffer: body)) else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "The body must be a JSON object of fault settings (see docs/sandbox.md).")
            }
            if let problem = faults.problem() { return Self.helperError(.badRequest, "INVALID_REQUEST", problem) }
            await self.state.setFaults(faults, for: id)
            return Self.json(.ok, encoding: faults)
        }
        group.get("clock") { _, _ in
            Self.json(.ok, #"{"now":"\#(ISO8601DateFormatter().string(from: self.clock.now))","offsetSeconds":\#(self.clock.currentOffset)}"#)
        }
        group.post("clock/advance") { request, _ in
            let body = try await request.body.collect(upTo: 1024)
            guard case .object(let object)? = JSONValue.parse(body.readableBytesView) else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", #"Send {"seconds": N}."#)
            }
            let seconds: Double
            switch object["seconds"] {
            case .integer(let n)?: seconds = Double(n)
            case .number(let n)?: seconds = n
            default: return Self.helperError(.badRequest, "INVALID_REQUEST", #"Send {"seconds": N}."#)
            }
            guard seconds >= 0, seconds <= 366 * 86400 else {
                return Self.helperError(.badRequest, "INVALID_REQUEST", "seconds must be between 0 and one year.")
            }
            await self.advanceClock(by: seconds)
            try await self.state.waitForWrites()
            return Self.json(.ok, #"{"now":"\#(ISO8601DateFormatter().string(from: self.clock.now))","offsetSeconds":\#(self.clock.currentOffset)}"#)
        }
    }

    static func helperError(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(status, #"{"code":"\#(code)","message":\#(JSONText.string(message))}"#)
    }

    func indexPage() async -> String {
        var body = "<h2>Trade points</h2><table><tr><th>id</th><th>name</th><th>webhook URL</th><th>return URL prefixes</th></tr>"
        for point in configuration.tradePoints {
            body += "<tr><td>\(Self.escape(point.id))</td><td>\(Self.escape(point.displayName))</td><td>\(Self.escape(point.webhookURL ?? "none"))</td><td>\(Self.escape(point.returnURLPrefixes.isEmpty ? "any" : point.returnURLPrefixes.joined(separator: ", ")))</td></tr>"
        }
        body += "</table><h2>Scenario amounts</h2><table><tr><th>amount</th><th>outcome</th></tr>"
        for row in ScenarioAmount.table {
            body += "<tr><td>\(row.amount)</td><td>\(row.status)\(row.afterSeconds > 0 ? " after \(Int(row.afterSeconds)) s" : " at once")</td></tr>"
        }
        body += "</table><h2>Orders</h2><table><tr><th>order</th><th>amount</th><th>status</th><th>refunded</th></tr>"
        for order in await state.allOrders().suffix(50).reversed() {
            body += "<tr><td><a href=\"/pay/\(order.paymentToken)\">\(Self.escape(order.orderId))</a></td><td>\(order.amount)</td><td>\(order.status)</td><td>\(order.refundedAmount)</td></tr>"
        }
        body += "</table><p><a href=\"/sandbox/webhooks.html\">Webhook deliveries</a></p>"
        return Self.page(title: "Sandbox", body: body)
    }

    func webhooksPage() async -> String {
        var body = "<h2>Webhook deliveries</h2><table><tr><th>order</th><th>status</th><th>state</th><th>attempts</th><th></th></tr>"
        for delivery in await state.allDeliveries().reversed() {
            let attempts = delivery.attempts.map { attempt in
                "\(attempt.responseCode.map(String.init) ?? (attempt.error ?? "no answer")) in \(attempt.latencyMs) ms\(attempt.manual ? " (by hand)" : "")"
            }.joined(separator: "<br>")
            body += """
                <tr><td>\(Self.escape(delivery.orderId))</td><td>\(delivery.status)</td><td>\(delivery.state.rawValue)</td><td>\(attempts)</td>
                <td><form method="post" action="/sandbox/webhooks/\(delivery.id)/resend"><button type="submit">Re-send</button></form></td></tr>
                """
        }
        body += "</table>"
        return Self.page(title: "Webhooks", body: body)
    }
}
