import ArgumentParser
import AsyncHTTPClient
import Foundation
import KaspiEvents
import KaspiGatewayClient
import NIOCore
import OpenAPIAsyncHTTPClient

/// Which gateway the merchant-side commands talk to, and with which key.
struct GatewayClientOptions: ParsableArguments {
    @Option(name: .customLong("gateway"), help: "The gateway's URL (default: $KASPI_GATEWAY_URL, else http://127.0.0.1:8282).")
    var gatewayURL: String?

    @Option(
        name: .customLong("api-key"),
        help: "A gateway API key (default: $KASPI_GATEWAY_API_KEY; prefer the variable, flags show in ps).")
    var apiKey: String?

    /// The gateway's URL, checked.
    func url(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let text = gatewayURL ?? environment["KASPI_GATEWAY_URL"] ?? "http://127.0.0.1:8282"
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw CLIError.invalidInput("--gateway must be an http:// or https:// URL, such as http://127.0.0.1:8282")
        }
        return url
    }

    /// The API key, required.
    func key(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let key = apiKey ?? environment["KASPI_GATEWAY_API_KEY"], !key.isEmpty else {
            throw CLIError.invalidInput("a gateway API key is needed: set KASPI_GATEWAY_API_KEY (or --api-key)")
        }
        guard key.count <= 256, key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw CLIError.invalidInput("the gateway API key must be printable ASCII without spaces")
        }
        return key
    }

    /// Runs `body` with a client of the gateway over one HTTP client, shut down after.
    func withClient<T>(_ body: (KaspiGatewayClient, HTTPClient) async throws -> T) async throws -> T {
        let url = try url()
        let key = try key()
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let client = KaspiGatewayClient(
            baseURL: url, apiKey: key, transport: OpenAPIAsyncHTTPClient.AsyncHTTPClientTransport(configuration: .init(client: http)))
        do {
            let result = try await body(client, http)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}

/// `kaspi listen`: follows a gateway's events and forwards each, signed, to a local URL.
struct ListenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Forward a gateway's events, signed, to a local URL: develop a shop without exposing it.",
        discussion: """
            Follows the gateway's GET /v1/events with a cursor and sends each event to --forward-to as the gateway would \
            (Standard Webhooks headers), signed with --secret, and prints one line per event. The gateway goes on delivering \
            to its own events URL as well. Stop it with Ctrl-C.
            """)

    @OptionGroup var gateway: GatewayClientOptions

    @Option(name: .customLong("forward-to"), help: "Where to send each event, e.g. http://127.0.0.1:3000/events.")
    var forwardTo: String

    @Option(
        name: .customLong("secret"),
        help: "The whsec_ secret to sign with, as your shop verifies (default: $KASPI_LISTEN_SECRET, else one made for the run and printed).")
    var secret: String?

    @Option(name: .customLong("from"), help: "now: the events written from now on; start: every event the gateway has, then new ones.")
    var from: Start = .now

    @Option(name: .customLong("interval"), help: "Seconds between asks when nothing is new (0.1 to 60).")
    var interval: Double = 1

    @Option(name: .customLong("exit-after"), help: "Stop after forwarding this many events (default: run until stopped).")
    var exitAfter: Int?

    @Flag(name: .customLong("json"), help: "Print one JSON object per event.")
    var json = false

    enum Start: String, ExpressibleByArgument, CaseIterable { case now, start }

    func run() async throws {
        try await Console.run(json: json) {
            guard let target = URL(string: forwardTo), let scheme = target.scheme?.lowercased(), ["http", "https"].contains(scheme),
                target.host != nil
            else { throw CLIError.invalidInput("--forward-to must be an http:// or https:// URL, such as http://127.0.0.1:3000/events") }
            guard interval.isFinite, (0.1...60).contains(interval) else { throw CLIError.invalidInput("--interval must be from 0.1 to 60 seconds") }
            if let exitAfter, exitAfter < 1 { throw CLIError.invalidInput("--exit-after must be 1 or more") }
            let given = secret ?? ProcessInfo.processInfo.environment["KASPI_LISTEN_SECRET"]
            let signingSecret = given ?? Self.makeSecret()
            // A bad secret is refused before anything is forwarded.
            do { _ = try EventVerifier(secret: signingSecret) } catch {
                throw CLIError.invalidInput("--secret must be a whsec_ secret of at least 16 bytes (base64), such as `kaspi gateway secret` prints")
            }
            try await gateway.withClient { client, http in
                var follower = try await EventFollower(client: client, fromStart: from == .start)
                let base = try gateway.url().absoluteString
                if json {
                    Console.json(["listening": base, "forwardTo": forwardTo, "secret": given == nil ? signingSecret : nil])
                } else {
                    Console.out("Forwarding the events of \(base) to \(forwardTo). Ctrl-C stops.")
                    if given == nil { Console.out("Signing with \(signingSecret): give your shop this secret to verify them.") }
                }
                var forwarded = 0
                var quietFor: Double = 0
                while true {
                    let events: [EventFollower.Event]
                    do {
                        events = try await follower.next()
                        quietFor = 0
                    } catch let error as GatewayClientError {
                        // A refusal (a revoked key) ends it; an unreachable gateway is waited for.
                        if case .refused = error { throw error }
                        if quietFor == 0 { Console.err("The gateway did not answer (\(error)); trying again.") }
                        quietFor += interval
                        try await Task.sleep(for: .milliseconds(Int64(min(5, interval * 2) * 1000)))
                        continue
                    }
                    for event in events {
                        let outcome = await Self.forward(event, to: forwardTo, secret: signingSecret, http: http)
                        Self.report(event, outcome, json: json)
                        forwarded += 1
                        if let exitAfter, forwarded >= exitAfter { return }
                    }
                    if events.isEmpty { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
                }
            }
        }
    }

    static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }

    /// What became of one forward.
    enum Outcome {
        case answered(status: Int, milliseconds: Int)
        case failed(String)
    }

    /// Sends one event the way the gateway delivers: its body, `webhook-id` (the event's id,
    /// so your de-duplication works as it will in production), `webhook-timestamp` (now) and
    /// `webhook-signature`.
    static func forward(_ event: EventFollower.Event, to url: String, secret: String, http: HTTPClient) async -> Outcome {
        let timestamp = Int64(Date().timeIntervalSince1970)
        guard let signature = try? EventVerifier.signature(id: event.id, timestamp: timestamp, payload: event.body, secret: secret) else {
            return .failed("the secret cannot sign")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "webhook-id", value: event.id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature", value: signature)
        request.headers.add(name: "User-Agent", value: "kaspi-listen")
        request.body = .bytes(ByteBuffer(bytes: event.body))
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            _ = try? await response.body.collect(upTo: 1 << 20)
            let elapsed = ContinuousClock.now - started
            let ms = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            return .answered(status: Int(response.status.code), milliseconds: ms)
        } catch {
            return .failed("\(error)")
        }
    }

    static func report(_ event: EventFollower.Event, _ outcome: Outcome, json: Bool) {
        let time = event.createdAt
        switch (outcome, json) {
        case (.answered(let status, let ms), false):
            Console.out("\(time)  \(event.type)  \(event.orderID)  \(event.id)  -> \(status) (\(ms) ms)")
        case (.failed(let reason), false):
            Console.out("\(time)  \(event.type)  \(event.orderID)  \(event.id)  -> not delivered: \(reason)")
        case (.answered(let status, let ms), true):
            Console.json([
                "id": event.id, "type": event.type, "orderId": event.orderID, "createdAt": time, "status": status, "milliseconds": ms,
            ])
        case (.failed(let reason), true):
            Console.json(["id": event.id, "type": event.type, "orderId": event.orderID, "createdAt": time, "error": reason])
        }
    }
}

