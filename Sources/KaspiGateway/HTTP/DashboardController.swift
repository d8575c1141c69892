import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiWeb
import Logging

/// The admin dashboard under `/admin`: signed-in pages, forms guarded by a CSRF token, and
/// the Kaspi QR API's pages on that profile. It reads forms and cookies with Hummingbird's
/// types, calls the service, and renders the `admin/` templates.
struct DashboardController {
    let gateway: Gateway
    let pages: PageLibrary
    /// Return QRs made here, shown while the customer scans.
    let returnQRs = ReturnQRCache()

    static let sessionCookie = "kk_admin"
    static let loginCookie = "kk_login"

    /// Every field any dashboard form sends; each form uses some.
    struct Form: Decodable {
        var csrf: String?
        var once: String?
        var password: String?
        var amount: String?
        var description: String?
        var order: String?
        var outcome: String?
        var note: String?
        var phone: String?
        var comment: String?
        var confirmed: String?

        /// A non-empty text field.
        static func text(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
    }

    /// What the layout needs about the signed-in admin: the CSRF token and which of the
    /// Kaspi QR API's pages exist.
    struct Session {
        var csrf: String
        /// A token for this page's forms, spent by the first submission of each: a
        /// double-click or a resubmitted page acts once.
        var once: String
        var kaspi: Bool
        var returns: Bool
        var invoices: Bool
        /// The client certificate's end, in its last 30 days or once past.
        var certificateWarning: String?
    }

    /// A page: the layout's fields and the page's own.
    struct Page<Content> {
        var title: String
        var flash: String?
        var refresh: Int?
        var session: Session?
        var content: Content
    }

