import Foundation
import Hummingbird
import KaspiGatewayStore
import Logging

/// The merchant API under `/v1`: reads each request into the service's terms, calls the
/// service, and answers in JSON. Authentication, idempotency and error answers are its
/// middleware's.
struct MerchantAPIController {
    let gateway: Gateway

    /// The routes, under `/v1`.
    func addRoutes(to router: Router<GatewayRequestContext>) {
        let api = router.group("v1")
            .add(middleware: APIErrorMiddleware(logger: gateway.logger))
            .add(middleware: APIKeyMiddleware(configuration: gateway.configuration, failures: gateway.apiKeyFailures, now: gateway.now))
        // The POSTs that change money take an Idempotency-Key.
        let idempotent = api.group()
            .add(
                middleware: IdempotencyMiddleware(
                    store: gateway.store, configuration: gateway.configuration, now: gateway.now, logger: gateway.logger, runID: gateway.runID))

        idempotent.post("checkouts") { request, context in try await checkout(request, context, kind: .redirect) }
        idempotent.post("qr-checkouts") { request, context in try await checkout(request, context, kind: .qr) }
        idempotent.post("orders/:id/refunds", use: refund)
        idempotent.post("orders/:id/manual-refunds", use: manualRefund)
        idempotent.post("payment-links", use: createPaymentLink)

        api.get("orders", use: listOrders)
        api.get("orders/:id") { _, context in
            let order = try await gateway.order(id: try context.parameters.require("id"))
            return OrderResponse(order, clientSecret: try await gateway.clientSecret(orderID: order.id))
        }
        api.get("orders/:id/events") { _, context in
            ListResponse(data: try await gateway.events(orderID: try context.parameters.require("id")).map(EventResponse.init))
        }
        api.get("orders/:id/refunds") { _, context in
            ListResponse(data: try await gateway.refunds(orderID: try context.parameters.require("id")).map(RefundResponse.init))
        }
        api.post("orders/:id/refresh") { _, context in
            OrderResponse(try await gateway.refreshOnRequest(orderID: try context.parameters.require("id")))
        }
        // What the provider can do is resolved once, here: a capability it lacks gets routes
        // that answer its stable refusal (409 …_NOT_SUPPORTED), before any body or order is read.
        if gateway.capabilities.remoteInvoices != nil {
            idempotent.post("remote-invoices", use: remoteInvoice)
            api.post("remote-invoices/client-info") { request, context in
                let body = try await request.decodeJSON(as: ClientInfoBody.self, context: context)
                return ClientInfoResponse(
                    phoneNumber: body.phoneNumber, clientName: try await gateway.remoteClientName(phoneNumber: body.phoneNumber))
            }
            api.post("orders/:id/cancel") { _, context in
                OrderResponse(try await gateway.cancelRemoteInvoice(orderID: try context.parameters.require("id")))
            }
        } else {
            let refusal = CheckoutService.remoteUnsupported
            idempotent.post("remote-invoices") { _, _ -> Response in throw refusal }
            api.post("remote-invoices/client-info") { _, _ -> Response in throw refusal }
            api.post("orders/:id/cancel") { _, _ -> Response in throw refusal }
        }
        if gateway.capabilities.customerReturns != nil {
            api.post("returns") { _, _ in
                EditedResponse(status: .created, response: CustomerReturnResponse(try await gateway.createCustomerReturn()))
            }
            api.get("returns/:id") { _, context in
                let id = try context.parameters.require("id")
                let (status, orders) = try await gateway.customerReturn(id: id)
                return CustomerReturnStatusResponse(id: id, status: status, orders: orders)
            }
        } else {
            let refusal = RefundService.returnsUnsupported
            api.post("returns") { _, _ -> Response in throw refusal }
            api.get("returns/:id") { _, _ -> Response in throw refusal }
        }
        api.get("payment-links/:id") { _, context in
            PaymentLinkResponse(try await gateway.paymentLink(id: try context.parameters.require("id")))
        }
        api.get("events") { request, _ in try await self.events(request) }
        api.post("events/:id/resend") { _, context in
            let id = try context.parameters.require("id")
            try await gateway.resend(messageID: id)
            return EditedResponse(status: .accepted, response: RequeuedResponse(requeued: id))
        }
    }

    /// `GET /v1/events`: the newest events (of one order, or of all), or with `after` every
    /// event written after a cursor, oldest first: what `kaspi listen` follows.
    @Sendable func events(_ request: Request) async throws -> EventPageResponse {
        let query = request.uri.queryParameters
        var limit = 100
        if let text = query.get("limit") {
            guard let value = Int(text), (1...500).contains(value) else { throw GatewayError.invalid("limit must be from 1 to 500.") }
            limit = value
        }
        let orderID = query.get("orderId").map { String($0) }
        guard let token = query.get("after") else {
            let newest = try await gateway.outgoingEvents(orderID: orderID, limit: limit)
            return EventPageResponse(data: newest.map { OutboxResponse($0) }, nextCursor: newest.first.map(Self.cursor))
        }
        guard let after = OrderCursor(token: String(token)) else { throw GatewayError.invalid("after is not a cursor this API returned.") }
        let page = try await gateway.outgoingEvents(after: after, orderID: orderID, limit: limit)
        return EventPageResponse(data: page.map { OutboxResponse($0) }, nextCursor: page.last.map(Self.cursor) ?? after.token)
    }

    static func cursor(_ message: OutboxMessage) -> String { OrderCursor(after: message).token }

