import Foundation
import Hummingbird
import KaspiGatewayStore
import KaspiGatewayTestSupport
import KaspiPayTesting
import Testing

@testable import KaspiGateway
@testable import KaspiSandbox

/// Every route of the gateway and the sandbox, sent what an attacker or a broken client
/// sends. The processes run in this test's process, so a trap anywhere fails the whole run.
@Suite("Hostile input")
struct HostileInputTests {
    /// A route with its `:parameters` filled in.
    struct Target {
        var method: String
        var path: String
    }

    /// The routes' paths with every parameter replaced by each of `values`, and the real ids.
    static func targets(_ routes: [(method: String, path: String)], ids: [String: String]) -> [Target] {
        let garbage = ["%ZZ", "%FF%FE%00", "..%2F..%2Fetc%2Fpasswd", String(repeating: "x", count: 3000), "%E2%82", "a%20b;c=d"]
        var out: [Target] = []
        for route in routes {
            let segments = route.path.split(separator: "/", omittingEmptySubsequences: false)
            let hasParameter = segments.contains { $0.hasPrefix(":") }
            var choices: [String?] = [nil]
            if hasParameter { choices = garbage + [nil] }
            for choice in choices {
                let path = segments.map { segment -> String in
                    guard segment.hasPrefix(":") else { return String(segment) }
                    let name = String(segment.dropFirst())
                    return choice ?? ids[route.path + ":" + name] ?? ids[name] ?? "unknown"
                }.joined(separator: "/")
                out.append(Target(method: route.method, path: path))
            }
        }
        return out
    }

