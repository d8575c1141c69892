import Crypto
import _CryptoExtras
import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiPay
import QRCodeEncoder
import NIOCore
import Synchronization

/// The admin dashboard's secrets, prepared at start.
struct AdminSecrets: Sendable {
    /// PBKDF2-HMAC-SHA256 of the password, with its random salt and rounds.
    var passwordHash: [UInt8]
    var salt: [UInt8]
    var rounds: Int
    /// Signs session cookies and CSRF tokens; shared by instances through the database.
    var sessionKey: SymmetricKey
}

/// A signed-in admin session.
struct AdminSession: Sendable {
    var nonce: String
    var csrf: String
}

extension Gateway {
    /// Prepares the dashboard's secrets. With no password configured, one is generated the
    /// first time and returned so that it can be printed once; later starts reuse its hash.
    ///
    /// - Returns: the generated password, when one was generated now.
    @discardableResult
    public func prepareAdmin() async throws -> String? {
        let sessionSecret = try await store.setting("admin.session_key", orInsert: Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString())
        let key = SymmetricKey(data: Data(base64Encoded: sessionSecret) ?? Data(sessionSecret.utf8))
        var generated: String? = nil
        let hashed: (salt: [UInt8], hash: [UInt8], rounds: Int)
        if let password = configuration.adminPassword {
            hashed = Self.hashPassword(password)
        } else if try await store.setting(Self.passwordSetting) == nil, let legacy = try await store.setting("admin.password") {
            // Stored by an earlier version (20,000 rounds): upgraded at the next sign-in.
            let parts = legacy.split(separator: ".").map { Array(Data(base64Encoded: String($0)) ?? Data()) }
            hashed = (parts.first ?? [], parts.count > 1 ? parts[1] : [], 20_000)
        } else {
            let candidate = String(GatewayID.make("pw", length: 16).dropFirst(3))
            let encoded = Self.encodePassword(Self.hashPassword(candidate))
            let stored = try await store.setting(Self.passwordSetting, orInsert: encoded)
            if stored == encoded { generated = candidate }
            hashed = Self.decodePassword(stored) ?? ([], [], Self.pbkdf2Rounds)
        }
        admin.withLock { $0 = AdminSecrets(passwordHash: hashed.hash, salt: hashed.salt, rounds: hashed.rounds, sessionKey: key) }
        return generated
    }

    static let passwordSetting = "admin.password.v2"

    /// OWASP's figure for PBKDF2-HMAC-SHA256.
    static let pbkdf2Rounds = 600_000

    /// A random salt and the password's PBKDF2-HMAC-SHA256.
    static func hashPassword(_ password: String) -> (salt: [UInt8], hash: [UInt8], rounds: Int) {
        let salt = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        return (salt, pbkdf2(password, salt: salt, rounds: pbkdf2Rounds), pbkdf2Rounds)
    }

    /// `rounds.salt.hash`, the salt and hash in base64.
    static func encodePassword(_ hashed: (salt: [UInt8], hash: [UInt8], rounds: Int)) -> String {
        "\(hashed.rounds).\(Data(hashed.salt).base64EncodedString()).\(Data(hashed.hash).base64EncodedString())"
    }

    static func decodePassword(_ text: String) -> (salt: [UInt8], hash: [UInt8], rounds: Int)? {
        let parts = text.split(separator: ".")
        guard parts.count == 3, let rounds = Int(parts[0]), rounds > 0, let salt = Data(base64Encoded: String(parts[1])),
            let hash = Data(base64Encoded: String(parts[2]))
        else { return nil }
        return (Array(salt), Array(hash), rounds)
    }

    /// PBKDF2-HMAC-SHA256 through swift-crypto, 32 bytes.
    static func pbkdf2(_ password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        let key = try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        return key?.withUnsafeBytes { Array($0) } ?? []
    }

