import Hummingbird
import KaspiGatewayStore

/// The public client endpoint, `GET /client/v1/orders/{id}`, for the payer's app: the order's
/// state, amount, payment URL or QR and deadlines, for the holder of its client secret (the
/// `Client-Secret` header). No API key: the app never holds the merchant's.
struct ClientController {
    let gateway: Gateway

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let client = router.group("client/v1").add(middleware: APIErrorMiddleware(logger: gateway.logger))
        client.get("orders/:id") { request, context in
            let view = try await gateway.clientOrder(
                id: try context.parameters.require("id"), clientSecret: request.headers[.clientSecret], client: context.clientAddress)
            var response = try GatewayJSON().encode(ClientOrderResponse(view), from: request, context: context)
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }
}