    /// The hostile requests for one target, as raw bytes.
    static func requests(_ target: Target, authorization: String?, cookie: String?) -> [(name: String, bytes: [UInt8], finish: Bool)] {
        let auth = authorization.map { "Authorization: \($0)\r\n" } ?? ""
        let cookies = cookie.map { "Cookie: \($0)\r\n" } ?? ""
        let line = "\(target.method) \(target.path) HTTP/1.1\r\n"
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }
        let json = #"{"amount":5000}"#
        return [
            (
                "bad Host",
                text(
                    line
                        + "Host: x:y\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)"
                ), true
            ),
            (
                "Host with bad UTF-8",
                text(line + "Host: ") + [0xFF, 0xFE, 0x3A, 0x39] + text("\r\n\(auth)\(cookies)Content-Length: 0\r\nConnection: close\r\n\r\n"), true
            ),
            ("no Host", text(line + "\(auth)\(cookies)Content-Length: 0\r\nConnection: close\r\n\r\n"), true),
            (
                "huge header",
                text(
                    line
                        + "Host: 127.0.0.1\r\n\(auth)\(cookies)X-Filler: \(String(repeating: "a", count: 100_000))\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ), true
            ),
            (
                "many headers",
                text(
                    line + "Host: 127.0.0.1\r\n\(auth)\(cookies)" + (0..<2000).map { "X-H\($0): v\r\n" }.joined()
                        + "Content-Length: 0\r\nConnection: close\r\n\r\n"), true
            ),
            (
                "bad UTF-8 in the path",
                text("\(target.method) \(target.path)") + [0xC3, 0x28, 0xFF]
                    + text(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\(cookies)Content-Length: 0\r\nConnection: close\r\n\r\n"), true
            ),
            (
                "bad percent-encoding in the query",
                text(
                    "\(target.method) \(target.path)?status=%ZZ&cursor=%FF&limit=%00&search=%E2%82&message=%3Cscript%3E HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\(cookies)Content-Length: 0\r\nConnection: close\r\n\r\n"
                ), true
            ),
            (
                "Content-Length shorter than the body",
                text(
                    line
                        + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\(json)"
                ), true
            ),
            (
                "Content-Length longer than the body",
                text(
                    line
                        + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: 500\r\nConnection: close\r\n\r\n\(json)"
                ), true
            ),
            ("Content-Length not a number", text(line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Length: -1\r\nConnection: close\r\n\r\n"), true),
            (
                "two Content-Lengths",
                text(line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Length: 2\r\nContent-Length: 15\r\nConnection: close\r\n\r\n\(json)"), true
            ),
            (
                "empty body",
                text(line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                true
            ),
            (
                "body not UTF-8",
                text(line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: 6\r\nConnection: close\r\n\r\n")
                    + [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D], true
            ),
            (
                "form body with bad encoding",
                text(
                    line
                        + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\nConnection: close\r\n\r\naction=%ZZ&amount=%FF&password=%&csrf=%%\r\n"
                ), true
            ),
            (
                "deep JSON",
                text(
                    line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Content-Type: application/json\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n"
                        + String(repeating: "[", count: 20000)), true
            ),
            (
                "chunked garbage",
                text(line + "Host: 127.0.0.1\r\n\(auth)\(cookies)Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"),
                true
            ),
        ]
    }

    /// Sends every hostile request to every target; returns the failures (a 5xx, or no
    /// answer where the server should have answered), and checks the server still answers.
    static func attack(
        port: Int, routes: [(method: String, path: String)], ids: [String: String], authorization: String?, cookie: String?
    ) async -> [String] {
        var failures: [String] = []
        for target in targets(routes, ids: ids) {
            for request in requests(target, authorization: authorization, cookie: cookie) {
                guard let answer = await RawHTTP.send(request.bytes, port: port, finish: request.finish) else {
                    failures.append("\(request.name) \(target.method) \(target.path.prefix(80)): could not connect (the server is down)")
                    return failures
                }
                guard let status = answer.status else {
                    failures.append("\(request.name) \(target.method) \(target.path.prefix(80)): no answer")
                    continue
                }
                if status >= 500 {
                    failures.append("\(request.name) \(target.method) \(target.path.prefix(80)): \(status) \(answer.text.suffix(200))")
                }
            }
        }
        return failures
    }

    static func routes<Context>(_ router: Router<Context>) -> [(method: String, path: String)] {
        router.routes.map { (method: $0.method.rawValue, path: $0.path.description) }
    }

    @Test("every gateway route stays up and answers below 500; the Host header picks nothing")
    func gateway() async throws {
        try await withStack(.sqlite) { stack in
            // Real ids, so that the requests reach past the lookups.
            let checkout = try await stack.api(.POST, "/v1/checkouts", #"{"amount":5000,"description":"Hostile"}"#)
            #expect(checkout.status == 201)
            let orderID = checkout.json["id"] as? String ?? ""
            let link = try await stack.api(.POST, "/v1/payment-links", #"{"amount":7000}"#)
            let linkID = link.json["id"] as? String ?? ""
            let events = try await stack.api(.GET, "/v1/events?orderId=\(orderID)")
            let eventID = ((events.json["data"] as? [[String: Any]])?.first?["id"] as? String) ?? "msg_unknown"
            let port = Int(stack.gatewayURL.split(separator: ":").last ?? "") ?? 0

            // The single request that used to trap the process: pay a link with a bad Host.
            let poisoned = await RawHTTP.send(
                "POST /l/\(linkID)/pay HTTP/1.1\r\nHost: x:y\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", port: port)
            #expect(poisoned?.status == 303)
            // The payer is sent to Kaspi, and Kaspi sends them back to the configured address,
            // not to the one the request named.
            let linkOrderID = try await stack.gateway.store.paymentLink(id: linkID)?.orderID ?? ""
            let linkOrder = try await stack.order(linkOrderID)
            let kaspiOrder = await stack.sandbox.orders().first { $0.orderID == linkOrder?.providerOrderID }
            #expect(kaspiOrder?.returnURL?.hasPrefix(stack.gatewayURL + "/pay/return/") == true)
            let shown = try await http(
                .GET, stack.gatewayURL + "/v1/payment-links/\(linkID)", headers: ["Authorization": "Bearer \(stack.apiKey)", "Host": "evil.example"])
            #expect((shown.json["url"] as? String)?.hasPrefix(stack.gatewayURL) == true)

            // A signed-in admin, so that the dashboard's forms are reached too.
            let login = try await http(.GET, stack.adminURL + "/admin/login")
            let loginCookie = login.headers["set-cookie"]?.split(separator: ";").first.map(String.init) ?? ""
            let csrf = login.body.components(separatedBy: "name=\"csrf\" value=\"").dropFirst().first?.prefix { $0 != "\"" } ?? ""
            let signedIn = try await http(
                .POST, stack.adminURL + "/admin/login", body: "csrf=\(csrf)&password=admin-pass-123",
                headers: ["Content-Type": "application/x-www-form-urlencoded", "Cookie": loginCookie])
            let session = signedIn.headers["set-cookie"]?.split(separator: ";").first.map(String.init)
            #expect(session != nil)

            let routes = Self.routes(try stack.gateway.router())
            #expect(routes.count >= 20)
            let ids = [
                "id": orderID, "/l/:id:id": linkID, "/l/:id/pay:id": linkID, "/v1/payment-links/:id:id": linkID,
                "/admin/links/:id:id": linkID, "/v1/events/:id/resend:id": eventID, "/admin/events/:id/resend:id": eventID,
            ]
            for (authorization, cookie) in [(nil, nil), ("Bearer \(stack.apiKey)", session), ("Bearer \u{1}\u{7F}", "kk_admin=\u{7F}%FF;;=")]
                as [(String?, String?)]
            {
                let failures = await Self.attack(port: port, routes: routes, ids: ids, authorization: authorization, cookie: cookie)
                #expect(failures.isEmpty, "\(failures.count) failures: \(failures.prefix(10).joined(separator: "\n"))")
            }
            #expect(try await http(.GET, stack.gatewayURL + "/health").status == 200)
            // Nothing was paid by any of it.
            #expect(try await stack.order(orderID)?.state == .pending)
            #expect(try await stack.order(linkOrderID)?.state == .pending)
        }
    }

    @Test("every sandbox route stays up and answers below 500")
    func sandbox() async throws {
        try await withStack(.sqlite) { stack in
            let checkout = try await stack.api(.POST, "/v1/checkouts", #"{"amount":5000}"#)
            let paymentURL = checkout.json["paymentUrl"] as? String ?? ""
            let token = String(paymentURL.split(separator: "/").last ?? "")
            let kaspiOrder = await stack.sandbox.orders().first
            let port = Int(stack.sandboxURL.split(separator: ":").last ?? "") ?? 0
            #expect(paymentURL.hasPrefix(stack.sandboxURL + "/pay/"))
            let routes = Self.routes(stack.sandbox.router())
            #expect(routes.count >= 15)
            let ids = ["orderId": kaspiOrder?.orderID ?? "", "token": token, "tradePointId": "TP-GW", "action": "approve", "id": "wh_unknown"]
            for authorization in [nil, "Bearer sandbox_gateway_key", "Bearer \u{1}"] as [String?] {
                let failures = await Self.attack(port: port, routes: routes, ids: ids, authorization: authorization, cookie: nil)
                #expect(failures.isEmpty, "\(failures.count) failures: \(failures.prefix(10).joined(separator: "\n"))")
            }
            #expect(try await http(.GET, stack.sandboxURL + "/health").status == 200)
            // A bad Host picks nothing either: the payment page stays on the sandbox's address.
            let created = await RawHTTP.send(
                "GET /api/v1/orders/\(kaspiOrder?.orderID ?? "")/status HTTP/1.1\r\nHost: evil.example:1\r\nAuthorization: Bearer sandbox_gateway_key\r\nConnection: close\r\n\r\n",
                port: port)
            #expect(created?.status != nil)
            #expect(created?.text.contains("evil.example") == false)
        }
    }
}
