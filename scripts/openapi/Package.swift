// swift-tools-version:6.1
// The OpenAPI generator, as a tool only: scripts/generate-client runs it to write
// Sources/KaspiGatewayClient/Generated from openapi/gateway.yaml. The generated code is
// committed, so building KaspiKit never builds the generator.
import PackageDescription

let package = Package(
    name: "openapi-tools",
    dependencies: [.package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3")],
    targets: []
)