    struct Message {
        struct Link {
            var href: String
            var label: String
        }
        var text: String
        var error = false
        var link: Link?
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/admin/login") { _, _ in loginForm() }
        router.post("/admin/login", use: signIn)
        router.post("/admin/logout") { request, _ in
            // Signing out twice is harmless: no once-only token.
            try await form(request, once: false) { _, session, _ in
                try await gateway.adminSignIn.signOut(session)
                var response = Response(status: .seeOther, headers: [.location: "/admin/login"])
                response.setCookie(cookie(Self.sessionCookie, "", path: "/admin", maxAge: 0))
                return response
            }
        }
        router.get("/admin") { request, _ in try await view(request) { session in try await orders(request, session) } }
        router.get("/admin/orders/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await view(request) { session in try await order(id, session, flash: flash(request)) }
        }
        router.post("/admin/orders/:id/refund") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { form, _, _ in
                var amount: Int? = nil
                if let text = Form.text(form.amount) {
                    guard let value = Int(text), value > 0 else { return redirect("/admin/orders/\(id)", "Enter a whole number of tenge.") }
                    amount = value
                }
                do {
                    let order = try await gateway.refund(orderID: id, amount: amount)
                    return redirect("/admin/orders/\(id)", "Refunded; \(order.refundedAmount) of \(order.amount) refunded in all.")
                } catch {
                    return redirect("/admin/orders/\(id)", "Refund refused: \(Self.text(error))")
                }
            }
        }
        router.get("/admin/refunds") { request, _ in try await view(request) { session in try await refunds(session, flash: flash(request)) } }
        router.post("/admin/refunds/:id/settle") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { form, _, _ in
                guard let orderID = form.order, let outcome = form.outcome, ["succeeded", "failed"].contains(outcome) else {
                    return redirect("/admin/refunds", "Choose whether Kaspi refunded it.")
                }
                do {
                    _ = try await gateway.settleRefund(id: id, orderID: orderID, succeeded: outcome == "succeeded")
                    gateway.logger.notice(
                        "Refund settled by an admin", metadata: ["refund": "\(id)", "order": "\(orderID)", "outcome": "\(outcome)"])
                    return redirect("/admin/refunds", "Refund \(id) settled as \(outcome == "succeeded" ? "refunded" : "not refunded").")
                } catch {
                    return redirect("/admin/refunds", "Not settled: \(Self.text(error))")
                }
            }
        }
        router.get("/admin/links") { request, _ in try await view(request) { session in try await links(session, flash: flash(request)) } }
        router.post("/admin/links") { request, _ in
            try await form(request) { form, _, _ in
                guard let amount = Int(form.amount ?? ""), amount > 0 else { return redirect("/admin/links", "Enter the amount in whole tenge.") }
                do {
                    let link = try await gateway.createPaymentLink(
                        amount: amount, description: Form.text(form.description), merchantReference: nil, expiresAt: nil)
                    return Response(status: .seeOther, headers: [.location: "/admin/links/\(link.id)"])
                } catch {
                    return redirect("/admin/links", Self.text(error))
                }
            }
        }
        router.get("/admin/links/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await view(request) { session in try await link(id, session) }
        }
        router.get("/admin/events") { request, _ in try await view(request) { session in try await events(session, flash: flash(request)) } }
        router.post("/admin/events/:id/resend") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { _, _, _ in
                do {
                    try await gateway.resend(messageID: id)
                    return redirect("/admin/events", "Event \(id) queued for delivery again.")
                } catch {
                    return redirect("/admin/events", "Not queued: \(Self.text(error))")
                }
            }
        }
        router.get("/admin/settings") { request, _ in try await view(request) { session in settings(session) } }
        addKaspiQRRoutes(to: router)
    }

    // MARK: Sign-in

    func loginForm() -> Response {
        struct Login { var token: String }
        let token = String(GatewayID.make("l", length: 20).dropFirst(2))
        var response = pages.page("admin-login", Page(title: "Sign in", session: nil, content: Login(token: token))).response
        response.setCookie(cookie(Self.loginCookie, token, path: "/admin/login", maxAge: 600))
        return response
    }

    /// The sign-in page when the throttle says wait, with when to come back.
    func throttledSignIn(_ wait: Int) -> Response {
        gateway.metrics.signIn(.throttled)
        var page = message(
            "Sign in", Message(text: "Too many failed sign-ins; try again in \(wait) seconds.", error: true), session: nil,
            status: .tooManyRequests)
        page.headers[.retryAfter] = String(wait)
        return page
    }

    @Sendable func signIn(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let client = context.clientAddress
        // Throttled before the password is even hashed: per address and in all.
        if let wait = gateway.adminSignIn.signInThrottle.retryAfter(client: client, now: gateway.now()) {
            return throttledSignIn(wait)
        }
        let form = await request.decodeForm(as: Form.self, upTo: 8192)
        guard let token = form?.csrf, let cookie = request.cookies[Self.loginCookie]?.value, Signature.constantTimeEquals(token, cookie) else {
            return message(
                "Sign in", Message(text: "The form expired;", error: true, link: .init(href: "/admin/login", label: "sign in again.")), session: nil,
                status: .forbidden)
        }
        // Counted before the password is hashed: guesses sent at once cannot all get through
        // before any is counted.
        let attemptAt = gateway.now()
        if let wait = gateway.adminSignIn.signInThrottle.attempt(client: client, now: attemptAt) {
            return throttledSignIn(wait)
        }
        guard await gateway.adminSignIn.verifyAdminPassword(form?.password ?? ""), let session = gateway.adminSignIn.newAdminSessionToken() else {
            gateway.metrics.signIn(.refused)
            try? await Task.sleep(for: .milliseconds(300))
            gateway.logger.warning("Dashboard sign-in refused", metadata: ["client": "\(client)"])
            return message(
                "Sign in", Message(text: "Wrong password.", error: true, link: .init(href: "/admin/login", label: "Try again.")), session: nil,
                status: .unauthorized)
        }
        gateway.adminSignIn.signInThrottle.succeeded(client: client, attemptAt: attemptAt)
        gateway.metrics.signIn(.accepted)
        var response = Response(status: .seeOther, headers: [.location: "/admin"])
        response.setCookie(self.cookie(Self.sessionCookie, session, path: "/admin", maxAge: AdminSignIn.adminSessionLifetime))
        return response
    }

    /// An HttpOnly, SameSite=Strict cookie, Secure when the dashboard is served over https.
    func cookie(_ name: String, _ value: String, path: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: path, secure: gateway.adminSignIn.servesHTTPS, httpOnly: true, sameSite: .strict)
    }

    // MARK: Plumbing

    /// The signed-in session, from its cookie, and what the layout shows of it.
    func signedIn(_ request: Request) async -> (AdminSession, Session)? {
        guard let token = request.cookies[Self.sessionCookie]?.value, let session = await gateway.adminSignIn.adminSession(token: token) else {
            return nil
        }
        let qr = gateway.qrProvider
        let shown = Session(
            csrf: session.csrf, once: String(GatewayID.make("f", length: 22).dropFirst(2)), kaspi: qr != nil,
            returns: qr?.refundMethod == .customerPresent, invoices: qr?.supportsRemoteInvoices ?? false,
            certificateWarning: gateway.clientCertificate.flatMap { $0.needsRenewal(at: gateway.now()) ? $0.summary(at: gateway.now()) : nil })
        return (session, shown)
    }

    /// A signed-in page, or a redirect to the sign-in form.
    func view(_ request: Request, _ body: (Session) async throws -> Response) async throws -> Response {
        guard let (_, session) = await signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/admin/login"]) }
        return try await body(session)
    }

    /// A signed-in form post with a valid CSRF token, or a refusal.
    func form(
        _ request: Request, once spendsOnce: Bool = true, _ body: (Form, AdminSession, Session) async throws -> Response
    ) async throws -> Response {
        guard let (admin, session) = await signedIn(request) else { return Response(status: .seeOther, headers: [.location: "/admin/login"]) }
        guard let form = await request.decodeForm(as: Form.self), let csrf = form.csrf, Signature.constantTimeEquals(csrf, admin.csrf) else {
            return message(
                "Refused", Message(text: "The form's security token is missing or stale; go back, reload and try again.", error: true),
                session: session,
                status: .forbidden)
        }
        guard spendsOnce else { return try await body(form, admin, session) }
        // Each form's submission acts once, whichever instance gets it: the page's token and
        // the form's path are spent in the database, first come first served.
        guard let once = form.once, (8...64).contains(once.count), once.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            return message(
                "Refused", Message(text: "The form's security token is missing or stale; go back, reload and try again.", error: true),
                session: session, status: .forbidden)
        }
        let marker = GatewayID.make("m", length: 16)
        let spent = try await gateway.store.setting("admin.once.\(once):\(request.uri.path)", orInsert: marker)
        guard spent == marker else {
            return message(
                "Already sent", Message(text: "This form was already sent once; reload the page to see what it did.", error: true),
                session: session, status: .conflict)
        }
        return try await body(form, admin, session)
    }

    /// What a failure says to the admin.
    static func text(_ error: any Error) -> String { (error as? GatewayError)?.message ?? "try again later." }

    func flash(_ request: Request) -> String? { request.uri.queryParameters.get("message").map { String($0) } }

    func redirect(_ path: String, _ message: String) -> Response {
        Response(status: .seeOther, headers: [.location: path + "?" + QueryString.encode([("message", message)])])
    }

    func render<Content>(_ template: String, _ page: Page<Content>, status: HTTPResponse.Status = .ok) -> Response {
        pages.page(template, page, status: status).response
    }

    func message(_ title: String, _ message: Message, session: Session?, flash: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        render("admin-message", Page(title: title, flash: flash, session: session, content: message), status: status)
    }

    static func time(_ date: Date, _ length: Int = 19) -> String { String(GatewayJSON.iso(date).prefix(length)) }

    // MARK: Pages

    func orders(_ request: Request, _ session: Session) async throws -> Response {
        struct State {
            var name: String
            var selected: Bool
        }
        struct Row {
            var id, reference, amount, state, refunded, created: String
            var needsReview: Bool
        }
        struct Orders {
            var states: [State]
            var search: String
            var orders: [Row]
            var older: String?
        }
        let query = request.uri.queryParameters
        let states = Set((query.get("status") ?? "").split(separator: ",").compactMap { OrderState(rawValue: String($0)) })
        let search = query.get("search").flatMap { $0.isEmpty ? nil : String($0) }
        let page = try await gateway.orders(
            OrderQuery(states: states, search: search, limit: 50, after: query.get("cursor").flatMap { OrderCursor(token: String($0)) }))
        let older = page.next.map { next in
            "/admin?"
                + QueryString.encode([("cursor", next.token), ("status", query.get("status").map { String($0) } ?? ""), ("search", search ?? "")])
        }
        let content = Orders(
            states: OrderState.allCases.map { State(name: $0.rawValue, selected: states == [$0]) }, search: search ?? "",
            orders: page.orders.map { order in
                Row(
                    id: order.id, reference: order.merchantReference ?? "", amount: Amount.formatted(tenge: order.amount),
                    state: order.state.rawValue,
                    refunded: order.refundedAmount > 0 ? String(order.refundedAmount) : "", created: Self.time(order.createdAt),
                    needsReview: order.needsReview)
            }, older: older)
        return render("admin-orders", Page(title: "Orders", session: session, content: content))
    }

    func order(_ id: String, _ session: Session, flash: String?) async throws -> Response {
        struct Line { var at, what, detail: String }
        struct Outgoing { var type, state, attempts: String }
        struct Refund {
            var id: String
            var amount: Int
            var status: String
            var detail: String
        }
        struct KaspiPart {
            var paymentID: String
            var deadline: String?
            var nextPoll: String?
            var invoiceActions: Bool
            var manualRefund: Bool
            var customerRefund: Bool
        }
        struct Order {
            var id, amount, state, reference, providerOrderID, transaction, description, kind: String
            var refunded: Int
            var needsReview: Bool
            var refundable: Int?
            var refunds: [Refund]
            var hasRefunds: Bool
            var timeline: [Line]
            var outgoing: [Outgoing]
            var kaspi: KaspiPart?
        }
        let order: GatewayOrder
        do { order = try await gateway.order(id: id) } catch {
            guard error.kind == .notFound else { throw error }
            return message("Order not found", Message(text: "No order \(id)."), session: session, status: .notFound)
        }
        let timeline = try await gateway.events(orderID: id).map { event in
            let change = event.kind == .transition || event.kind == .conflict ? (event.toState.map { " → \($0.rawValue)" } ?? "") : ""
            return Line(at: Self.time(event.at, 23), what: event.kind.rawValue + change, detail: event.detail)
        }
        var outgoing: [Outgoing] = []
        for message in try await gateway.outgoingEvents(orderID: id, limit: 50) {
            let attempts = try await gateway.store.deliveryAttempts(messageID: message.id)
                .map { "\($0.statusCode.map(String.init) ?? ($0.error ?? "no answer")) in \($0.latencyMs) ms" }.joined(separator: ", ")
            let state = gateway.configuration.merchantWebhookURL == nil ? "not sent (no events URL configured)" : message.state.rawValue
            outgoing.append(Outgoing(type: message.type, state: state, attempts: attempts))
        }
        let refunds = try await gateway.refunds(orderID: id).map {
            Refund(id: $0.id, amount: $0.amount, status: $0.status.rawValue, detail: $0.detail ?? "")
        }
        let remaining = order.amount - order.refundedAmount
        let refundable = order.state == .paid && remaining > 0 && gateway.capabilities.refundMethod == .direct ? remaining : nil
        var kaspi: KaspiPart? = nil
        if let qr = gateway.qrProvider, order.provider == KaspiQRProvider.providerName {
            let plan = order.state == .pending ? qr.pollPlan(for: order, now: gateway.now()) : nil
            let open = order.state == .paid && remaining > 0
            kaspi = KaspiPart(
                paymentID: order.providerPaymentID ?? "— (Kaspi's answer was lost)",
                deadline: plan.map { "\($0.phase) phase until \(GatewayJSON.iso($0.deadline))" }, nextPoll: order.nextPollAt.map(GatewayJSON.iso),
                invoiceActions: order.kind == .remote && (order.state == .pending || order.state == .created),
                manualRefund: open && qr.refundMethod == .manual, customerRefund: open && qr.refundMethod == .customerPresent)
        }
        let content = Order(
            id: order.id, amount: Amount.formatted(tenge: order.amount), state: order.state.rawValue, reference: order.merchantReference ?? "—",
            providerOrderID: order.providerOrderID, transaction: order.transactionID ?? "—", description: order.description ?? "—",
            kind: order.kind.rawValue, refunded: order.refundedAmount, needsReview: order.needsReview, refundable: refundable, refunds: refunds,
            hasRefunds: !refunds.isEmpty, timeline: timeline, outgoing: outgoing, kaspi: kaspi)
        return render("admin-order", Page(title: "Order \(order.id)", flash: flash, session: session, content: content))
    }

    /// Refunds whose outcome is not known yet, each with the two ways to settle it.
    func refunds(_ session: Session, flash: String?) async throws -> Response {
        struct Row { var id, orderID, amount, status, detail, created: String }
        struct Refunds {
            var refunds: [Row]
            var hasRefunds: Bool
        }
        let open = try await gateway.store.unresolvedRefunds(pendingBefore: gateway.now(), limit: 200).map { refund in
            Row(
                id: refund.id, orderID: refund.orderID, amount: Amount.formatted(tenge: refund.amount), status: refund.status.rawValue,
                detail: refund.detail ?? "", created: Self.time(refund.createdAt))
        }
        return render(
            "admin-refunds",
            Page(title: "Unsettled refunds", flash: flash, session: session, content: Refunds(refunds: open, hasRefunds: !open.isEmpty)))
    }

    func links(_ session: Session, flash: String?) async throws -> Response {
        struct Row { var id, amount, description, status: String }
        struct Links { var links: [Row] }
        var rows: [Row] = []
        for link in try await gateway.store.paymentLinks(limit: 100) {
            let (status, _) = try await gateway.status(of: link)
            rows.append(Row(id: link.id, amount: Amount.formatted(tenge: link.amount), description: link.description ?? "", status: status.rawValue))
        }
        return render("admin-links", Page(title: "Payment links", flash: flash, session: session, content: Links(links: rows)))
    }

    func link(_ id: String, _ session: Session) async throws -> Response {
        struct Link {
            var amount, description, status, qrCode, url, whatsappURL, smsURL: String
            var orderID: String?
        }
        let view: Gateway.PaymentLinkView
        do { view = try await gateway.paymentLink(id: id) } catch {
            return message("Link not found", Message(text: "No such link."), session: session, status: .notFound)
        }
        let content = Link(
            amount: Amount.formatted(tenge: view.link.amount), description: view.link.description ?? "", status: view.status.rawValue,
            qrCode: Data(view.png).base64EncodedString(), url: view.url, whatsappURL: view.whatsappURL, smsURL: view.smsURL, orderID: view.order?.id)
        return render("admin-link", Page(title: "Payment link \(id)", session: session, content: content))
    }

    func events(_ session: Session, flash: String?) async throws -> Response {
        struct Row {
            var id, type, orderID, state: String
            var attempts: Int
            var lastStatus: String
        }
        struct Events { var events: [Row] }
        let rows = try await gateway.outgoingEvents(orderID: nil).map { message in
            Row(
                id: message.id, type: message.type, orderID: message.orderID, state: message.state.rawValue, attempts: message.attempts,
                lastStatus: message.lastStatus.map(String.init) ?? "")
        }
        return render("admin-events", Page(title: "Outgoing events", flash: flash, session: session, content: Events(events: rows)))
    }

    func settings(_ session: Session) -> Response {
        struct Row { var name, value: String }
        struct Settings { var rows: [Row] }
        let c = gateway.configuration
        let rows: [(String, String)] = [
            ("Listening on", "\(c.host):\(c.port)"), ("Public URL", c.publicURL ?? "\(gateway.publicBase) (loopback default)"),
            ("Database", c.databaseDescription),
            ("Provider", gateway.qrProvider.map { "\(gateway.provider.name) (Kaspi QR API, scheme \($0.scheme.rawValue))" } ?? gateway.provider.name),
            ("Merchant API keys", "\(c.apiKeyHashes.count) configured (stored as SHA-256)"),
            ("Events URL", c.merchantWebhookURL ?? "(none)"), ("Events secret", c.merchantWebhookSecret == nil ? "(none)" : "whsec_… (redacted)"),
            ("First poll after", "\(c.firstPollAfter) s"), ("Poll interval", "\(c.pollInterval) s up to \(c.maxPollInterval) s"),
            ("Expire after", "\(c.expireAfter) s (QR \(c.qrExpireAfter) s)"), ("Instance", c.instanceID),
            ("Admin password", c.adminPassword == nil ? "generated at first start (hash stored)" : "from configuration (redacted)"),
        ]
        return render("admin-settings", Page(title: "Settings", session: session, content: Settings(rows: rows.map { Row(name: $0.0, value: $0.1) })))
    }
}
