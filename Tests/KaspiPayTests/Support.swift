import Foundation
import KaspiPay
import KaspiPayTesting

/// A configuration for tests: a custom server, no client-side rate limit, fast retries.
func testConfiguration(
    baseURL: String = "http://127.0.0.1:9", key: String = "test_key_abc", tradePoint: String = "TP-1",
    retry: RetryPolicy = RetryPolicy(maxAttempts: 4, initialDelay: .milliseconds(100), jitter: 0),
    rateLimit: KaspiConfiguration.RateLimit? = nil
) -> KaspiConfiguration {
    KaspiConfiguration(
        environment: .custom(URL(string: baseURL)!), tradePointID: try! TradePointID(tradePoint),
        apiKey: try! APIKey(key), requestTimeout: .seconds(30), retryPolicy: retry, rateLimit: rateLimit)
}

/// A client over a scripted transport with a test clock.
func scriptedClient(
    _ script: [ScriptedTransport.Reply], configuration: KaspiConfiguration = testConfiguration(),
    clock: TestClock = TestClock()
) -> (KaspiClient, ScriptedTransport, TestClock) {
    let transport = ScriptedTransport(script)
    let client = KaspiClient(configuration: configuration, transport: transport, clock: clock, random: { 0.5 })
    return (client, transport, clock)
}

/// A valid new order for the contract server's registered prefix.
func newOrder(_ id: String = "ORDER-1", amount: Int = 5000) -> NewOrder {
    NewOrder(
        amount: try! Amount(tenge: amount), orderId: try! OrderID(id),
        returnURL: URL(string: "https://shop.example/ok?orderId=\(id)")!,
        failURL: URL(string: "https://shop.example/fail?orderId=\(id)")!, description: "Order #\(id)")
}

/// Runs `body` and returns the `KaspiError` it threw, or nil.
func kaspiError(_ body: () async throws -> Void) async -> KaspiError? {
    do {
        try await body()
        return nil
    } catch let error as KaspiError {
        return error
    } catch {
        return nil
    }
}

/// Parses a JSON body into a dictionary.
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
