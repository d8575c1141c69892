import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KaspiEvents
import KaspiGatewayTestSupport
import KaspiPayTesting
import KaspiSandbox
import Synchronization
import Testing

/// A shop's events endpoint: verifies each delivery with KaspiEvents and keeps what passed.
final class VerifyingShop: Sendable {
    let verifier: EventVerifier
    private let state = Mutex<(events: [VerifiedEvent], refused: Int, answers: [Int])>(([], 0, []))

    init(secret: String, answers: [Int] = []) throws {
        verifier = try EventVerifier(secret: secret)
        state.withLock { $0.answers = answers }
    }

    var events: [VerifiedEvent] { state.withLock { $0.events } }
    var refused: Int { state.withLock { $0.refused } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/events") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            guard
                let verified = try? self.verifier.verify(
                    payload: body.readableBytesView, header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } })
            else {
                self.state.withLock { $0.refused += 1 }
                return Response(status: .badRequest)
            }
            let status = self.state.withLock { state -> Int in
                state.events.append(verified)
                return state.answers.isEmpty ? 204 : state.answers.removeFirst()
            }
            return Response(status: .init(code: status))
        }
        return router
    }
}

/// `kaspi listen` and `kaspi events` against a running `kaspi gateway`, as a developer uses them.
@Suite("kaspi listen and kaspi events")
struct ListenCLITests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// A paid order (checkout, the payer pays) on the gateway at `port`; its id.
    static func paidOrder(_ port: Int, amount: Int) async throws -> String {
        let created = try await GatewayCLITests.api(port, "POST", "/v1/checkouts", #"{"amount":\#(amount)}"#)
        let id = try #require(created["id"] as? String, "\(created)")
        try await GatewayCLITests.pay(try #require(created["paymentUrl"] as? String))
        for _ in 0..<400 {
            if try await GatewayCLITests.api(port, "GET", "/v1/orders/\(id)")["state"] as? String == "paid" { return id }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("order \(id) was not paid")
        return id
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<400 where !condition() { try await Task.sleep(for: .milliseconds(50)) }
    }

    @Test func listenForwardsEachNewEventSignedOnceAndEventsListsAndResends() async throws {
        let (database, drop) = try await GatewayCLITests.database(.sqlite)
        let port = FreePort.find()
        let sandbox = try await Sandbox(configuration: GatewayCLITests.sandboxConfiguration(gatewayPorts: [port]))
        let shop = try VerifyingShop(secret: Self.secret, answers: [204, 500])
        let shopApp = Application(router: shop.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await shopApp.test(.live) { shopClient in
            try await sandbox.application().test(.live) { client in
                let sandboxURL = "http://127.0.0.1:\(try #require(client.port))"
                let forwardTo = "http://127.0.0.1:\(try #require(shopClient.port))/events"
                // A gateway with no events URL of its own: what a developer's laptop runs.
                let gateway = try await GatewayCLITests.startGateway(database: database, port: port, sandboxURL: sandboxURL, instance: "gw-listen")
                let environment = ["KASPI_GATEWAY_URL": "http://127.0.0.1:\(port)", "KASPI_GATEWAY_API_KEY": GatewayCLITests.apiKey]
                let before = try await Self.paidOrder(port, amount: 1500)

                var listenEnvironment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KASPI_") }
                listenEnvironment.merge(environment) { $1 }
                listenEnvironment["KASPI_LISTEN_SECRET"] = Self.secret
                let listen = try BackgroundProcess(
                    CLI.binary, ["listen", "--forward-to", forwardTo, "--interval", "0.1"], environment: listenEnvironment)
                #expect(await listen.waitForOutput(matching: "Forwarding the events of") != nil, "\(listen.stderr)")
                #expect(!listen.stdout.contains("whsec_"), "a secret the developer gave is not printed")

                // From now on: the earlier order's event is not forwarded, the new ones are, once each.
                let id = try await Self.paidOrder(port, amount: 2500)
                let refunded = try await GatewayCLITests.api(port, "POST", "/v1/orders/\(id)/refunds", #"{"amount":500}"#)
                #expect(refunded["refundedAmount"] as? Int == 500, "\(refunded)")
                try await Self.waitUntil { shop.events.count >= 2 }
                try await Task.sleep(for: .milliseconds(600))
                let received = shop.events
                #expect(received.map(\.event.type) == ["order.paid", "refund.succeeded"], "\(listen.stdout) \(listen.stderr)")
                #expect(received.allSatisfy { $0.event.orderID == id })
                #expect(Set(received.map(\.id)).count == 2 && received.allSatisfy { $0.id.hasPrefix("msg_") })
                #expect(shop.refused == 0)
                // One line per event, with what the shop answered.
                #expect(listen.stdout.contains("order.paid  \(id)  ") && listen.stdout.contains("-> 204"), "\(listen.stdout)")
                #expect(listen.stdout.contains("refund.succeeded  \(id)  ") && listen.stdout.contains("-> 500"), "\(listen.stdout)")
                #expect(!listen.stdout.contains(before))
                await listen.stop()

                // --from start forwards everything the gateway has, and --exit-after ends it.
                let all = try await CLI.run(
                    ["listen", "--forward-to", forwardTo, "--from", "start", "--exit-after", "3", "--interval", "0.1", "--json"],
                    environment: environment.merging(["KASPI_LISTEN_SECRET": Self.secret]) { $1 })
                #expect(all.status == 0, "\(all.stderr)")
                let lines = all.stdout.split(separator: "\n").compactMap {
                    (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                }
                #expect(lines.compactMap { $0["orderId"] as? String } == [before, id, id], "\(all.stdout)")
                #expect(shop.events.count == 5)

                // Without a secret, one is made for the run and printed for the shop.
                let made = try await CLI.run(
                    ["listen", "--forward-to", forwardTo, "--from", "start", "--exit-after", "1", "--interval", "0.1"], environment: environment)
                #expect(made.status == 0 && made.stdout.contains("Signing with whsec_"), "\(made.stdout) \(made.stderr)")
                #expect(shop.refused == 1, "the shop's secret is not the one made")

                // kaspi events list and resend.
                let listed = try await CLI.run(["events", "list", "--json"], environment: environment)
                let data = listed.json["data"] as? [[String: Any]] ?? []
                #expect(data.count == 3 && data.first?["type"] as? String == "refund.succeeded", "\(listed.stdout) \(listed.stderr)")
                let eventID = try #require(data.first?["id"] as? String)
                let text = try await CLI.run(["events", "list", "--order-id", before], environment: environment)
                #expect(text.stdout.contains("order.paid  \(before)  pending"), "\(text.stdout)")
                let resent = try await CLI.run(["events", "resend", eventID], environment: environment)
                #expect(resent.status == 0 && resent.stdout.contains("Event \(eventID) queued"), "\(resent.stderr)")
                let unknown = try await CLI.run(["events", "resend", "msg_nope"], environment: environment)
                #expect(unknown.status == 1 && unknown.stderr.contains("EVENT_NOT_FOUND"), "\(unknown.stderr)")

                // Refusals: no key, a wrong key, a bad URL, a bad secret, nothing listening.
                let noKey = try await CLI.run(["events", "list"], environment: ["KASPI_GATEWAY_URL": "http://127.0.0.1:\(port)"])
                #expect(noKey.status == 2 && noKey.stderr.contains("KASPI_GATEWAY_API_KEY"))
                let wrongKey = try await CLI.run(["events", "list"], environment: environment.merging(["KASPI_GATEWAY_API_KEY": "nope"]) { $1 })
                #expect(wrongKey.status == 1 && wrongKey.stderr.contains("UNAUTHORIZED"), "\(wrongKey.stderr)")
                let badURL = try await CLI.run(["listen", "--forward-to", "ftp://x"], environment: environment)
                #expect(badURL.status == 2 && badURL.stderr.contains("--forward-to"))
                let badSecret = try await CLI.run(["listen", "--forward-to", forwardTo, "--secret", "whsec_short"], environment: environment)
                #expect(badSecret.status == 2 && badSecret.stderr.contains("--secret"))
                #expect(!badSecret.stderr.contains("whsec_short"), "the secret given is not echoed")
                let nowhere = try await CLI.run(
                    ["events", "list"], environment: environment.merging(["KASPI_GATEWAY_URL": "http://127.0.0.1:\(FreePort.find())"]) { $1 })
                #expect(nowhere.status == 1 && nowhere.stderr.contains("GATEWAY_UNREACHABLE"), "\(nowhere.stderr)")
                #expect(await gateway.stop() == 0)
            }
        }
        await drop()
    }
}
