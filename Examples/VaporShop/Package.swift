// swift-tools-version:6.1
// A shop on Vapor 4 that takes Kaspi payments through a KaspiKit gateway. Its own package:
// KaspiKit's root package gains no dependency from it.
import PackageDescription

let package = Package(
    name: "VaporShop",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "kaspikit", path: "../.."),
        .package(path: "../ShopCore"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "VaporShop",
            dependencies: [
                .product(name: "KaspiGatewayClient", package: "kaspikit"),
                .product(name: "KaspiEvents", package: "kaspikit"),
                .product(name: "ShopCore", package: "ShopCore"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
            ]
        )
    ]
)
