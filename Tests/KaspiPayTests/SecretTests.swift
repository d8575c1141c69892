import Foundation
import KaspiPay
import KaspiPayTesting
import Logging
import Testing

@Suite("The API key never leaks")
struct SecretTests {
    static let secret = "sk_live_SECRET_7f3c9d2e"

    /// Replies that could make an error or a log line hold the key if it were echoed.
    static let echoes: [ScriptedTransport.Reply] = [
        .error("INVALID_SIGNATURE", status: 400, message: "key \(secret) does not match"),
        .respond(status: 500, body: "Authorization: Bearer \(secret)"),
        .respond(status: 200, body: "{\"unexpected\":\"\(secret)\"}"),
        .error("\(secret)", status: 400, message: secret),
        .fail(.failed("connect to host with \(secret) failed")),
        .respond(status: 429, body: "slow down \(secret)", headers: ["Retry-After": "1"]),
    ]

    @Test(arguments: 0..<echoes.count)
    func errorsAndLogsNeverContainTheKey(_ index: Int) async throws {
        let (logger, store) = InMemoryLogHandler.logger()
        let transport = ScriptedTransport([Self.echoes[index]])
        let client = KaspiClient(
            configuration: testConfiguration(key: Self.secret, retry: .none), transport: transport, clock: TestClock(),
            logger: logger)
        let error = await kaspiError { _ = try await client.orders.status(of: "ORDER-1") }
        let thrown = try #require(error)
        #expect(!"\(thrown)".contains(Self.secret))
        #expect(!String(reflecting: thrown).contains(Self.secret))
        #expect(!thrown.localizedDescription.contains(Self.secret))
        #expect(!store.lines.isEmpty)
        for line in store.lines { #expect(!line.contains(Self.secret)) }
        // The request itself did carry the key, as the contract requires.
        #expect(transport.requests[0].request.headerFields[.authorization] == "Bearer \(Self.secret)")
    }

    @Test func successfulFlowsLogNoSecretsOrBodies() async throws {
        let (logger, store) = InMemoryLogHandler.logger()
        let clock = TestClock()
        let client = KaspiClient(
            configuration: testConfiguration(key: Self.secret),
            transport: ScriptedTransport([
                .fail(.timedOut), .json(#"{"paymentUrl":"https://pay.example/p","orderId":"ORDER-1"}"#),
                .json(#"{"status":"APPROVED","refundedAmount":0}"#),
                .json(#"{"orderId":"ORDER-1","refundId":"R","amount":100,"refundedAmount":100}"#),
            ]), clock: clock, logger: logger)
        _ = try await clock.run { try await client.orders.create(newOrder()) }
        _ = try await client.refunds.create(orderID: "ORDER-1", amount: 100)
        let lines = store.lines
        #expect(lines.contains { $0.contains("Retrying Kaspi request") })
        #expect(lines.contains { $0.contains("http.status=200") })
        for line in lines {
            #expect(!line.contains(Self.secret))
            #expect(!line.contains("signature"))
            #expect(!line.contains("https://shop.example"))
        }
    }

    @Test func everyErrorDescriptionIsFreeOfTheKey() throws {
        let key = try APIKey(Self.secret)
        let errors: [any Error] = [
            ConfigurationError.invalidAPIKey(reason: "it is empty"), ConfigurationError.missingVariable("KASPI_API_KEY"),
            KaspiError.timeout, KaspiError.createOutcomeUnknown("A"), KaspiError.refundOutcomeUnknown("A", 1),
        ]
        for error in errors { #expect(!"\(error)".contains(Self.secret)) }
        #expect(!"\(key)".contains(Self.secret))
    }
}