    /// Whether `password` is the admin's, in constant time; a password stored with fewer
    /// rounds than today's is stored again with today's once it is proven.
    func verifyAdminPassword(_ password: String) async -> Bool {
        guard let secrets = admin.withLock({ $0 }), !secrets.passwordHash.isEmpty else { return false }
        let candidate = Self.pbkdf2(password, salt: secrets.salt, rounds: secrets.rounds)
        guard Signature.constantTimeEquals(Data(candidate).base64EncodedString(), Data(secrets.passwordHash).base64EncodedString()) else { return false }
        if secrets.rounds < Self.pbkdf2Rounds, configuration.adminPassword == nil,
            let stored = try? await store.setting(Self.passwordSetting, orInsert: Self.encodePassword(Self.hashPassword(password))),
            let upgraded = Self.decodePassword(stored)
        {
            admin.withLock { $0?.passwordHash = upgraded.hash; $0?.salt = upgraded.salt; $0?.rounds = upgraded.rounds }
            logger.info("Dashboard password hash upgraded to \(Self.pbkdf2Rounds) PBKDF2 rounds")
        }
        return true
    }

    /// `; Secure` when the dashboard is served over https.
    var secureCookie: String { (configuration.publicURL?.lowercased().hasPrefix("https://") ?? false) ? "; Secure" : "" }

