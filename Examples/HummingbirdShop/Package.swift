// swift-tools-version:6.1
// A shop on Hummingbird 2 that takes Kaspi payments through a KaspiKit gateway. Its own package:
// KaspiKit's root package gains no dependency from it.
import PackageDescription

let package = Package(
    name: "HummingbirdShop",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "kaspikit", path: "../.."),
        .package(path: "../ShopCore"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdShop",
            dependencies: [
                .product(name: "KaspiGatewayClient", package: "kaspikit"),
                .product(name: "KaspiEvents", package: "kaspikit"),
                .product(name: "ShopCore", package: "ShopCore"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
            ]
        )
    ]
)
