import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KaspiGatewayClient
import OpenAPIAsyncHTTPClient
import ShopCore

// A shop on Hummingbird 2. The shop's logic is in ShopCore; this file is what Hummingbird adds:
// routes, bodies and headers in, replies out.

extension Reply {
    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        if let location { headers[.location] = location }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

let configuration: ShopConfiguration
do { configuration = try ShopConfiguration.fromEnvironment(defaultPort: 3000) } catch {
    FileHandle.standardError.write(Data("shop: \(error)\n".utf8))
    exit(2)
}
// AsyncHTTPClient on a server: many requests at once share its connection pool.
let gateway = KaspiGatewayClient(
    baseURL: configuration.gatewayURL, apiKey: configuration.apiKey,
    transport: AsyncHTTPClientTransport(configuration: .init(client: HTTPClient.shared)))
let shop = try Shop(configuration: configuration, gateway: gateway)

let router = Router()
router.get("/") { _, _ in await shop.catalogue().response }
router.post("/buy") { request, _ in
    let body = try await request.body.collect(upTo: 4096)
    return await shop.buy(item: formField("item", in: Array(buffer: body))).response
}
router.get("/result") { request, _ in
    await shop.result(gatewayOrderID: request.uri.queryParameters.get("gatewayOrderId")).response
}
router.post("/events") { request, _ in
    // The raw body: the signature covers its exact bytes.
    let body = try await request.body.collect(upTo: 64 * 1024)
    return await shop.receiveEvent(body: Array(buffer: body)) { name in HTTPField.Name(name).flatMap { request.headers[$0] } }.response
}
router.post("/refund") { request, _ in
    let body = try await request.body.collect(upTo: 4096)
    return await shop.refund(reference: formField("reference", in: Array(buffer: body))).response
}
router.get("/orders/:reference") { _, context in await shop.sale(reference: try context.parameters.require("reference")).response }

let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: configuration.port), serverName: "hummingbird-shop"))
try await app.runService()