    private func mac(_ text: String, _ key: SymmetricKey) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func cookie(_ request: Request, _ name: String) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == name { return String(pair[1]) }
        }
        return nil
    }

    /// The signed-in session, if the cookie is genuine, unexpired and not signed out.
    func session(_ request: Request) async -> AdminSession? {
        guard let secrets = admin.withLock({ $0 }), let value = Self.cookie(request, "kk_admin") else { return nil }
        let parts = value.split(separator: ".").map(String.init)
        guard parts.count == 3, let expiry = Double(parts[0]), expiry > now().timeIntervalSince1970,
            Signature.constantTimeEquals(parts[2], mac("session:\(parts[0]):\(parts[1])", secrets.sessionKey))
        else { return nil }
        // Signed-out sessions are remembered in the database, so every instance refuses them.
        // When the database cannot say, the session is refused (fail closed).
        do {
            guard try await store.setting("admin.signed_out.\(parts[1])") == nil else { return nil }
        } catch {
            return nil
        }
        return AdminSession(nonce: parts[1], csrf: mac("csrf:\(parts[1])", secrets.sessionKey))
    }

    func newSessionCookie() -> String? {
        guard let secrets = admin.withLock({ $0 }) else { return nil }
        let expiry = String(Int(now().timeIntervalSince1970 + 12 * 3600))
        let nonce = GatewayID.make("s", length: 20).dropFirst(2)
        return "kk_admin=\(expiry).\(nonce).\(mac("session:\(expiry):\(nonce)", secrets.sessionKey)); Path=/admin; HttpOnly; SameSite=Strict; Max-Age=43200\(secureCookie)"
    }

    func addDashboard(to router: Router<GatewayRequestContext>) {
        router.get("/admin/login") { _, _ in
            let token = String(GatewayID.make("l", length: 20).dropFirst(2))
            var response = Self.html(.ok, self.adminPage("Sign in", signedIn: nil, """
                <form method="post" action="/admin/login" class="card">
                <input type="hidden" name="csrf" value="\(token)">
                <label>Password <input type="password" name="password" id="password" autofocus required></label>
                <button type="submit" id="sign-in">Sign in</button></form>
                """))
            response.headers[.setCookie] = "kk_login=\(token); Path=/admin/login; HttpOnly; SameSite=Strict; Max-Age=600\(self.secureCookie)"
            return response
        }
        router.post("/admin/login") { request, context in
            let client = context.clientAddress
            // Throttled before the password is even hashed: per address and in all.
            if let wait = self.signInThrottle.retryAfter(client: client, now: self.now()) {
                self.metrics.signIn("throttled")
                var response = Self.html(.tooManyRequests, self.adminPage("Sign in", signedIn: nil, "<p class=\"error\">Too many failed sign-ins; try again in \(wait) seconds.</p>"))
                response.headers[.retryAfter] = String(wait)
                return response
            }
            let form = Self.form(try await request.body.collect(upTo: 8192))
            guard let token = form["csrf"], let cookie = Self.cookie(request, "kk_login"), Signature.constantTimeEquals(token, cookie) else {
                return Self.html(.forbidden, self.adminPage("Sign in", signedIn: nil, "<p class=\"error\">The form expired; <a href=\"/admin/login\">sign in again</a>.</p>"))
            }
            guard await self.verifyAdminPassword(form["password"] ?? ""), let cookie = self.newSessionCookie() else {
                self.signInThrottle.failed(client: client, now: self.now())
                self.metrics.signIn("refused")
                try? await Task.sleep(for: .milliseconds(300))
                self.logger.warning("Dashboard sign-in refused", metadata: ["client": "\(client)"])
                return Self.html(.unauthorized, self.adminPage("Sign in", signedIn: nil, "<p class=\"error\">Wrong password. <a href=\"/admin/login\">Try again</a>.</p>"))
            }
            self.signInThrottle.succeeded(client: client)
            self.metrics.signIn("accepted")
            return Response(status: .seeOther, headers: [.location: "/admin", .setCookie: cookie])
        }
        router.post("/admin/logout") { request, _ in
            try await self.adminForm(request) { _, session in
                _ = try await self.store.setting("admin.signed_out.\(session.nonce)", orInsert: Self.iso(self.now()))
                return Response(status: .seeOther, headers: [.location: "/admin/login", .setCookie: "kk_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0\(self.secureCookie)"])
            }
        }
        router.get("/admin") { request, _ in
            try await self.adminView(request) { session in try await self.ordersPage(request, session) }
        }
        router.get("/admin/orders/:id") { request, context in
            try await self.adminView(request) { session in try await self.orderPage(context.parameters.get("id") ?? "", session, message: request.uri.queryParameters.get("message")) }
        }
        router.post("/admin/orders/:id/refund") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { form, _ in
                var amount: Int? = nil
                if let text = form["amount"], !text.isEmpty {
                    guard let value = Int(text), value > 0 else { return Self.redirect("/admin/orders/\(id)", message: "Enter a whole number of tenge.") }
                    amount = value
                }
                do {
                    let order = try await self.refund(orderId: id, amount: amount)
                    return Self.redirect("/admin/orders/\(id)", message: "Refunded; \(order.refundedAmount) of \(order.amount) refunded in all.")
                } catch {
                    return Self.redirect("/admin/orders/\(id)", message: "Refund refused: \((error as? GatewayAPIError)?.message ?? "try again later.")")
                }
            }
        }
        router.get("/admin/refunds") { request, _ in
            try await self.adminView(request) { session in try await self.refundsPage(session, message: request.uri.queryParameters.get("message")) }
        }
        router.post("/admin/refunds/:id/settle") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { form, _ in
                guard let orderId = form["order"], let outcome = form["outcome"], ["succeeded", "failed"].contains(outcome) else {
                    return Self.redirect("/admin/refunds", message: "Choose whether Kaspi refunded it.")
                }
                do {
                    _ = try await self.settleRefund(id: id, orderId: orderId, succeeded: outcome == "succeeded")
                    self.logger.notice("Refund settled by an admin", metadata: ["refund": "\(id)", "order": "\(orderId)", "outcome": "\(outcome)"])
                    return Self.redirect("/admin/refunds", message: "Refund \(id) settled as \(outcome == "succeeded" ? "refunded" : "not refunded").")
                } catch {
                    return Self.redirect("/admin/refunds", message: "Not settled: \((error as? GatewayAPIError)?.message ?? "try again later.")")
                }
            }
        }
        router.get("/admin/links") { request, _ in
            try await self.adminView(request) { session in try await self.linksPage(session, request: request) }
        }
        router.post("/admin/links") { request, _ in
            try await self.adminForm(request) { form, _ in
                guard let amount = Int(form["amount"] ?? ""), amount > 0 else { return Self.redirect("/admin/links", message: "Enter the amount in whole tenge.") }
                let description = (form["description"] ?? "").isEmpty ? nil : form["description"]
                do {
                    let link = try await self.createPaymentLink(amount: amount, description: description, merchantReference: nil, expiresAt: nil)
                    return Response(status: .seeOther, headers: [.location: "/admin/links/\(link.id)"])
                } catch {
                    return Self.redirect("/admin/links", message: (error as? GatewayAPIError)?.message ?? "Could not create the link; try again.")
                }
            }
        }
        router.get("/admin/links/:id") { request, context in
            try await self.adminView(request) { session in
                let id = context.parameters.get("id") ?? ""
                guard let link = try await self.store.paymentLink(id: id) else { return self.adminPage("Link not found", signedIn: session, "<p>No such link.</p>") }
                let (status, order) = try await self.status(of: link)
                let base = self.publicBase
                let json = Self.linkJSON(link, base: base, status: status, order: order)
                let fields = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
                return self.adminPage("Payment link \(id)", signedIn: session, """
                    <p class="big">\(Self.escape(Amount.formatted(tenge: link.amount)))</p><p>\(Self.escape(link.description ?? ""))</p>
                    <p>Status: <strong id="link-status">\(status.rawValue)</strong>\(order.map { " · order <a href=\"/admin/orders/\($0.id)\">\($0.id)</a>" } ?? "")</p>
                    <img class="qr" src="data:image/png;base64,\(fields["qrCode"] as? String ?? "")" alt="QR code of the link">
                    <p><label>Link <input readonly value="\(Self.escape(fields["url"] as? String ?? ""))" id="link-url" size="50"></label></p>
                    <p><label>WhatsApp <input readonly value="\(Self.escape(fields["whatsappUrl"] as? String ?? ""))" size="50"></label></p>
                    <p><label>SMS <input readonly value="\(Self.escape(fields["smsUrl"] as? String ?? ""))" size="50"></label></p>
                    """)
            }
        }
        router.get("/admin/events") { request, _ in
            try await self.adminView(request) { session in try await self.eventsPage(session, message: request.uri.queryParameters.get("message")) }
        }
        router.post("/admin/events/:id/resend") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await self.adminForm(request) { _, _ in
                try await self.store.requeue(messageId: id, now: self.now())
                return Self.redirect("/admin/events", message: "Event \(id) queued for delivery again.")
            }
        }
        router.get("/admin/settings") { request, _ in
            try await self.adminView(request) { session in self.settingsPage(session) }
        }
        addQRDashboard(to: router)
    }

    static func redirect(_ path: String, message: String) -> Response {
        Response(status: .seeOther, headers: [.location: path + "?message=" + queryValue(message)])
    }

    /// A signed-in page, or a redirect to the sign-in form.
    func adminView(_ request: Request, _ body: (AdminSession) async throws -> String) async throws -> Response {
        guard let session = await session(request) else { return Response(status: .seeOther, headers: [.location: "/admin/login"]) }
        return Self.html(.ok, try await body(session))
    }

    /// A signed-in form post with a valid CSRF token, or a refusal.
    func adminForm(_ request: Request, _ body: ([String: String], AdminSession) async throws -> Response) async throws -> Response {
        guard let session = await session(request) else { return Response(status: .seeOther, headers: [.location: "/admin/login"]) }
        let form = Self.form(try await request.body.collect(upTo: 16 * 1024))
        guard let token = form["csrf"], Signature.constantTimeEquals(token, session.csrf) else {
            return Self.html(.forbidden, adminPage("Refused", signedIn: session, "<p class=\"error\">The form's security token is missing or stale; go back, reload and try again.</p>"))
        }
        return try await body(form, session)
    }

    func adminPage(_ title: String, signedIn session: AdminSession?, _ body: String, message: String? = nil) -> String {
        let nav = session.map { s in
            """
            <nav><a href="/admin">Orders</a> <a href="/admin/links">Payment links</a> <a href="/admin/events">Events</a> <a href="/admin/refunds">Refunds</a>\(qrNavigation) <a href="/admin/settings">Settings</a>
            <form method="post" action="/admin/logout" class="inline"><input type="hidden" name="csrf" value="\(s.csrf)"><button type="submit" id="sign-out">Sign out</button></form></nav>
            """
        } ?? ""
        let flash = message.map { "<p class=\"flash\" id=\"flash\">\(Self.escape($0))</p>" } ?? ""
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.escape(title)) · KaspiKit gateway</title>
            <style>body{font-family:system-ui,sans-serif;max-width:62rem;margin:1.5rem auto;padding:0 1rem;color:#222}
            nav{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ddd;padding-bottom:.6rem;margin-bottom:1rem}nav a{color:#f14635;font-weight:600;text-decoration:none}
            table{border-collapse:collapse;width:100%}th,td{text-align:left;border-bottom:1px solid #eee;padding:.35rem .4rem;font-size:.92rem}
            .inline{display:inline;margin-left:auto}.inline-form{display:inline}.big{font-size:1.6rem;font-weight:700}.flash{background:#eef7ee;padding:.5rem .8rem;border-radius:.4rem}
            .error{color:#b00}.review{color:#b00;font-weight:700}.card{max-width:22rem;display:grid;gap:.8rem}.qr{width:200px;height:200px;image-rendering:pixelated}
            .state-paid{color:#070}.state-declined,.state-cancelled,.state-expired{color:#a00}button{padding:.35rem .8rem}</style></head>
            <body><h1>\(Self.escape(title))</h1>\(nav)\(flash)\(body)</body></html>
            """
    }

    func ordersPage(_ request: Request, _ session: AdminSession) async throws -> String {
        let query = request.uri.queryParameters
        let states = Set((query.get("status") ?? "").split(separator: ",").compactMap { OrderState(rawValue: String($0)) })
        let search = query.get("search").flatMap { $0.isEmpty ? nil : $0 }
        let page = try await store.orders(OrderQuery(states: states, search: search, limit: 50, after: query.get("cursor").flatMap(OrderCursor.init(token:))))
        var filters = "<form method=\"get\" action=\"/admin\"><select name=\"status\"><option value=\"\">All states</option>"
        for state in OrderState.allCases {
            filters += "<option value=\"\(state.rawValue)\"\(states == [state] ? " selected" : "")>\(state.rawValue)</option>"
        }
        filters += "</select> <input name=\"search\" placeholder=\"Order id or reference\" value=\"\(Self.escape(search ?? ""))\"> <button type=\"submit\">Filter</button></form>"
        var rows = ""
        for order in page.orders {
            rows += """
                <tr><td><a href="/admin/orders/\(order.id)">\(order.id)</a></td><td>\(Self.escape(order.merchantReference ?? ""))</td>
                <td>\(Self.escape(Amount.formatted(tenge: order.amount)))</td><td class="state-\(order.state.rawValue)">\(order.state.rawValue)\(order.needsReview ? " <span class=\"review\">review</span>" : "")</td>
                <td>\(order.refundedAmount > 0 ? String(order.refundedAmount) : "")</td><td>\(Self.iso(order.createdAt).prefix(19))</td></tr>
                """
        }
        let more = page.next.map { next in
            let href = "/admin?cursor=\(Self.queryValue(next.token))&status=\(Self.queryValue(query.get("status") ?? ""))&search=\(Self.queryValue(search ?? ""))"
            return "<p><a href=\"\(Self.escape(href))\">Older orders →</a></p>"
        } ?? ""
        return adminPage("Orders", signedIn: session, filters + "<table id=\"orders\"><tr><th>Order</th><th>Reference</th><th>Amount</th><th>State</th><th>Refunded</th><th>Created</th></tr>\(rows)</table>" + more)
    }

    /// Refunds whose outcome is not known yet, each with Kaspi's record to check and the two
    /// ways to settle it.
    func refundsPage(_ session: AdminSession, message: String?) async throws -> String {
        let open = try await store.unresolvedRefunds(pendingBefore: now(), limit: 200)
        var rows = ""
        for refund in open {
            let form = { (outcome: String, label: String) in
                """
                <form method="post" action="/admin/refunds/\(Self.escape(refund.id))/settle" class="inline-form"><input type="hidden" name="csrf" value="\(session.csrf)">\
                <input type="hidden" name="order" value="\(Self.escape(refund.orderId))"><input type="hidden" name="outcome" value="\(outcome)">\
                <button type="submit" class="settle-\(outcome)">\(label)</button></form>
                """
            }
            rows += """
                <tr><td>\(Self.escape(refund.id))</td><td><a href="/admin/orders/\(Self.escape(refund.orderId))">\(Self.escape(refund.orderId))</a></td>
                <td>\(Self.escape(Amount.formatted(tenge: refund.amount)))</td><td>\(refund.status.rawValue)</td><td>\(Self.escape(refund.detail ?? ""))</td>
                <td>\(Self.iso(refund.createdAt).prefix(19))</td><td>\(form("succeeded", "Kaspi refunded it")) \(form("failed", "Kaspi did not"))</td></tr>
                """
        }
        let intro = "<p>Refunds whose outcome Kaspi did not tell us. Reconciliation settles them from Kaspi's record when it can; settle one by hand only after checking the payment in Kaspi Pay. Each settlement is written to the order's timeline.</p>"
        let table = open.isEmpty ? "<p id=\"no-refunds\">Every refund is settled.</p>" : "<table id=\"refunds\"><tr><th>Refund</th><th>Order</th><th>Amount</th><th>Status</th><th>Detail</th><th>Created</th><th>Settle</th></tr>\(rows)</table>"
        return adminPage("Unsettled refunds", signedIn: session, intro + table, message: message)
    }

    /// The navigation's links for the Kaspi QR API's pages, on that profile.
    var qrNavigation: String {
        guard let qr = qrProvider else { return "" }
        var links = " <a href=\"/admin/kaspi\">Kaspi</a>"
        if qr.refundMethod == .customerPresent { links += " <a href=\"/admin/returns\">Returns</a>" }
        if qr.supportsRemoteInvoices { links += " <a href=\"/admin/invoices\">Invoices</a>" }
        return links
    }

    func orderPage(_ id: String, _ session: AdminSession, message: String?) async throws -> String {
        guard let order = try await store.order(id: id) else { return adminPage("Order not found", signedIn: session, "<p>No order \(Self.escape(id)).</p>") }
        let events = try await store.events(orderId: id)
        let messages = try await store.outboxMessages(orderId: id, limit: 50)
        var timeline = ""
        for event in events {
            let change = event.kind == .transition || event.kind == .conflict ? (event.toState.map { " → \($0.rawValue)" } ?? "") : ""
            timeline += "<tr><td>\(Self.iso(event.at).prefix(23))</td><td>\(event.kind.rawValue)\(change)</td><td>\(Self.escape(event.detail))</td></tr>"
        }
        var outgoing = ""
        for message in messages {
            let attempts = try await store.deliveryAttempts(messageId: message.id).map { "\($0.statusCode.map(String.init) ?? ($0.error ?? "no answer")) in \($0.latencyMs) ms" }.joined(separator: ", ")
            let state = configuration.merchantWebhookURL == nil ? "not sent (no events URL configured)" : message.state.rawValue
            outgoing += "<tr><td>\(message.type)</td><td>\(state)</td><td>\(Self.escape(attempts))</td></tr>"
        }
        let review = order.needsReview ? "<p class=\"review\" id=\"review\">Needs review: conflicting reports or an unknown refund outcome; see the timeline.</p>" : ""
        var refundRows = ""
        for refund in try await store.refunds(orderId: id) {
            refundRows += "<tr><td>\(Self.escape(refund.id))</td><td>\(refund.amount)</td><td class=\"refund-\(refund.status.rawValue)\">\(refund.status.rawValue)</td><td>\(Self.escape(refund.detail ?? ""))</td></tr>"
        }
        let refundsTable = refundRows.isEmpty ? "" : "<h2>Refunds</h2><table id=\"order-refunds\"><tr><th>Refund</th><th>Amount</th><th>Status</th><th>Detail</th></tr>\(refundRows)</table>"
        let refundable = order.state == .paid && order.refundedAmount < order.amount && provider.refundMethod == .direct
        let refundForm = refundable ? """
            <h2>Refund</h2><form method="post" action="/admin/orders/\(order.id)/refund"><input type="hidden" name="csrf" value="\(session.csrf)">
            <label>Amount (tenge; empty for all that remains, \(order.amount - order.refundedAmount)) <input name="amount" id="refund-amount" inputmode="numeric"></label>
            <button type="submit" id="refund">Refund</button></form>
            """ : ""
        let body = """
            \(review)<p class="big">\(Self.escape(Amount.formatted(tenge: order.amount))) · <span class="state-\(order.state.rawValue)" id="state">\(order.state.rawValue)</span></p>
            <table><tr><th>Reference</th><td>\(Self.escape(order.merchantReference ?? "—"))</td></tr><tr><th>Kaspi order id</th><td>\(order.providerOrderId)</td></tr>
            <tr><th>Transaction</th><td>\(Self.escape(order.transactionId ?? "—"))</td></tr><tr><th>Refunded</th><td id="refunded">\(order.refundedAmount)</td></tr>
            <tr><th>Description</th><td>\(Self.escape(order.description ?? "—"))</td></tr><tr><th>Kind</th><td>\(order.kind.rawValue)</td></tr></table>
            \(qrOrderSection(order, session))\(refundForm)\(refundsTable)
            <h2>Timeline</h2><table id="timeline">\(timeline)</table>
            <h2>Outgoing events</h2><table><tr><th>Type</th><th>State</th><th>Attempts</th></tr>\(outgoing)</table>
            """
        return adminPage("Order \(order.id)", signedIn: session, body, message: message)
    }

    func linksPage(_ session: AdminSession, request: Request) async throws -> String {
        var rows = ""
        for link in try await store.paymentLinks(limit: 100) {
            let (status, _) = try await status(of: link)
            rows += "<tr><td><a href=\"/admin/links/\(link.id)\">\(link.id)</a></td><td>\(Self.escape(Amount.formatted(tenge: link.amount)))</td><td>\(Self.escape(link.description ?? ""))</td><td>\(status.rawValue)</td></tr>"
        }
        let form = """
            <form method="post" action="/admin/links" class="card"><input type="hidden" name="csrf" value="\(session.csrf)">
            <label>Amount (tenge) <input name="amount" id="link-amount" inputmode="numeric" required></label>
            <label>Description <input name="description" id="link-description" maxlength="256"></label>
            <button type="submit" id="create-link">Create payment link</button></form>
            """
        return adminPage("Payment links", signedIn: session, form + "<table id=\"links\"><tr><th>Link</th><th>Amount</th><th>Description</th><th>Status</th></tr>\(rows)</table>", message: request.uri.queryParameters.get("message"))
    }

    func eventsPage(_ session: AdminSession, message: String?) async throws -> String {
        var rows = ""
        for message in try await store.outboxMessages(orderId: nil, limit: 100) {
            rows += """
                <tr><td>\(message.id)</td><td>\(message.type)</td><td><a href="/admin/orders/\(message.orderId)">\(message.orderId)</a></td><td>\(message.state.rawValue)</td>
                <td>\(message.attempts)</td><td>\(message.lastStatus.map(String.init) ?? "")</td>
                <td><form method="post" action="/admin/events/\(message.id)/resend"><input type="hidden" name="csrf" value="\(session.csrf)"><button type="submit">Re-send</button></form></td></tr>
                """
        }
        return adminPage("Outgoing events", signedIn: session, "<table id=\"events\"><tr><th>Id</th><th>Type</th><th>Order</th><th>State</th><th>Attempts</th><th>Last status</th><th></th></tr>\(rows)</table>", message: message)
    }

    func settingsPage(_ session: AdminSession) -> String {
        let c = configuration
        let rows: [(String, String)] = [
            ("Listening on", "\(c.host):\(c.port)"), ("Public URL", c.publicURL ?? "\(publicBase) (loopback default)"), ("Database", c.databaseDescription),
            ("Provider", qrProvider.map { "\(provider.name) (Kaspi QR API, scheme \($0.scheme.rawValue))" } ?? provider.name), ("Merchant API keys", "\(c.apiKeyHashes.count) configured (stored as SHA-256)"),
            ("Events URL", c.merchantWebhookURL ?? "(none)"), ("Events secret", c.merchantWebhookSecret == nil ? "(none)" : "whsec_… (redacted)"),
            ("First poll after", "\(c.firstPollAfter) s"), ("Poll interval", "\(c.pollInterval) s up to \(c.maxPollInterval) s"),
            ("Expire after", "\(c.expireAfter) s (QR \(c.qrExpireAfter) s)"), ("Instance", c.instanceID),
            ("Admin password", c.adminPassword == nil ? "generated at first start (hash stored)" : "from configuration (redacted)"),
        ]
        return adminPage("Settings", signedIn: session, "<table id=\"settings\">" + rows.map { "<tr><th>\(Self.escape($0.0))</th><td>\(Self.escape($0.1))</td></tr>" }.joined() + "</table>")
    }

    /// A value percent-encoded for a URL's query (everything but unreserved characters).
    static func queryValue(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? ""
    }

    static func form(_ buffer: ByteBuffer) -> [String: String] {
        var result: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            if let name = parts.first { result[name] = parts.count > 1 ? parts[1] : "" }
        }
        return result
    }
}
