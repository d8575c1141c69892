import Foundation
import KaspiGatewayClient
import OpenAPIAsyncHTTPClient
import ShopCore
import Vapor

// A shop on Vapor 4. The shop's logic is in ShopCore; this file is what Vapor adds: routes,
// bodies and headers in, replies out.

extension Reply: @retroactive AsyncResponseEncodable {
    public func encodeResponse(for request: Request) async throws -> Response {
        var headers = HTTPHeaders([("Content-Type", contentType)])
        if let location { headers.replaceOrAdd(name: .location, value: location) }
        return Response(status: .init(statusCode: status), headers: headers, body: .init(string: body))
    }
}

let configuration: ShopConfiguration
do { configuration = try ShopConfiguration.fromEnvironment(defaultPort: 8080) } catch {
    FileHandle.standardError.write(Data("shop: \(error)\n".utf8))
    exit(2)
}
let app = try await Application.make(.production)
app.http.server.configuration.hostname = "127.0.0.1"
app.http.server.configuration.port = configuration.port
// Vapor's own AsyncHTTPClient carries the gateway's API.
let gateway = KaspiGatewayClient(
    baseURL: configuration.gatewayURL, apiKey: configuration.apiKey,
    transport: AsyncHTTPClientTransport(configuration: .init(client: app.http.client.shared)))
let shop = try Shop(configuration: configuration, gateway: gateway)

/// The request's body as bytes (at most 64 KiB).
func bytes(_ request: Request) async throws -> [UInt8] {
    let body = try await request.body.collect(max: 64 * 1024).get()
    return body.map { Array($0.readableBytesView) } ?? []
}

app.get { _ in await shop.catalogue() }
app.post("buy") { request in await shop.buy(item: formField("item", in: try await bytes(request))) }
app.get("result") { request in await shop.result(gatewayOrderID: request.query[String.self, at: "gatewayOrderId"]) }
app.post("events") { request in
    // The raw body: the signature covers its exact bytes.
    let body = try await bytes(request)
    return await shop.receiveEvent(body: body) { name in request.headers.first(name: name) }
}
app.post("refund") { request in await shop.refund(reference: formField("reference", in: try await bytes(request))) }
app.get("orders", ":reference") { request in await shop.sale(reference: request.parameters.get("reference") ?? "") }

try await app.execute()
try await app.asyncShutdown()
