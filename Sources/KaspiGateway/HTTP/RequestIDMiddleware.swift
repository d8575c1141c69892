import Foundation
import Hummingbird
import KaspiGatewayStore
import Logging

/// Which request a log line belongs to. The gateway's logger carries
/// ``metadataProvider``, so every line written while a request is handled (a checkout, a
/// refund, a resumed key) has its `request_id`, whatever logger wrote it.
public enum RequestLogContext {
    /// The request being handled by this task, if any.
    @TaskLocal public static var requestID: String?

    /// Adds `request_id` to the lines written while a request is handled.
    public static let metadataProvider = Logger.MetadataProvider {
        guard let id = requestID else { return [:] }
        return ["request_id": .string(id)]
    }

    /// A caller's `X-Request-Id` is kept when it is a plain token (1 to 64 letters, digits,
    /// `-`, `_`, `.`), so that a line cannot be forged through it; otherwise one is made.
    static func accepted(_ value: String?) -> String? {
        guard let value, (1...64).contains(value.utf8.count),
            value.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
                    || byte == 0x2E
            })
        else { return nil }
        return value
    }
}

/// Gives each request an id (the caller's `X-Request-Id` when well formed, else a new
/// `req_…`), answers it in `X-Request-Id`, logs one line per request at debug level, and
/// makes the id the task's ``RequestLogContext/requestID``.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = RequestLogContext.accepted(request.headers[.requestID]) ?? GatewayID.make("req")
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await RequestLogContext.$requestID.withValue(id) { try await next(request, context) }
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.requestID] = id
        if logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - started
            logger.debug(
                "Request",
                metadata: [
                    "request_id": "\(id)", "http.method": "\(request.method.rawValue)", "http.route": "\(context.endpointPath ?? "unmatched")",
                    "http.status": "\(response.status.code)",
                    "duration_ms": "\(Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000)",
                ])
        }
        return response
    }
}
