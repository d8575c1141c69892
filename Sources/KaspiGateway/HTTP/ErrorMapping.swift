import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The one place where the gateway's domain errors become HTTP.
extension GatewayError.Kind {
    /// The status code that answers this kind of failure.
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .invalidRequest: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .gone: .gone
        case .tooLarge: .contentTooLarge
        case .tooSoon: .tooManyRequests
        case .providerConflict: .conflict
        case .providerRejected: .unprocessableContent
        case .providerRefused, .providerOutcomeUnknown: .badGateway
        case .providerUnavailable, .storageUnavailable: .serviceUnavailable
        case .misconfigured, .internal: .internalServerError
        }
    }
}

/// `{"error": {"code": …, "message": …}}`, the body of every API error.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        var code: String
        var message: String
    }
    var error: Detail
}

extension GatewayError: HTTPResponseError {
    /// The HTTP status for ``kind``.
    public var status: HTTPResponse.Status { kind.httpStatus }

    /// The error as a JSON answer, with `Retry-After` when known.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse
    }

    /// The error's JSON body.
    var jsonBody: ByteBuffer { (try? GatewayJSON.encode(ErrorBody(error: .init(code: code, message: message)))) ?? ByteBuffer() }

    /// The error as a JSON answer with `body` (its ``jsonBody``), and `Retry-After` when known.
    func jsonResponse(body: ByteBuffer) -> Response {
        var response = GatewayJSON.response(status, body)
        if let retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }

    var jsonResponse: Response { jsonResponse(body: jsonBody) }

    /// Any error thrown while answering an API request, as the gateway error to answer with:
    /// Hummingbird's own (a body too large, a route parameter missing) in our words, and the
    /// unforeseen logged and answered without their details.
    static func answering(_ error: any Error, logger: Logger) -> GatewayError {
        switch error {
        case let error as GatewayError: return error
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return .bodyUnreadable(error, limit: 64 * 1024)
        case let error as HTTPError where error.status == .badRequest:
            return .invalid(error.body ?? "The request is malformed.")
        case let error as HTTPError where error.status == .notFound:
            return .init(.notFound, "NOT_FOUND", "No such resource.")
        default:
            logger.error("Unexpected API failure", metadata: ["error.type": "\(type(of: error))"])
            return .internalError
        }
    }
}

/// Answers every error of the merchant API and the webhook endpoint in the API's JSON shape.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return GatewayError.answering(error, logger: logger).jsonResponse
        }
    }
}
