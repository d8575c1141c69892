public import Foundation
internal import OpenAPIRuntime

extension KaspiGatewayClient {
    /// `POST /v1/checkouts`.
    public struct Checkouts: Sendable {
        let client: Client

        /// Creates a checkout; send the payer to its `paymentUrl`.
        ///
        /// - Parameters:
        ///   - request: the amount, and your reference and description.
        ///   - idempotencyKey: yours (your order number, say); without one, a key is made for
        ///     this call and its retries.
        public func create(_ request: CheckoutRequest, idempotencyKey: String? = nil) async throws(GatewayClientError) -> Order {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let output = try await call { try await client.createCheckout(headers: .init(idempotencyKey: key), body: .json(request)) }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }
    }

    /// `POST /v1/qr-checkouts`.
    public struct QRCheckouts: Sendable {
        let client: Client

        /// Creates a QR checkout; show its `qrCode`.
        public func create(_ request: CheckoutRequest, idempotencyKey: String? = nil) async throws(GatewayClientError) -> QROrder {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let output = try await call { try await client.createQRCheckout(headers: .init(idempotencyKey: key), body: .json(request)) }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }
    }

    /// `/v1/orders`.
    public struct Orders: Sendable {
        let client: Client

        /// One order.
        public func get(_ id: String) async throws(GatewayClientError) -> Order {
            let output = try await call { try await client.getOrder(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// One page of orders, newest first, and the cursor of the next.
        public func page(
            status: String? = nil, createdFrom: Date? = nil, createdBefore: Date? = nil, search: String? = nil, limit: Int? = nil,
            cursor: String? = nil
        ) async throws(GatewayClientError) -> (orders: [Order], nextCursor: String?) {
            let query = Operations.ListOrders.Input.Query(
                status: status, createdFrom: createdFrom, createdBefore: createdBefore, search: search, limit: limit, cursor: cursor)
            let output = try await call { try await client.listOrders(query: query) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            let page = try await call { try ok.body.json }
            return (page.data, page.nextCursor)
        }

        /// Every order that matches, newest first, fetching pages of `pageSize` as the loop
        /// goes (following `nextCursor`).
        public func list(
            status: String? = nil, createdFrom: Date? = nil, createdBefore: Date? = nil, search: String? = nil, pageSize: Int = 100
        ) -> OrderSequence {
            OrderSequence(orders: self, status: status, createdFrom: createdFrom, createdBefore: createdBefore, search: search, pageSize: pageSize)
        }

        /// The order's timeline (what happened to it, in order).
        public func events(_ id: String) async throws(GatewayClientError) -> Timeline {
            let output = try await call { try await client.getOrderEvents(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// Asks Kaspi for the order's status now ("I have paid").
        public func refresh(_ id: String) async throws(GatewayClientError) -> Order {
            let output = try await call { try await client.refreshOrder(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// Cancels a remote invoice not yet paid (the Kaspi QR API's r3).
        public func cancel(_ id: String) async throws(GatewayClientError) -> Order {
            let output = try await call { try await client.cancelRemoteInvoice(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }
    }

    /// Every order of a listing, page after page.
    public struct OrderSequence: AsyncSequence, Sendable {
        public typealias Element = Order
        let orders: Orders
        let status: String?
        let createdFrom: Date?
        let createdBefore: Date?
        let search: String?
        let pageSize: Int

        public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

        /// Fetches the next page when the current one is used up.
        public struct Iterator: AsyncIteratorProtocol {
            let sequence: OrderSequence
            var buffer: [Order] = []
            var cursor: String? = nil
            var finished = false

            init(sequence: OrderSequence) { self.sequence = sequence }

            public mutating func next() async throws(GatewayClientError) -> Order? {
                while buffer.isEmpty {
                    guard !finished else { return nil }
                    let page = try await sequence.orders.page(
                        status: sequence.status, createdFrom: sequence.createdFrom, createdBefore: sequence.createdBefore, search: sequence.search,
                        limit: sequence.pageSize, cursor: cursor)
                    buffer = page.orders.reversed()
                    cursor = page.nextCursor
                    finished = page.nextCursor == nil
                }
                return buffer.popLast()
            }
        }
    }

    /// `/v1/orders/{id}/refunds`.
    public struct Refunds: Sendable {
        let client: Client

        /// Refunds all (no `amount`) or part of a paid order through Kaspi.
        ///
        /// - Parameters:
        ///   - orderID: the paid order.
        ///   - amount: whole tenge; nil refunds what remains.
        ///   - returnID: the Kaspi QR API's r2: the return the customer scanned.
        ///   - idempotencyKey: yours; without one, a key is made for this call and its retries.
        public func create(
            orderID: String, amount: Int? = nil, returnID: String? = nil, idempotencyKey: String? = nil
        ) async throws(GatewayClientError)
            -> Order
        {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let body = Components.Schemas.RefundRequest(amount: amount, returnId: returnID)
            let output = try await call {
                try await client.refundOrder(path: .init(id: orderID), headers: .init(idempotencyKey: key), body: .json(body))
            }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }

        /// The order's refunds and their status.
        public func list(orderID: String) async throws(GatewayClientError) -> RefundList {
            let output = try await call { try await client.listOrderRefunds(path: .init(id: orderID)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }
    }

    /// `/v1/orders/{id}/manual-refunds`.
    public struct ManualRefunds: Sendable {
        let client: Client

        /// Records a refund made in the Kaspi Pay app.
        public func create(orderID: String, amount: Int, note: String? = nil, idempotencyKey: String? = nil) async throws(GatewayClientError) -> Order
        {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let output = try await call {
                try await client.recordManualRefund(
                    path: .init(id: orderID), headers: .init(idempotencyKey: key), body: .json(.init(amount: amount, note: note)))
            }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }
    }

    /// `/v1/payment-links`.
    public struct PaymentLinks: Sendable {
        let client: Client

        /// A link anyone can pay once (send it by WhatsApp or SMS).
        public func create(
            amount: Int, description: String? = nil, merchantReference: String? = nil, idempotencyKey: String? = nil
        )
            async throws(GatewayClientError) -> PaymentLink
        {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let output = try await call {
                try await client.createPaymentLink(
                    headers: .init(idempotencyKey: key),
                    body: .json(.init(amount: amount, description: description, merchantReference: merchantReference)))
            }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }

        /// One link.
        public func get(_ id: String) async throws(GatewayClientError) -> PaymentLink {
            let output = try await call { try await client.getPaymentLink(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }
    }

    /// `/v1/events`.
    public struct Events: Sendable {
        let client: Client

        /// The newest events sent to your systems (of one order when given), newest first;
        /// `nextCursor` is the newest one's position, to follow from with ``after(_:limit:)``.
        public func list(orderID: String? = nil, limit: Int? = nil) async throws(GatewayClientError) -> EventList {
            let output = try await call { try await client.listEvents(query: .init(orderId: orderID, limit: limit)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// Every event written after `cursor` (a `nextCursor` this API returned), oldest first,
        /// and where to continue: the same cursor when nothing is new.
        public func after(_ cursor: String, limit: Int? = nil) async throws(GatewayClientError) -> EventList {
            let output = try await call { try await client.listEvents(query: .init(after: cursor, limit: limit)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// Sends an event again.
        public func resend(_ id: String) async throws(GatewayClientError) {
            let output = try await call { try await client.resendEvent(path: .init(id: id)) }
            guard case .accepted = output else { throw unexpected(output) }
        }
    }
}

extension KaspiGatewayClient {
    /// A return QR the customer scans with the Kaspi app (the Kaspi QR API's r2).
    public typealias ReturnQR = Operations.CreateReturn.Output.Created.Body.JsonPayload
    /// A return's state, and the purchases of the customer who scanned it.
    public typealias Return = Operations.GetReturn.Output.Ok.Body.JsonPayload
    /// Who a phone number belongs to, for a remote invoice.
    public typealias Customer = Operations.RemoteClientInfo.Output.Ok.Body.JsonPayload

    /// Refunds with the customer present (`/v1/returns`; the Kaspi QR API's r2).
    public var returns: Returns { Returns(client: client) }
    /// Invoices billed to a phone number (`/v1/remote-invoices`; the Kaspi QR API's r3).
    public var remoteInvoices: RemoteInvoices { RemoteInvoices(client: client) }

    /// `/v1/returns`.
    public struct Returns: Sendable {
        let client: Client

        /// A return QR for the customer to scan; then refund with its id as `returnID`.
        public func create() async throws(GatewayClientError) -> ReturnQR {
            let output = try await call { try await client.createReturn() }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }

        /// A return's state and, once scanned, the customer's purchases.
        public func get(_ id: String) async throws(GatewayClientError) -> Return {
            let output = try await call { try await client.getReturn(path: .init(id: id)) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }
    }

    /// `/v1/remote-invoices`.
    public struct RemoteInvoices: Sendable {
        let client: Client

        /// Whom an invoice to `phoneNumber` would reach (Kaspi's name for the customer).
        public func clientInfo(phoneNumber: String) async throws(GatewayClientError) -> Customer {
            let output = try await call { try await client.remoteClientInfo(body: .json(.init(phoneNumber: phoneNumber))) }
            guard case .ok(let ok) = output else { throw unexpected(output) }
            return try await call { try ok.body.json }
        }

        /// Bills `amount` to the Kaspi customer with `phoneNumber`; the order is paid when they
        /// pay in the Kaspi app.
        public func create(
            phoneNumber: String, amount: Int, comment: String? = nil, description: String? = nil, merchantReference: String? = nil,
            idempotencyKey: String? = nil
        ) async throws(GatewayClientError) -> Order {
            let key = idempotencyKey ?? KaspiGatewayClient.newKey()
            let body = Operations.CreateRemoteInvoice.Input.Body.JsonPayload(
                amount: amount, phoneNumber: phoneNumber, comment: comment, description: description, merchantReference: merchantReference)
            let output = try await call { try await client.createRemoteInvoice(headers: .init(idempotencyKey: key), body: .json(body)) }
            guard case .created(let created) = output else { throw unexpected(output) }
            return try await call { try created.body.json }
        }
    }
}
