import AsyncHTTPClient
import Foundation
import KaspiPay

/// Waits, in real time, until `condition` holds: for what another process or task does (a
/// webhook arriving, a worker's pass). Never a timing assertion: the deadline is generous.
///
/// - Returns: whether it held before `seconds` passed.
public func eventually(seconds: Double = 30, _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// A new order for a shop at `https://shop.example/`, with return and fail URLs that name
/// the order.
///
/// - Throws: ``KaspiError`` when `id` or `amount` is not valid.
public func newOrder(_ id: String = "ORDER-1", amount: Int = 5000) throws -> NewOrder {
    guard let returnURL = URL(string: "https://shop.example/payment/success?orderId=\(id)"),
        let failURL = URL(string: "https://shop.example/payment/fail?orderId=\(id)")
    else { throw KaspiError.invalidURL(field: "returnUrl", value: id, reason: "the order id does not fit in a URL") }
    return NewOrder(amount: try Amount(tenge: amount), orderID: try OrderID(id), returnURL: returnURL, failURL: failURL, description: "Order #\(id)")
}

/// Runs `body` and returns the error of type `E` it threw, or nil (no error, or another).
public func thrownError<E: Error>(_ type: E.Type, _ body: () async throws -> Void) async -> E? {
    do {
        try await body()
        return nil
    } catch let error as E {
        return error
    } catch {
        return nil
    }
}

/// Runs `body` and returns the ``KaspiError`` it threw, or nil.
public func kaspiError(_ body: () async throws -> Void) async -> KaspiError? {
    await thrownError(KaspiError.self, body)
}

/// An HTTP client that shows redirects instead of following them: a browser's view of a
/// server's answers, for tests over loopback.
public let noRedirectClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.redirectConfiguration = .disallow
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()
