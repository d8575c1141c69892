public import HTTPTypes
public import KaspiPay
import Synchronization

/// A transport that records every request and answers from a script, for tests of the
/// client's retries, recovery and error mapping without a network.
public final class ScriptedTransport: KaspiTransport {
    /// One recorded request.
    public struct Recorded: Sendable {
        /// The request as sent.
        public var request: HTTPRequest
        /// Its body, when it had one.
        public var body: [UInt8]?
        /// The body as text.
        public var bodyText: String { body.map { String(decoding: $0, as: UTF8.self) } ?? "" }
    }

    /// One scripted answer.
    public enum Reply: Sendable {
        /// Respond with a status, headers and body.
        case respond(status: Int, body: String, headers: [String: String] = [:])
        /// Fail as a transport failure.
        case fail(TransportError)

        /// A 200 with a JSON body.
        public static func json(_ body: String, status: Int = 200) -> Reply {
            .respond(status: status, body: body, headers: ["Content-Type": "application/json"])
        }
        /// A contract error body.
        public static func error(_ code: String, status: Int, message: String = "", headers: [String: String] = [:]) -> Reply {
            .respond(status: status, body: #"{"code":"\#(code)","message":"\#(message)"}"#, headers: headers)
        }
    }

    private struct State {
        var recorded: [Recorded] = []
        var script: [Reply] = []
    }

    private let state: Mutex<State>
    private let handler: (@Sendable (HTTPRequest, [UInt8]?) -> Reply)?

    /// A transport that answers with `script`, one reply per request, in order.
    public init(_ script: [Reply]) {
        self.state = Mutex(State(script: script))
        self.handler = nil
    }

    /// A transport that answers each request by calling `handler`.
    public init(handler: @escaping @Sendable (HTTPRequest, [UInt8]?) -> Reply) {
        self.state = Mutex(State())
        self.handler = handler
    }

    /// Every request so far.
    public var requests: [Recorded] { state.withLock { $0.recorded } }

    public func send(_ request: HTTPRequest, body: [UInt8]?, timeout: Duration) async throws -> (HTTPResponse, [UInt8]) {
        let reply: Reply? = state.withLock { state in
            state.recorded.append(Recorded(request: request, body: body))
            if handler == nil, !state.script.isEmpty { return state.script.removeFirst() }
            return nil
        }
        guard let reply = reply ?? handler?(request, body) else {
            throw TransportError.failed("the script has no reply left")
        }
        switch reply {
        case .fail(let error):
            throw error
        case .respond(let status, let text, let headers):
            var fields = HTTPFields()
            for (name, value) in headers { if let name = HTTPField.Name(name) { fields[name] = value } }
            return (HTTPResponse(status: .init(code: status), headerFields: fields), Array(text.utf8))
        }
    }
}
