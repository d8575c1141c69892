import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import Logging
import NIOCore
import ServiceLifecycle
import KaspiSupport

extension Gateway {
    /// The gateway's HTTP application: the merchant API under `/v1`, the public webhook and
    /// return pages, health checks, and the background workers as services.
    ///
    /// - Parameters:
    ///   - extraServices: services to run alongside (for example the PostgreSQL pool).
    ///   - onServerRunning: called with the bound port.
    public func application(extraServices: [any Service] = [], onServerRunning: (@Sendable (Int) async -> Void)? = nil) -> some ApplicationProtocol {
        Application(
            router: router(),
            // Connections that stop sending (slowloris) are closed rather than held forever.
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaspi-gateway"),
            services: extraServices + [GatewayWorker(gateway: self)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                self.boundPort.store(port, ordering: .relaxed)
                await onServerRunning?(port)
            },
            logger: logger)
    }

    func router() -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.get("/health") { _, _ in Self.json(.ok, #"{"status":"ok"}"#) }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.registry.emitToBuffer())))
        }
        router.get("/ready") { _, _ in
            do {
                _ = try await self.store.schemaVersion()
                return Self.json(.ok, #"{"status":"ready"}"#)
            } catch {
                return Self.json(.serviceUnavailable, #"{"status":"storage unavailable"}"#)
            }
        }
        router.post("/webhooks/kaspi") { request, _ in
            do {
                let body = try await request.body.collect(upTo: 16 * 1024)
                _ = try await self.handleWebhook(Array(body.readableBytesView))
                return Self.json(.ok, #"{"received":true}"#)
            } catch let error as GatewayAPIError {
                return Self.error(error)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                return Self.error(GatewayAPIError(413, "WEBHOOK_BODY_TOO_LARGE", "A webhook body is at most 16 KiB."))
            } catch {
                return Self.error(GatewayAPIError(400, "BODY_UNREADABLE", "The request body could not be read."))
            }
        }
        addDashboard(to: router)
        router.get("/pay/return/:id") { request, context in await self.resultPage(request, id: context.parameters.get("id") ?? "") }
        router.get("/pay/fail/:id") { request, context in await self.resultPage(request, id: context.parameters.get("id") ?? "") }

        let api = router.group("v1")
        api.post("checkouts") { request, _ in await self.api(request, idempotent: true) { body, key in try await self.checkout(body, kind: .redirect, reserving: key) } }
        api.post("qr-checkouts") { request, _ in await self.api(request, idempotent: true) { body, key in try await self.checkout(body, kind: .qr, reserving: key) } }
        api.get("orders/:id") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                guard let order = try await self.store.order(id: id) else { throw GatewayAPIError.notFound(id) }
                return (200, Self.orderJSON(order))
            }
        }
        api.get("orders/:id/events") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                guard try await self.store.order(id: id) != nil else { throw GatewayAPIError.notFound(id) }
                let events = try await self.store.events(orderId: id).map { event in
                    #"{"at":"\#(Self.iso(event.at))","kind":"\#(event.kind.rawValue)","from":\#(event.fromState.map { "\"\($0.rawValue)\"" } ?? "null"),"to":\#(event.toState.map { "\"\($0.rawValue)\"" } ?? "null"),"detail":\#(Self.string(event.detail))}"#
                }
                return (200, #"{"data":[\#(events.joined(separator: ","))]}"#)
            }
        }
        api.get("orders/:id/refunds") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                guard try await self.store.order(id: id) != nil else { throw GatewayAPIError.notFound(id) }
                let refunds = try await self.store.refunds(orderId: id).map { r in
                    #"{"id":\#(Self.string(r.id)),"amount":\#(r.amount),"status":"\#(r.status.rawValue)","detail":\#(r.detail.map(Self.string) ?? "null"),"createdAt":"\#(Self.iso(r.createdAt))","updatedAt":"\#(Self.iso(r.updatedAt))"}"#
                }
                return (200, #"{"data":[\#(refunds.joined(separator: ","))]}"#)
            }
        }
        api.get("orders") { request, _ in await self.api(request) { _, _ in try await self.listOrders(request) } }
        api.post("orders/:id/refunds") { request, context in
            await self.api(request, idempotent: true) { body, key in
                let id = context.parameters.get("id") ?? ""
                var amount: Int? = nil
                var returnId: String? = nil
                if case .object(let object) = body {
                    switch object["amount"] {
                    case nil, .null?: break
                    case .integer(let n)?: amount = Int(clamping: n)
                    default: throw GatewayAPIError.invalid("amount must be an integer number of tenge.")
                    }
                    switch object["returnId"] {
                    case nil, .null?: break
                    case .string(let text)? where !text.isEmpty && text.count <= 64: returnId = text
                    default: throw GatewayAPIError.invalid("returnId must be the id of a return QR the customer scanned.")
                    }
                }
                let order = try await self.refund(orderId: id, amount: amount, customerReturnId: returnId, reserving: key)
                return (201, Self.orderJSON(order))
            }
        }
        api.post("returns") { request, _ in
            await self.api(request) { _, _ in
                let created = try await self.createCustomerReturn()
                return (201, #"{"id":\#(Self.string(created.id)),"status":"QrTokenCreated","qrToken":\#(Self.string(created.qrToken)),"qrCode":"\#(Data(created.png).base64EncodedString())","expiresAt":"\#(Self.iso(created.expiresAt))","pollingIntervalSeconds":\#(created.pollingInterval)}"#)
            }
        }
        api.get("returns/:id") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                let (status, orders) = try await self.customerReturn(id: id)
                let purchases = status.purchases.map { p -> String in
                    let order = orders[p.providerPaymentId]
                    let refundable = order.map { $0.state == .paid ? $0.amount - $0.refundedAmount : 0 } ?? 0
                    return #"{"paymentId":\#(Self.string(p.providerPaymentId)),"amount":\#(p.amount),"transactionDate":\#(p.at.map { "\"\(Self.iso($0))\"" } ?? "null"),"orderId":\#(order.map { Self.string($0.id) } ?? "null"),"refundableAmount":\#(refundable)}"#
                }
                return (200, #"{"id":\#(Self.string(id)),"status":\#(Self.string(status.status)),"identified":\#(status.identified),"purchases":[\#(purchases.joined(separator: ","))]}"#)
            }
        }
        api.post("remote-invoices/client-info") { request, _ in
            await self.api(request) { body, _ in
                guard case .object(let object) = body, case .string(let phone)? = object["phoneNumber"] else {
                    throw GatewayAPIError.invalid("The body must be a JSON object with phoneNumber.")
                }
                let name = try await self.remoteClientName(phoneNumber: phone)
                return (200, #"{"phoneNumber":\#(Self.string(phone)),"clientName":\#(Self.string(name))}"#)
            }
        }
        api.post("remote-invoices") { request, _ in
            await self.api(request, idempotent: true) { body, key in
                guard case .object(let object) = body else { throw GatewayAPIError.invalid("The body must be a JSON object with amount and phoneNumber.") }
                guard case .integer(let amount)? = object["amount"] else { throw GatewayAPIError.invalid("amount must be an integer number of tenge.") }
                func string(_ name: String) throws -> String? {
                    switch object[name] {
                    case nil, .null?: return nil
                    case .string(let text)?: return text
                    default: throw GatewayAPIError.invalid("\(name) must be a string.")
                    }
                }
                guard let phone = try string("phoneNumber") else { throw GatewayAPIError.invalid("phoneNumber is required.") }
                let request = CheckoutRequest(
                    amount: Int(clamping: amount), description: try string("description"), merchantReference: try string("merchantReference"))
                let order = try await self.createRemoteInvoice(request, phoneNumber: phone, comment: try string("comment"), reserving: key)
                return (201, Self.orderJSON(order))
            }
        }
        api.post("orders/:id/refresh") { request, context in
            await self.api(request) { _, _ in
                let order = try await self.refreshOnRequest(orderId: context.parameters.get("id") ?? "")
                return (200, Self.orderJSON(order))
            }
        }
        api.post("orders/:id/cancel") { request, context in
            await self.api(request) { _, _ in
                let order = try await self.cancelRemoteInvoice(orderId: context.parameters.get("id") ?? "")
                return (200, Self.orderJSON(order))
            }
        }
        api.post("orders/:id/manual-refunds") { request, context in
            await self.api(request, idempotent: true) { body, key in
                let id = context.parameters.get("id") ?? ""
                guard case .object(let object) = body else { throw GatewayAPIError.invalid("The body must be a JSON object with amount.") }
                guard case .integer(let n)? = object["amount"] else { throw GatewayAPIError.invalid("amount must be an integer number of tenge.") }
                var note: String? = nil
                switch object["note"] {
                case nil, .null?: break
                case .string(let text)?: note = text
                default: throw GatewayAPIError.invalid("note must be a string.")
                }
                let order = try await self.recordManualRefund(orderId: id, amount: Int(clamping: n), note: note, reserving: key)
                return (201, Self.orderJSON(order))
            }
        }
        addPaymentLinks(to: router, api: api)
        api.get("events") { request, _ in
            await self.api(request) { _, _ in
                let orderId = request.uri.queryParameters.get("orderId")
                let messages = try await self.store.outboxMessages(orderId: orderId, limit: 100)
                let items = messages.map { m in
                    #"{"id":"\#(m.id)","type":"\#(m.type)","orderId":"\#(m.orderId)","state":"\#(m.state.rawValue)","attempts":\#(m.attempts),"lastStatus":\#(m.lastStatus.map(String.init) ?? "null"),"createdAt":"\#(Self.iso(m.createdAt))"}"#
                }
                return (200, #"{"data":[\#(items.joined(separator: ","))]}"#)
            }
        }
        api.post("events/:id/resend") { request, context in
            await self.api(request) { _, _ in
                let id = context.parameters.get("id") ?? ""
                try await self.store.requeue(messageId: id, now: self.now())
                return (202, #"{"requeued":"\#(id)"}"#)
            }
        }
        return router
    }

    // MARK: API plumbing

    /// Authenticates, parses the JSON body, applies the Idempotency-Key, runs `body`, and
    /// writes `{"error": …}` for any failure.
    func api(_ request: Request, idempotent: Bool = false, _ body: (JSONValue, IdempotencyReservation?) async throws -> (Int, String)) async -> Response {
        var reservation: IdempotencyReservation? = nil
        do {
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw GatewayAPIError.unauthorized }
            let hash = GatewayConfiguration.hash(apiKey: String(header.dropFirst(7)))
            guard configuration.apiKeyHashes.contains(where: { Signature.constantTimeEquals($0, hash) }) else { throw GatewayAPIError.unauthorized }
            var json: JSONValue = .null
            var raw: [UInt8] = []
            if request.method == .post {
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: 64 * 1024) } catch let error as HTTPError where error.status == .contentTooLarge {
                    throw GatewayAPIError(413, "BODY_TOO_LARGE", "A request body is at most 64 KiB.")
                } catch {
                    throw GatewayAPIError(400, "BODY_UNREADABLE", "The request body could not be read.")
                }
                raw = Array(buffer.readableBytesView)
                if !raw.isEmpty {
                    guard let parsed = JSONValue.parse(raw), case .object = parsed else { throw GatewayAPIError.invalid("The body must be a JSON object.") }
                    json = parsed
                }
            }
            if idempotent, let idempotencyKey = request.headers[.idempotencyKey] {
                guard !idempotencyKey.isEmpty, idempotencyKey.count <= 255 else { throw GatewayAPIError.invalid("Idempotency-Key must be 1 to 255 characters.") }
                let scope = String(hash.prefix(16))
                let requestHash = Hex.encode(Array(SHA256.hash(data: Data(request.uri.path.utf8) + Data(raw))))
                let at = now()
                let expiredBefore = at.addingTimeInterval(-configuration.idempotencyKeyLifetime)
                switch try await store.idempotencyRecord(scope: scope, key: idempotencyKey, requestHash: requestHash, expiredBefore: expiredBefore) {
                case .done(let stored)?:
                    var response = Self.json(.init(code: stored.status), stored.body)
                    response.headers[.idempotentReplayed] = "true"
                    return response
                case .inProgress(let since, let resource)?:
                    guard at.timeIntervalSince(since) < configuration.idempotencyInterruptedAfter else {
                        throw GatewayAPIError(409, "IDEMPOTENCY_INTERRUPTED",
                            "The first request with this Idempotency-Key was interrupted after it started\(resource.map { " (it created \($0))" } ?? ""); look that up, and use a new key for a new attempt.")
                    }
                    throw GatewayAPIError.from(StoreError.idempotencyInProgress(key: idempotencyKey))
                case nil:
                    // Reserved by the work's first write, in the same transaction.
                    reservation = IdempotencyReservation(scope: scope, key: idempotencyKey, requestHash: requestHash, owner: GatewayID.make("req"), at: at, expiredBefore: expiredBefore)
                }
            }
            let (status, text) = try await body(json, reservation)
            if let reservation {
                do { try await store.saveIdempotentResponse(reservation, response: IdempotentResponse(status: status, body: text), reservedOnly: false) } catch {
                    logger.error("Could not store an idempotent answer; its key stays reserved", metadata: ["error.code": "\((error as? StoreError)?.code ?? "UNKNOWN")"])
                }
            }
            return Self.json(.init(code: status), text)
        } catch {
            let failure: GatewayAPIError
            switch error {
            case let error as GatewayAPIError: failure = error
            case let error as StoreError: failure = .from(error)
            default:
                logger.error("Unexpected API failure", metadata: ["error": "\(String(describing: error).prefix(160))"])
                failure = GatewayAPIError(500, "INTERNAL_ERROR", "Something went wrong; look the resource up before you retry.")
            }
            // An error after the key was reserved is the final answer (an effect may have
            // happened); before that, nothing happened and nothing is stored (only the
            // request whose write reserved the key can write its answer).
            if let reservation {
                try? await store.saveIdempotentResponse(reservation, response: IdempotentResponse(status: failure.status, body: Self.errorBody(failure)), reservedOnly: true)
            }
            return Self.error(failure)
        }
    }

    func checkout(_ body: JSONValue, kind: OrderKind, reserving reservation: IdempotencyReservation?) async throws -> (Int, String) {
        guard case .object(let object) = body else { throw GatewayAPIError.invalid("The body must be a JSON object with an amount.") }
        guard case .integer(let amount)? = object["amount"] else { throw GatewayAPIError.invalid("amount must be an integer number of tenge.") }
        func string(_ name: String) throws -> String? {
            switch object[name] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw GatewayAPIError.invalid("\(name) must be a string.")
            }
        }
        var metadata: String? = nil
        switch object["metadata"] {
        case nil, .null?: break
        case .object(let fields)?:
            // Stored and returned as canonical JSON (keys sorted).
            metadata = Self.encode(.object(fields))
        default: throw GatewayAPIError.invalid("metadata must be a JSON object.")
        }
        let checkout = CheckoutRequest(
            amount: Int(clamping: amount), description: try string("description"), merchantReference: try string("merchantReference"),
            metadata: metadata, mobileReturnURL: try string("mobileReturnUrl"))
        let (order, qr) = try await createCheckout(checkout, kind: kind, reserving: reservation)
        var json = Self.orderJSON(order)
        if let qr {
            json.removeLast()
            json += #","qrCode":"\#(Data(qr.png).base64EncodedString())","qrToken":\#(Self.string(qr.token))}"#
        }
        return (201, json)
    }

    func listOrders(_ request: Request) async throws -> (Int, String) {
        let query = request.uri.queryParameters
        var states: Set<OrderState> = []
        if let status = query.get("status") {
            for name in status.split(separator: ",") {
                guard let state = OrderState(rawValue: String(name)) else {
                    throw GatewayAPIError.invalid("status must be among created, pending, paid, declined, cancelled, expired.")
                }
                states.insert(state)
            }
        }
        func date(_ name: String) throws -> Date? {
            guard let text = query.get(name) else { return nil }
            guard let date = Self.parseISO(text) else { throw GatewayAPIError.invalid("\(name) must be an ISO 8601 time, e.g. 2026-11-29T10:00:00Z.") }
            return date
        }
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...200).contains(value) else { throw GatewayAPIError.invalid("limit must be from 1 to 200.") }
            limit = value
        }
        var cursor: OrderCursor? = nil
        if let token = query.get("cursor") {
            guard let parsed = OrderCursor(token: token) else { throw GatewayAPIError.invalid("cursor is not one this API returned.") }
            cursor = parsed
        }
        let page = try await store.orders(OrderQuery(states: states, createdFrom: try date("createdFrom"), createdBefore: try date("createdBefore"), search: query.get("search"), limit: limit, after: cursor))
        let next = page.next.map { "\"\($0.token)\"" } ?? "null"
        return (200, #"{"data":[\#(page.orders.map(Self.orderJSON).joined(separator: ","))],"nextCursor":\#(next)}"#)
    }

    // MARK: Return pages

    /// The return and fail pages never trust the URL: they ask the provider (the polling
    /// fallback) and show paid, pending (refreshing itself) or failed; a mobile order is sent
    /// back to the app in the guide's format.
    func resultPage(_ request: Request, id: String) async -> Response {
        guard var order = try? await store.order(id: id) else {
            return Self.html(.notFound, Self.page("Payment not found", "<p>This payment is unknown.</p>"))
        }
        if !order.state.isFinal {
            if let refreshed = try? await refreshStatus(order, source: .returnPage) { order = refreshed }
        }
        let outcome: String
        switch order.state {
        case .paid: outcome = "success"
        case .created, .pending: outcome = "pending"
        case .declined, .cancelled, .expired: outcome = "failed"
        }
        if let mobile = order.mobileReturnURL, var components = URLComponents(string: mobile) {
            var items = components.queryItems ?? []
            items.append(URLQueryItem(name: "status", value: outcome))
            items.append(URLQueryItem(name: "orderId", value: order.merchantReference ?? order.id))
            components.queryItems = items
            if let url = components.string { return Response(status: .seeOther, headers: [.location: url]) }
        }
        let amount = Amount.formatted(tenge: order.amount)
        switch outcome {
        case "success":
            return Self.html(.ok, Self.page("Payment received", "<p class=\"big\">Paid \(Self.escape(amount))</p><p>Thank you! Order \(Self.escape(order.merchantReference ?? order.id)).</p>"))
        case "pending":
            return Self.html(.ok, Self.page("Payment processing", "<p class=\"big\">Processing…</p><p>We are waiting for Kaspi to confirm your payment of \(Self.escape(amount)). This page refreshes by itself.</p>", refresh: 3))
        default:
            return Self.html(.ok, Self.page("Payment failed", "<p class=\"big\">Not paid</p><p>The payment of \(Self.escape(amount)) was not completed. No money was taken.</p>"))
        }
    }

    // MARK: Rendering

    static func orderJSON(_ o: GatewayOrder) -> String {
        var fields = [
            #""id":\#(string(o.id))"#, #""state":"\#(o.state.rawValue)""#, #""kind":"\#(o.kind.rawValue)""#, #""amount":\#(o.amount)"#,
            #""refundedAmount":\#(o.refundedAmount)"#, #""currency":"KZT""#, #""provider":\#(string(o.provider))"#,
            #""providerOrderId":\#(string(o.providerOrderId))"#, #""needsReview":\#(o.needsReview)"#,
            #""createdAt":"\#(iso(o.createdAt))""#, #""updatedAt":"\#(iso(o.updatedAt))""#,
        ]
        if let v = o.description { fields.append(#""description":\#(string(v))"#) }
        if let v = o.merchantReference { fields.append(#""merchantReference":\#(string(v))"#) }
        if let v = o.metadata { fields.append(#""metadata":\#(v)"#) }
        if let v = o.mobileReturnURL { fields.append(#""mobileReturnUrl":\#(string(v))"#) }
        if let v = o.paymentURL { fields.append(#""paymentUrl":\#(string(v))"#) }
        if let v = o.transactionId { fields.append(#""transactionId":\#(string(v))"#) }
        if let v = o.providerPaymentId { fields.append(#""providerPaymentId":\#(string(v))"#) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func encode(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .integer(let n): String(n)
        case .number(let d): String(d)
        case .string(let s): string(s)
        case .array(let a): "[" + a.map(encode).joined(separator: ",") + "]"
        case .object(let o): "{" + o.sorted { $0.key < $1.key }.map { string($0.key) + ":" + encode($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func string(_ text: String) -> String { JSONText.string(text) }

    /// Parses an ISO 8601 time with or without fractional seconds.
    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    private static let isoStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// `2026-11-29T07:54:55.123Z`. The format style is pure Swift; an ISO8601DateFormatter
    /// per call would set up an ICU formatter each time.
    static func iso(_ date: Date) -> String {
        date.formatted(isoStyle)
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func errorBody(_ error: GatewayAPIError) -> String {
        #"{"error":{"code":\#(string(error.code)),"message":\#(string(error.message))}}"#
    }

    static func error(_ error: GatewayAPIError) -> Response {
        var response = json(.init(code: error.status), errorBody(error))
        if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
        return response
    }

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func page(_ title: String, _ body: String, refresh: Int? = nil) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        \(refresh.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")<title>\(escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;color:#222}.big{font-size:2rem;font-weight:700}</style>
        </head><body><h1>\(escape(title))</h1>\(body)</body></html>
        """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }
}

/// Reconciliation and outgoing-event delivery, as one service that stops gracefully.
struct GatewayWorker: Service {
    let gateway: Gateway

    func run() async throws {
        let interval = Duration.milliseconds(Int64(gateway.configuration.workerInterval * 1000))
        await gateway.releaseOwnLeases()
        await withTaskCancellationOrGracefulShutdownHandler {
            var lastCleanup = ContinuousClock.now - .seconds(3600)
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await gateway.reconcileOnce()
                    try await gateway.deliverEventsOnce()
                    if ContinuousClock.now - lastCleanup >= .seconds(gateway.configuration.maintenanceInterval) {
                        lastCleanup = ContinuousClock.now
                        try await gateway.cleanUpOnce()
                        try await gateway.resolveRefundsOnce()
                    }
                } catch {
                    gateway.logger.warning("Background work failed; retrying", metadata: ["error": "\(String(describing: error).prefix(160))"])
                }
                try? await Task.sleep(for: interval)
            }
        } onCancelOrGracefulShutdown: {}
    }
}