    @Sendable func checkout(_ request: Request, _ context: GatewayRequestContext, kind: OrderKind) async throws -> Response {
        let body = try await request.decodeJSON(as: CheckoutBody.self, context: context)
        let checkout = CheckoutRequest(
            amount: body.amount.value, description: body.description, merchantReference: body.merchantReference, metadata: try body.metadataText(),
            mobileReturnURL: body.mobileReturnURL, locale: body.locale)
        let key = try await gateway.clients.clientSecretKey()
        // Encoded once: the same bytes are stored for a replay (in the payment URL's commit)
        // and sent.
        let encode: @Sendable (GatewayOrder, ProviderQR?) throws -> ByteBuffer = { order, qr in
            try GatewayJSON.encode(OrderResponse(order, qr: qr, clientSecret: ClientAccess.clientSecret(orderID: order.id, key: key)))
        }
        let (order, qr, answered) = try await gateway.createCheckout(
            checkout, kind: kind, reserving: context.idempotency, resuming: context.resuming,
            answer: { order, qr in IdempotentResponse(status: Int(HTTPResponse.Status.created.code), body: String(buffer: try encode(order, qr))) })
        if let answered {
            context.idempotencyAnswer?.markStored()
            return GatewayJSON.response(.created, ByteBuffer(string: answered.body))
        }
        return GatewayJSON.response(.created, try encode(order, qr))
    }

    @Sendable func refund(_ request: Request, _ context: GatewayRequestContext) async throws -> EditedResponse<OrderResponse> {
        let id = try context.parameters.require("id")
        let body = try await request.decodeJSON(as: RefundBody.self, context: context)
        if let returnID = body.returnID, returnID.isEmpty || returnID.count > 64 {
            throw GatewayError.invalid("returnId must be the id of a return QR the customer scanned.")
        }
        let order = try await gateway.refund(
            orderID: id, amount: body.amount?.value, customerReturnID: body.returnID, reserving: context.idempotency, resuming: context.resuming)
        return EditedResponse(status: .created, response: OrderResponse(order))
    }

    @Sendable func manualRefund(_ request: Request, _ context: GatewayRequestContext) async throws -> EditedResponse<OrderResponse> {
        let id = try context.parameters.require("id")
        let body = try await request.decodeJSON(as: ManualRefundBody.self, context: context)
        let order = try await gateway.recordManualRefund(
            orderID: id, amount: body.amount.value, note: body.note, reserving: context.idempotency, resuming: context.resuming)
        return EditedResponse(status: .created, response: OrderResponse(order))
    }

    @Sendable func remoteInvoice(_ request: Request, _ context: GatewayRequestContext) async throws -> EditedResponse<OrderResponse> {
        let body = try await request.decodeJSON(as: RemoteInvoiceBody.self, context: context)
        if let resuming = context.resuming {
            // Kaspi cannot be asked whether an invoice reached the payer's phone, and a second
            // one could be paid too: never sent again.
            throw GatewayError(
                .conflict, "IDEMPOTENCY_INTERRUPTED",
                "The first request with this Idempotency-Key was interrupted while billing (order \(resuming)); check the order with GET /v1/orders/\(resuming) and POST /v1/orders/\(resuming)/refresh before billing again with a new key."
            )
        }
        let invoice = CheckoutRequest(amount: body.amount.value, description: body.description, merchantReference: body.merchantReference)
        let order = try await gateway.createRemoteInvoice(
            invoice, phoneNumber: body.phoneNumber, comment: body.comment, reserving: context.idempotency)
        return EditedResponse(status: .created, response: OrderResponse(order))
    }

    @Sendable func createPaymentLink(_ request: Request, _ context: GatewayRequestContext) async throws -> EditedResponse<PaymentLinkResponse> {
        let body = try await request.decodeJSON(as: PaymentLinkBody.self, context: context)
        var expiresAt: Date? = nil
        if let text = body.expiresAt {
            guard let date = GatewayJSON.parseISO(text) else { throw GatewayError.invalid("expiresAt must be an ISO 8601 time.") }
            expiresAt = date
        }
        let link = try await gateway.createPaymentLink(
            amount: body.amount.value, description: body.description, merchantReference: body.merchantReference, expiresAt: expiresAt,
            reserving: context.idempotency, resuming: context.resuming)
        return EditedResponse(status: .created, response: PaymentLinkResponse(gateway.view(of: link, status: .open, order: nil)))
    }

    @Sendable func listOrders(_ request: Request, _ context: GatewayRequestContext) async throws -> OrderPageResponse {
        let query = request.uri.queryParameters
        var states: Set<OrderState> = []
        if let status = query.get("status") {
            for name in status.split(separator: ",", omittingEmptySubsequences: false) {
                guard let state = OrderState(rawValue: String(name)) else {
                    throw GatewayError.invalid("status must be among created, pending, paid, declined, cancelled, expired.")
                }
                states.insert(state)
            }
        }
        func date(_ name: String) throws -> Date? {
            guard let text = query.get(name) else { return nil }
            guard let date = GatewayJSON.parseISO(text) else {
                throw GatewayError.invalid("\(name) must be an ISO 8601 time, e.g. 2026-11-29T10:00:00Z.")
            }
            return date
        }
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...200).contains(value) else { throw GatewayError.invalid("limit must be from 1 to 200.") }
            limit = value
        }
        var cursor: OrderCursor? = nil
        if let token = query.get("cursor") {
            guard let parsed = OrderCursor(token: token) else { throw GatewayError.invalid("cursor is not one this API returned.") }
            cursor = parsed
        }
        let page = try await gateway.orders(
            OrderQuery(
                states: states, createdFrom: try date("createdFrom"), createdBefore: try date("createdBefore"), search: query.get("search"),
                limit: limit, after: cursor))
        return OrderPageResponse(data: page.orders.map { OrderResponse($0) }, nextCursor: page.next?.token)
    }
}