/// Follows `GET /v1/events` with its cursor. Each ask goes back a few seconds before the
/// newest event seen, and events already seen are skipped: an event whose transaction
/// committed after a later-stamped one is still found.
struct EventFollower {
    struct Event: Sendable {
        var id, type, orderID, createdAt: String
        var body: [UInt8]
    }

    let client: KaspiGatewayClient
    /// Where following began: nothing before it is forwarded.
    let start: (ms: Int64, id: String)
    /// The newest event seen.
    var newest: (ms: Int64, id: String)
    /// Ids seen within the overlap, and their times.
    var seen: [String: Int64] = [:]
    /// How far each ask goes back, in milliseconds.
    static let overlap: Int64 = 5000
    static let pageSize = 200

    init(client: KaspiGatewayClient, fromStart: Bool) async throws {
        self.client = client
        if fromStart {
            start = (0, "0")
        } else {
            let newest = try await client.events.list(limit: 1)
            start = newest.nextCursor.flatMap(Self.parse) ?? (0, "0")
        }
        newest = start
    }

    static func parse(_ cursor: String) -> (ms: Int64, id: String)? {
        let parts = cursor.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let ms = Int64(parts[0]) else { return nil }
        return (ms, String(parts[1]))
    }

    /// The events not seen yet, oldest first (empty when nothing is new).
    mutating func next() async throws(GatewayClientError) -> [Event] {
        // Back by the overlap, never before the start.
        let backMs = max(start.ms, newest.ms - Self.overlap)
        var cursor = backMs == start.ms ? "\(start.ms)_\(start.id)" : "\(backMs)_0"
        var fresh: [Event] = []
        while true {
            let page = try await client.events.after(cursor, limit: Self.pageSize)
            for item in page.data {
                guard seen[item.id] == nil else { continue }
                let ms = Self.milliseconds(item.createdAt)
                seen[item.id] = ms
                if (ms, item.id) > newest { newest = (ms, item.id) }
                let body: [UInt8]
                if let payload = item.payload, let data = try? JSONEncoder().encode(payload) {
                    body = Array(data)
                } else {
                    body = Array(#"{"type":"\#(item._type)","data":{}}"#.utf8)
                }
                fresh.append(Event(id: item.id, type: item._type, orderID: item.orderId, createdAt: item.createdAt, body: body))
            }
            guard page.data.count == Self.pageSize, let next = page.nextCursor, next != cursor else { break }
            cursor = next
        }
        // Forget what is older than the overlap reaches.
        let horizon = newest.ms - 2 * Self.overlap
        if seen.count > 1000 { seen = seen.filter { $0.value >= horizon } }
        return fresh
    }

    /// The API's time (ISO 8601 with milliseconds) in milliseconds since 1970.
    static func milliseconds(_ text: String) -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
        return date.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
    }
}

