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

/// Parses a JSON body into a dictionary.
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
