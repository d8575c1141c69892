import Hummingbird

/// Answers a request whose path has routes, but none for its method, with `405 Method Not
/// Allowed` and an `Allow` header listing the methods it does have (RFC 9110), instead of the
/// router's 404. The table is read from the router's own routes once they are all added.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each route's path, as segments (`{name}`, `:name` and `*` match one segment, `**` the
    /// rest), and its method.
    let routes: [(segments: [Substring], method: HTTPRequest.Method)]

    /// A table from the router's routes, e.g. `router.routes.map { ($0.method, $0.path.description) }`.
    public init(routes: [(method: HTTPRequest.Method, path: String)]) {
        self.routes = routes.map { (Self.segments($0.path), $0.method) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = Self.segments(request.uri.path)
            let methods = Set(routes.filter { Self.matches($0.segments, path) }.map(\.method.rawValue))
            guard !methods.isEmpty, !methods.contains(request.method.rawValue) else { throw error }
            return Response(
                status: .methodNotAllowed,
                headers: [.allow: methods.sorted().joined(separator: ", "), .contentType: "application/json; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string:
                            #"{"error":{"code":"METHOD_NOT_ALLOWED","message":"This path answers \#(methods.sorted().joined(separator: ", ")) only."}}"#
                    )))
        }
    }

    static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    static func matches(_ pattern: [Substring], _ path: [Substring]) -> Bool {
        var index = 0
        for segment in pattern {
            if segment == "**" { return true }
            guard index < path.count else { return false }
            // A capture (`{id}`, or `:id` as routes are written) or a wildcard matches any segment.
            let capture = segment.hasPrefix(":") || (segment.hasPrefix("{") && segment.hasSuffix("}")) || segment == "*"
            if !(capture || segment == path[index]) { return false }
            index += 1
        }
        return index == path.count
    }
}
