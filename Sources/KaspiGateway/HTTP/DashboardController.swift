import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import KaspiWeb
import Logging

/// The admin dashboard under `/admin`: signed-in pages, forms guarded by a CSRF token, and
/// the Kaspi QR API's pages on that profile. It reads forms and cookies with Hummingbird's
/// types, calls the service, and renders the `admin-` templates in the admin's language
/// (chosen as on the payer's pages), with times in Kazakhstan's zone.
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
        /// The page's language, and its switcher (none on a form's answer).
        var locale: PageLocale
        /// The zone the page's times are in: `UTC+5`.
        var zone: String
        var language: PageLanguage { locale.language }
    }

    /// A page: the layout's fields and the page's own.
    struct Page<Content> {
        var title: String
        var flash: String?
        var refresh: Int?
        var session: Session?
        var content: Content
        /// The language of a page shown before sign-in; signed-in pages speak the session's.
        var locale: PageLocale? = nil
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
        router.get("/admin/login") { request, _ in loginForm(request) }
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
            return try await form(request) { form, _, session in
                let language = session.language
                var amount: Int? = nil
                if let typed = Form.text(form.amount) {
                    guard let value = Int(typed), value > 0 else { return redirect("/admin/orders/\(id)", text("admin_enter_whole_tenge", language)) }
                    amount = value
                }
                do {
                    let order = try await gateway.refund(orderID: id, amount: amount)
                    return redirect("/admin/orders/\(id)", text("admin_refunded", language, refundedValues(order, language)))
                } catch {
                    return redirect("/admin/orders/\(id)", text("admin_refund_refused", language, ["reason": reason(error, language)]))
                }
            }
        }
        router.get("/admin/refunds") { request, _ in try await view(request) { session in try await refunds(session, flash: flash(request)) } }
        router.post("/admin/refunds/:id/settle") { request, context in
            let id = try context.parameters.require("id")
            return try await form(request) { form, _, session in
                let language = session.language
                guard let orderID = form.order, let outcome = form.outcome, ["succeeded", "failed"].contains(outcome) else {
                    return redirect("/admin/refunds", text("admin_choose_outcome", language))
                }
                do {
                    _ = try await gateway.settleRefund(id: id, orderID: orderID, succeeded: outcome == "succeeded")
                    gateway.logger.notice(
                        "Refund settled by an admin", metadata: ["refund": "\(id)", "order": "\(orderID)", "outcome": "\(outcome)"])
                    let key = outcome == "succeeded" ? "admin_settled_refunded" : "admin_settled_not_refunded"
                    return redirect("/admin/refunds", text(key, language, ["id": id]))
                } catch {
                    return redirect("/admin/refunds", text("admin_not_settled", language, ["reason": reason(error, language)]))
                }
            }
        }
        router.get("/admin/links") { request, _ in try await view(request) { session in try await links(session, flash: flash(request)) } }
        router.post("/admin/links") { request, _ in
            try await form(request) { form, _, session in
                guard let amount = Int(form.amount ?? ""), amount > 0 else {
                    return redirect("/admin/links", text("admin_enter_amount", session.language))
                }
                do {
                    let link = try await gateway.createPaymentLink(
                        amount: amount, description: Form.text(form.description), merchantReference: nil, expiresAt: nil)
                    return Response(status: .seeOther, headers: [.location: "/admin/links/\(link.id)"])
                } catch {
                    return redirect("/admin/links", reason(error, session.language))
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
            return try await form(request) { _, _, session in
                do {
                    try await gateway.resend(messageID: id)
                    return redirect("/admin/events", text("admin_event_queued", session.language, ["id": id]))
                } catch {
                    return redirect("/admin/events", text("admin_event_not_queued", session.language, ["reason": reason(error, session.language)]))
                }
            }
        }
        router.get("/admin/settings") { request, _ in try await view(request) { session in settings(session) } }
        addKaspiQRRoutes(to: router)
    }

    // MARK: Sign-in

    /// The admin's language, as on the payer's pages: `?lang=`, the switcher's cookie, the
    /// browser's, the gateway's default.
    func locale(_ request: Request) -> PageLocale {
        PageLocale(request: request, fallback: PageLanguage(tag: gateway.configuration.defaultLanguage) ?? .ru)
    }

    func loginForm(_ request: Request) -> Response {
        struct Login { var token: String }
        let token = String(GatewayID.make("l", length: 20).dropFirst(2))
        let locale = locale(request)
        var response = pages.page(
            "admin-login", Page(title: text("admin_sign_in", locale.language), session: nil, content: Login(token: token), locale: locale),
            locale: locale
        ).response
        response.setCookie(cookie(Self.loginCookie, token, path: "/admin/login", maxAge: 600))
        return response
    }

    /// The sign-in page when the throttle says wait, with when to come back.
    func throttledSignIn(_ wait: Int, _ language: PageLanguage) -> Response {
        gateway.metrics.signIn(.throttled)
        var page = message(
            text("admin_sign_in", language), Message(text: text("admin_sign_in_throttled", language, ["seconds": String(wait)]), error: true),
            session: nil, locale: PageLocale(language), status: .tooManyRequests)
        page.headers[.retryAfter] = String(wait)
        return page
    }

    @Sendable func signIn(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let client = context.clientAddress
        // A form's answer: in the language of its page, without a switcher.
        let language = locale(request).language
        // Throttled before the password is even hashed: per address and in all.
        if let wait = gateway.adminSignIn.signInThrottle.retryAfter(client: client, now: gateway.now()) {
            return throttledSignIn(wait, language)
        }
        let form = await request.decodeForm(as: Form.self, upTo: 8192)
        guard let token = form?.csrf, let cookie = request.cookies[Self.loginCookie]?.value, Signature.constantTimeEquals(token, cookie) else {
            return message(
                text("admin_sign_in", language),
                Message(
                    text: text("admin_form_expired", language), error: true,
                    link: .init(href: "/admin/login", label: text("admin_sign_in_again", language))),
                session: nil, locale: PageLocale(language), status: .forbidden)
        }
        // Counted before the password is hashed: guesses sent at once cannot all get through
        // before any is counted.
        let attemptAt = gateway.now()
        if let wait = gateway.adminSignIn.signInThrottle.attempt(client: client, now: attemptAt) {
            return throttledSignIn(wait, language)
        }
        guard await gateway.adminSignIn.verifyAdminPassword(form?.password ?? ""), let session = gateway.adminSignIn.newAdminSessionToken() else {
            gateway.metrics.signIn(.refused)
            try? await Task.sleep(for: .milliseconds(300))
            gateway.logger.warning("Dashboard sign-in refused", metadata: ["client": "\(client)"])
            return message(
                text("admin_sign_in", language),
                Message(
                    text: text("admin_wrong_password", language), error: true,
                    link: .init(href: "/admin/login", label: text("admin_try_again", language))),
                session: nil, locale: PageLocale(language), status: .unauthorized)
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

    /// The signed-in session, from its cookie, and what the layout shows of it, in `locale`.
    func signedIn(_ request: Request, _ locale: PageLocale) async -> (AdminSession, Session)? {
        guard let token = request.cookies[Self.sessionCookie]?.value, let session = await gateway.adminSignIn.adminSession(token: token) else {
            return nil
        }
        let qr = gateway.qrProvider
        let now = gateway.now()
        let shown = Session(
            csrf: session.csrf, once: String(GatewayID.make("f", length: 22).dropFirst(2)), kaspi: qr != nil,
            returns: qr?.refundMethod == .customerPresent, invoices: qr?.supportsRemoteInvoices ?? false,
            certificateWarning: gateway.clientCertificate.flatMap { $0.needsRenewal(at: now) ? certificateWarning($0, now, locale.language) : nil },
            locale: locale, zone: LocalFormat.zoneName(at: now))
        return (session, shown)
    }

    /// The banner of a client certificate in its last days, or past them.
    func certificateWarning(_ certificate: ClientCertificate, _ now: Date, _ language: PageLanguage) -> String {
        let values = [
            "path": certificate.path, "date": LocalFormat.time(certificate.notValidAfter, language),
            "days": String(max(0, certificate.daysLeft(at: now))),
        ]
        return text(certificate.secondsLeft(at: now) <= 0 ? "admin_certificate_expired" : "admin_certificate_expires", language, values)
    }

    /// A signed-in page, or a redirect to the sign-in form.
    func view(_ request: Request, _ body: (Session) async throws -> Response) async throws -> Response {
        let locale = locale(request)
        guard let (_, session) = await signedIn(request, locale) else {
            return Response(status: .seeOther, headers: [.location: locale.chosen ? "/admin/login?lang=\(locale.language.rawValue)" : "/admin/login"])
        }
        var response = try await body(session)
        if let cookie = locale.cookie, response.headers[.setCookie] == nil { response.headers[.setCookie] = cookie }
        return response
    }

    /// A signed-in form post with a valid CSRF token, or a refusal. Its answers speak the
    /// language of the page it was sent from, without a switcher.
    func form(
        _ request: Request, once spendsOnce: Bool = true, _ body: (Form, AdminSession, Session) async throws -> Response
    ) async throws -> Response {
        let locale = PageLocale(locale(request).language)
        guard let (admin, session) = await signedIn(request, locale) else { return Response(status: .seeOther, headers: [.location: "/admin/login"]) }
        let language = locale.language
        guard let form = await request.decodeForm(as: Form.self), let csrf = form.csrf, Signature.constantTimeEquals(csrf, admin.csrf) else {
            return message(
                text("admin_refused", language), Message(text: text("admin_stale_form", language), error: true), session: session,
                status: .forbidden)
        }
        guard spendsOnce else { return try await body(form, admin, session) }
        // Each form's submission acts once, whichever instance gets it: the page's token and
        // the form's path are spent in the database, first come first served.
        guard let once = form.once, (8...64).contains(once.count), once.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            return message(
                text("admin_refused", language), Message(text: text("admin_stale_form", language), error: true), session: session,
                status: .forbidden)
        }
        let marker = GatewayID.make("m", length: 16)
        let spent = try await gateway.store.setting("admin.once.\(once):\(request.uri.path)", orInsert: marker)
        guard spent == marker else {
            return message(
                text("admin_already_sent", language), Message(text: text("admin_already_sent_text", language), error: true), session: session,
                status: .conflict)
        }
        return try await body(form, admin, session)
    }

    /// A message of the dashboard's catalog in `language`, with `values` put in.
    func text(_ key: String, _ language: PageLanguage, _ values: [String: String] = [:]) -> String {
        pages.text(key, language, values)
    }

    /// What a failure says to the admin: the service's own words (English, as the API writes
    /// them, with their stable code), or "try again later".
    func reason(_ error: any Error, _ language: PageLanguage) -> String {
        (error as? GatewayError)?.message ?? text("admin_try_later", language)
    }

    /// `refunded` and `amount` of an order, for the messages after a refund.
    func refundedValues(_ order: GatewayOrder, _ language: PageLanguage) -> [String: String] {
        ["refunded": LocalFormat.tenge(order.refundedAmount, language), "amount": LocalFormat.tenge(order.amount, language)]
    }

    func flash(_ request: Request) -> String? { request.uri.queryParameters.get("message").map { String($0) } }

    func redirect(_ path: String, _ message: String) -> Response {
        Response(status: .seeOther, headers: [.location: path + "?" + QueryString.encode([("message", message)])])
    }

    func render<Content>(_ template: String, _ page: Page<Content>, status: HTTPResponse.Status = .ok) -> Response {
        let locale = page.locale ?? page.session?.locale ?? PageLocale(PageLanguage(tag: gateway.configuration.defaultLanguage) ?? .ru)
        var response = pages.page(template, page, locale: locale, status: status).response
        // The language cookie is set by `view` once the page is known to be shown.
        response.headers[.setCookie] = nil
        return response
    }

    func message(
        _ title: String, _ message: Message, session: Session?, locale: PageLocale? = nil, flash: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        render("admin-message", Page(title: title, flash: flash, session: session, content: message, locale: locale), status: status)
    }

    /// A moment in a table: Kazakhstan's date and time (the column names the zone).
    static func time(_ date: Date, _ language: PageLanguage) -> String { LocalFormat.shortTime(date, language) }

    /// An order's state in words; English keeps the API's names.
    static func stateKey(_ state: OrderState) -> String {
        switch state {
        case .created: "state_created"
        case .pending: "state_pending"
        case .paid: "state_paid"
        case .declined: "state_declined"
        case .cancelled: "state_cancelled"
        case .expired: "state_expired"
        }
    }

    /// A line of an order's timeline in words; English keeps the audit trail's names.
    static func eventKey(_ kind: OrderEvent.Kind) -> String {
        switch kind {
        case .created: "event_created"
        case .providerCall: "event_provider_call"
        case .webhook: "event_webhook"
        case .poll: "event_poll"
        case .transition: "event_transition"
        case .admin: "event_admin"
        case .conflict: "event_conflict"
        case .refund: "event_refund"
        }
    }

    /// A refund's status in words.
    static func refundStatusKey(_ status: RefundStatus) -> String {
        switch status {
        case .pending: "refund_pending"
        case .succeeded: "refund_succeeded"
        case .failed: "refund_failed"
        case .unknown: "refund_unknown"
        }
    }

    /// An outgoing event's delivery state in words.
    static func deliveryKey(_ state: OutboxMessage.State) -> String {
        switch state {
        case .pending: "delivery_pending"
        case .delivered: "delivery_delivered"
        case .failed: "delivery_failed"
        }
    }

    /// An order's kind in words.
    static func kindKey(_ kind: OrderKind) -> String {
        switch kind {
        case .redirect: "kind_redirect"
        case .qr: "kind_qr"
        case .link: "kind_link"
        case .remote: "kind_remote"
        }
    }

    /// A payment link's status in words.
    static func linkStatusKey(_ status: Gateway.LinkStatus) -> String {
        switch status {
        case .open: "link_status_open"
        case .processing: "link_status_processing"
        case .paid: "link_status_paid"
        case .expired: "link_status_expired"
        }
    }

    // MARK: Pages

    func orders(_ request: Request, _ session: Session) async throws -> Response {
        struct State {
            var name, label: String
            var selected: Bool
        }
        struct Row {
            var id, reference, amount, state, stateLabel, refunded, created: String
            var needsReview: Bool
        }
        struct Orders {
            var states: [State]
            var search: String
            var orders: [Row]
            var older: String?
        }
        let language = session.language
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
            states: OrderState.allCases.map { State(name: $0.rawValue, label: text(Self.stateKey($0), language), selected: states == [$0]) },
            search: search ?? "",
            orders: page.orders.map { order in
                Row(
                    id: order.id, reference: order.merchantReference ?? "", amount: LocalFormat.tenge(order.amount, language),
                    state: order.state.rawValue, stateLabel: text(Self.stateKey(order.state), language),
                    refunded: order.refundedAmount > 0 ? LocalFormat.tenge(order.refundedAmount, language) : "",
                    created: Self.time(order.createdAt, language), needsReview: order.needsReview)
            }, older: older)
        return render("admin-orders", Page(title: text("admin_orders", language), session: session, content: content))
    }

    func order(_ id: String, _ session: Session, flash: String?) async throws -> Response {
        struct Line { var at, what, detail: String }
        struct Outgoing { var type, state, attempts: String }
        struct Refund {
            var id, amount, status, statusLabel, detail: String
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
            var id, amount, state, stateLabel, reference, providerOrderID, transaction, description, kind, refunded: String
            var needsReview: Bool
            var refundable: String?
            var refunds: [Refund]
            var hasRefunds: Bool
            var timeline: [Line]
            var outgoing: [Outgoing]
            var kaspi: KaspiPart?
        }
        let language = session.language
        let order: GatewayOrder
        do { order = try await gateway.order(id: id) } catch {
            guard error.kind == .notFound else { throw error }
            return message(
                text("admin_order_not_found", language), Message(text: text("admin_no_order", language, ["id": id])), session: session,
                status: .notFound)
        }
        let timeline = try await gateway.events(orderID: id).map { event in
            let change =
                event.kind == .transition || event.kind == .conflict ? (event.toState.map { " → " + text(Self.stateKey($0), language) } ?? "") : ""
            return Line(
                at: LocalFormat.preciseTime(event.at, language), what: text(Self.eventKey(event.kind), language) + change, detail: event.detail)
        }
        var outgoing: [Outgoing] = []
        for message in try await gateway.outgoingEvents(orderID: id, limit: 50) {
            let attempts = try await gateway.store.deliveryAttempts(messageID: message.id)
                .map { attempt in
                    let answer = attempt.statusCode.map(String.init) ?? (attempt.error ?? text("admin_no_answer", language))
                    return text("admin_attempt", language, ["answer": answer, "ms": String(attempt.latencyMs)])
                }
                .joined(separator: ", ")
            let state =
                gateway.configuration.merchantWebhookURL == nil
                ? text("admin_not_sent_no_url", language) : text(Self.deliveryKey(message.state), language)
            outgoing.append(Outgoing(type: message.type, state: state, attempts: attempts))
        }
        let refunds = try await gateway.refunds(orderID: id).map {
            Refund(
                id: $0.id, amount: LocalFormat.tenge($0.amount, language), status: $0.status.rawValue,
                statusLabel: text(Self.refundStatusKey($0.status), language), detail: $0.detail ?? "")
        }
        let remaining = order.amount - order.refundedAmount
        let refundable = order.state == .paid && remaining > 0 && gateway.capabilities.refundMethod == .direct ? remaining : nil
        var kaspi: KaspiPart? = nil
        if let qr = gateway.qrProvider, order.provider == KaspiQRProvider.providerName {
            let plan = order.state == .pending ? qr.pollPlan(for: order, now: gateway.now()) : nil
            let open = order.state == .paid && remaining > 0
            kaspi = KaspiPart(
                paymentID: order.providerPaymentID ?? text("admin_answer_lost", language),
                deadline: plan.map { plan in
                    text(
                        "admin_phase_until", language,
                        ["phase": text(phaseKey(plan.phase), language), "time": LocalFormat.preciseTime(plan.deadline, language)])
                },
                nextPoll: order.nextPollAt.map { LocalFormat.preciseTime($0, language) },
                invoiceActions: order.kind == .remote && (order.state == .pending || order.state == .created),
                manualRefund: open && qr.refundMethod == .manual, customerRefund: open && qr.refundMethod == .customerPresent)
        }
        let content = Order(
            id: order.id, amount: LocalFormat.tenge(order.amount, language), state: order.state.rawValue,
            stateLabel: text(Self.stateKey(order.state), language), reference: order.merchantReference ?? "—",
            providerOrderID: order.providerOrderID, transaction: order.transactionID ?? "—", description: order.description ?? "—",
            kind: text(Self.kindKey(order.kind), language), refunded: LocalFormat.tenge(order.refundedAmount, language),
            needsReview: order.needsReview, refundable: refundable.map { LocalFormat.tenge($0, language) }, refunds: refunds,
            hasRefunds: !refunds.isEmpty, timeline: timeline, outgoing: outgoing, kaspi: kaspi)
        return render(
            "admin-order", Page(title: text("admin_order_title", language, ["id": order.id]), flash: flash, session: session, content: content))
    }

    /// A polling phase of the Kaspi QR API in words.
    func phaseKey(_ phase: String) -> String {
        switch phase {
        case "scan": "phase_scan"
        case "confirmation": "phase_confirmation"
        default: "phase_invoice"
        }
    }

    /// Refunds whose outcome is not known yet, each with the two ways to settle it.
    func refunds(_ session: Session, flash: String?) async throws -> Response {
        struct Row { var id, orderID, amount, status, detail, created: String }
        struct Refunds {
            var refunds: [Row]
            var hasRefunds: Bool
        }
        let language = session.language
        let open = try await gateway.store.unresolvedRefunds(pendingBefore: gateway.now(), limit: 200).map { refund in
            Row(
                id: refund.id, orderID: refund.orderID, amount: LocalFormat.tenge(refund.amount, language),
                status: text(Self.refundStatusKey(refund.status), language), detail: refund.detail ?? "",
                created: Self.time(refund.createdAt, language))
        }
        return render(
            "admin-refunds",
            Page(
                title: text("admin_unsettled_refunds", language), flash: flash, session: session,
                content: Refunds(refunds: open, hasRefunds: !open.isEmpty)))
    }

    func links(_ session: Session, flash: String?) async throws -> Response {
        struct Row { var id, amount, description, status: String }
        struct Links { var links: [Row] }
        let language = session.language
        var rows: [Row] = []
        for link in try await gateway.store.paymentLinks(limit: 100) {
            let (status, _) = try await gateway.status(of: link)
            rows.append(
                Row(
                    id: link.id, amount: LocalFormat.tenge(link.amount, language), description: link.description ?? "",
                    status: text(Self.linkStatusKey(status), language)))
        }
        return render("admin-links", Page(title: text("admin_payment_links", language), flash: flash, session: session, content: Links(links: rows)))
    }

    func link(_ id: String, _ session: Session) async throws -> Response {
        struct Link {
            var amount, description, status, qrCode, url, whatsappURL, smsURL: String
            var orderID: String?
        }
        let language = session.language
        let view: Gateway.PaymentLinkView
        do { view = try await gateway.paymentLink(id: id) } catch {
            return message(
                text("admin_link_not_found", language), Message(text: text("admin_no_link", language)), session: session, status: .notFound)
        }
        let content = Link(
            amount: LocalFormat.tenge(view.link.amount, language), description: view.link.description ?? "",
            status: text(Self.linkStatusKey(view.status), language), qrCode: Data(view.png).base64EncodedString(), url: view.url,
            whatsappURL: view.whatsappURL, smsURL: view.smsURL, orderID: view.order?.id)
        return render("admin-link", Page(title: text("admin_payment_link_title", language, ["id": id]), session: session, content: content))
    }

    func events(_ session: Session, flash: String?) async throws -> Response {
        struct Row {
            var id, type, orderID, state: String
            var attempts: Int
            var lastStatus: String
        }
        struct Events { var events: [Row] }
        let language = session.language
        let rows = try await gateway.outgoingEvents(orderID: nil).map { message in
            Row(
                id: message.id, type: message.type, orderID: message.orderID, state: text(Self.deliveryKey(message.state), language),
                attempts: message.attempts, lastStatus: message.lastStatus.map(String.init) ?? "")
        }
        return render(
            "admin-events", Page(title: text("admin_outgoing_events", language), flash: flash, session: session, content: Events(events: rows)))
    }

    func settings(_ session: Session) -> Response {
        struct Row { var name, value: String }
        struct Settings { var rows: [Row] }
        let language = session.language
        let c = gateway.configuration
        let provider = gateway.qrProvider.map {
            text("admin_setting_provider_qr", language, ["name": gateway.provider.name, "scheme": $0.scheme.rawValue])
        }
        let rows: [(String, String)] = [
            ("admin_setting_listening", "\(c.host):\(c.port)"),
            ("admin_setting_public_url", c.publicURL ?? text("admin_setting_public_url_default", language, ["url": gateway.publicBase])),
            ("admin_setting_database", c.databaseDescription),
            ("admin_setting_provider", provider ?? gateway.provider.name),
            ("admin_setting_api_keys", text("admin_setting_api_keys_value", language, ["count": String(c.apiKeyHashes.count)])),
            ("admin_setting_events_url", c.merchantWebhookURL ?? text("admin_none", language)),
            (
                "admin_setting_events_secret",
                c.merchantWebhookSecret == nil ? text("admin_none", language) : text("admin_setting_redacted_secret", language)
            ),
            ("admin_setting_first_poll", text("admin_seconds", language, ["seconds": String(c.firstPollAfter)])),
            (
                "admin_setting_poll_interval",
                text("admin_setting_poll_interval_value", language, ["from": String(c.pollInterval), "to": String(c.maxPollInterval)])
            ),
            (
                "admin_setting_expire_after",
                text("admin_setting_expire_after_value", language, ["seconds": String(c.expireAfter), "qr": String(c.qrExpireAfter)])
            ),
            ("admin_setting_instance", c.instanceID),
            ("admin_setting_default_language", c.defaultLanguage),
            (
                "admin_setting_password",
                text(c.adminPassword == nil ? "admin_setting_password_generated" : "admin_setting_password_configured", language)
            ),
        ]
        return render(
            "admin-settings",
            Page(
                title: text("admin_settings", language), session: session,
                content: Settings(rows: rows.map { Row(name: text($0.0, language), value: $0.1) })))
    }
}
