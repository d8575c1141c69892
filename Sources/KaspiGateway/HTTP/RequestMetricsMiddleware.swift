import Hummingbird

/// Counts every request by its route pattern and status.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? "unmatched", status: response.status.code)
            return response
        } catch {
            metrics.request(route: context.endpointPath ?? "unmatched", status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
    }
}
