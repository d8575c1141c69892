// swift-tools-version:6.1
// What both example shops do with KaspiKit, apart from their web framework: checkout through
// KaspiGatewayClient, the return page, the events endpoint verified with KaspiEvents, refunds.
import PackageDescription

let package = Package(
    name: "ShopCore",
    platforms: [.macOS(.v15)],
    products: [.library(name: "ShopCore", targets: ["ShopCore"])],
    dependencies: [.package(name: "kaspikit", path: "../..")],
    targets: [
        .target(
            name: "ShopCore",
            dependencies: [
                .product(name: "KaspiGatewayClient", package: "kaspikit"),
                .product(name: "KaspiEvents", package: "kaspikit"),
            ]
        )
    ]
)