/// `kaspi events`: the gateway's outgoing events.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "List a gateway's outgoing events, or send one again.", subcommands: [List.self, Resend.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the newest events and how their delivery went.")

        @OptionGroup var gateway: GatewayClientOptions

        @Option(name: .customLong("order-id"), help: "Only this order's events.")
        var orderID: String?

        @Option(name: .customLong("limit"), help: "At most this many (1 to 500).")
        var limit: Int = 20

        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                guard (1...500).contains(limit) else { throw CLIError.invalidInput("--limit must be from 1 to 500") }
                let list = try await gateway.withClient { client, _ in try await client.events.list(orderID: orderID, limit: limit) }
                if output.json {
                    struct Row: Encodable {
                        var id, type, orderId, state, createdAt: String
                        var attempts: Int
                        var lastStatus: Int?
                    }
                    Console.json(encoding: [
                        "data": list.data.map {
                            Row(
                                id: $0.id, type: $0._type, orderId: $0.orderId, state: $0.state.rawValue, createdAt: $0.createdAt,
                                attempts: $0.attempts, lastStatus: $0.lastStatus)
                        }
                    ])
                } else if list.data.isEmpty {
                    Console.out("No events yet.")
                } else {
                    for e in list.data {
                        Console.out(
                            "\(e.createdAt)  \(e.id)  \(e._type)  \(e.orderId)  \(e.state.rawValue), \(e.attempts) attempt\(e.attempts == 1 ? "" : "s")"
                                + (e.lastStatus.map { ", last answer \($0)" } ?? ""))
                    }
                }
            }
        }
    }

    struct Resend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Have the gateway deliver an event to its events URL again, now.")

        @Argument(help: "The event's id (msg_…), as `kaspi events list` prints it.")
        var id: String

        @OptionGroup var gateway: GatewayClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await Console.run(json: output.json) {
                guard (1...128).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                    throw CLIError.invalidInput("the event id must be 1 to 128 letters, digits, _ or -")
                }
                try await gateway.withClient { client, _ in try await client.events.resend(id) }
                if output.json { Console.json(["requeued": id]) } else { Console.out("Event \(id) queued for delivery again.") }
            }
        }
    }
}
