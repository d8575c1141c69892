// swift-tools-version:6.2
import PackageDescription

/// Settings for every target we own: Swift 6 mode (from the tools version), complete
/// concurrency checking, and warnings treated as errors.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "KaspiKit",
    defaultLocalization: "en",
    platforms: [.macOS(.v15), .iOS(.v16)],
    products: [
        .library(name: "KaspiPay", targets: ["KaspiPay"]),
        .library(name: "KaspiPayAsyncHTTPClient", targets: ["KaspiPayAsyncHTTPClient"]),
        .library(name: "KaspiCheckout", targets: ["KaspiCheckout"]),
        .library(name: "KaspiEvents", targets: ["KaspiEvents"]),
        .library(name: "KaspiGatewayClient", targets: ["KaspiGatewayClient"]),
        .library(name: "KaspiPayTesting", targets: ["KaspiPayTesting"]),
        .library(name: "QRCodeEncoder", targets: ["QRCodeEncoder"]),
        .library(name: "KaspiSandbox", targets: ["KaspiSandbox"]),
        .library(name: "KaspiGatewayStore", targets: ["KaspiGatewayStore"]),
        .library(name: "KaspiGateway", targets: ["KaspiGateway"]),
        .executable(name: "kaspi", targets: ["kaspi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-openapi-urlsession.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Exact: DirectSQLite.swift calls sqlite-nio's internal C target (VaporCSQLite), which
        // is not API; a test checks the SQLite it bundles (SQLiteVersionTests).
        .package(url: "https://github.com/vapor/sqlite-nio.git", exact: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // `swift package generate-documentation --target KaspiPay` (DocC), built in CI.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // The SDK core: wire models, money, signatures, client, errors, retries, rate limit,
        // polling, webhook verification. Only swift-crypto, swift-http-types and swift-log.
        .target(
            name: "KaspiPay",
            dependencies: [
                "KaspiSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Checkout in iOS apps: a session that hands the payment to the Kaspi app and verifies
        // the outcome with the gateway's client endpoint; SwiftUI views where SwiftUI exists.
        // Foundation, KaspiPay's models and our QR encoder only, so it builds for iOS 16+.
        // Its words in Kazakh, Russian and English are .lproj resources (Bundle.module).
        .target(name: "KaspiCheckout", dependencies: ["KaspiPay", "QRCodeEncoder"], resources: [.process("Resources")], swiftSettings: strict),
        // Verifying and decoding the gateway's events in the merchant's own systems: Standard
        // Webhooks signatures, typed events. swift-crypto only, so any Swift server can use it.
        .target(name: "KaspiEvents", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // A typed client of the gateway's /v1 API: code generated from openapi/gateway.yaml
        // (scripts/generate-client, committed in Generated/) and a small hand-written layer.
        .target(
            name: "KaspiGatewayClient",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            // Not `strict`: the generated files' imports warn as unused before Swift 6.4, which
            // the generator silences only from 6.4 on.
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // Text helpers shared by the modules (JSON string literals, hex); package access only.
        .target(name: "KaspiSupport", swiftSettings: strict),
        // A synchronous SQLite connection over the SQLite that sqlite-nio bundles: the gateway
        // store's group commit and the sandbox's order archive use it.
        .target(name: "KaspiSQLite", dependencies: [.product(name: "SQLiteNIO", package: "sqlite-nio")], swiftSettings: strict),
        // The QR-code encoder (not the Kaspi QR API): QR encoding (byte mode, level M, versions 1-40) and PNG/SVG rendering; no dependencies.
        .target(name: "QRCodeEncoder", swiftSettings: strict),
        // The server transport, over AsyncHTTPClient.
        .target(
            name: "KaspiPayAsyncHTTPClient",
            dependencies: [
                "KaspiPay",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict
        ),
        // Test support: a manual clock, an in-memory log handler, a recording transport and
        // the OpenAPI contract checker.
        .target(
            name: "KaspiPayTesting",
            dependencies: [
                "KaspiPay",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // The web layer the sandbox, the gateway and the demo share: Mustache pages with
        // their layout and stylesheet loaded from resources, HTML answers, form decoding.
        .target(
            name: "KaspiWeb",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strict
        ),
        // The sandbox: a stateful local emulator of Kaspi Pay, embeddable in tests and the demo.
        .target(
            name: "KaspiSandbox",
            dependencies: [
                "KaspiSupport",
                "KaspiSQLite",
                "KaspiPay",
                "KaspiWeb",
                "QRCodeEncoder",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Templates")],
            swiftSettings: strict
        ),
        // The gateway's domain (orders, state machine, outbox) and its storage: one store
        // protocol, SQLite and PostgreSQL implementations, versioned migrations.
        .target(
            name: "KaspiGatewayStore",
            dependencies: [
                "KaspiSupport",
                "KaspiSQLite",
                "KaspiPay",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The gateway service: provider protocol, merchant API, webhook ingestion, return
        // pages, reconciliation and outgoing events.
        .target(
            name: "KaspiGateway",
            dependencies: [
                "KaspiSupport",
                "KaspiGatewayStore",
                "KaspiWeb",
                "QRCodeEncoder",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "KaspiPay",
                "KaspiPayAsyncHTTPClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Templates")],
            swiftSettings: strict
        ),
        // kaspi demo: a sandbox, a gateway and a demo shop in one process.
        .target(
            name: "KaspiDemo",
            dependencies: [
                "KaspiSandbox", "KaspiGateway", "KaspiGatewayStore", "KaspiPay", "KaspiPayAsyncHTTPClient", "KaspiSupport", "KaspiWeb",
                "KaspiEvents", "KaspiGatewayClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Templates")],
            swiftSettings: strict
        ),
        // The CLI's commands, kept in a library so that they can be tested.
        .target(
            name: "KaspiCLI",
            dependencies: [
                "KaspiSupport",
                "KaspiPay",
                "KaspiPayAsyncHTTPClient",
                "KaspiSandbox",
                "KaspiGateway",
                "KaspiGatewayStore",
                "KaspiDemo",
                "QRCodeEncoder",
                "KaspiEvents",
                "KaspiGatewayClient",
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kaspi",
            dependencies: ["KaspiCLI"],
            swiftSettings: strict
        ),
        // scripts/bench's driver: the baseline server, seeding, load through wrk, checks and
        // the report (not a product; see BENCHMARKS.md).
        .executableTarget(
            name: "kaspi-bench",
            dependencies: [
                "KaspiPay", "KaspiPayTesting", "KaspiGateway", "KaspiGatewayStore", "KaspiPayAsyncHTTPClient", "KaspiEvents",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/KaspiBench",
            swiftSettings: strict
        ),
        // A small contract-following server for tests over loopback (not a product).
        .target(
            name: "KaspiTestServer",
            dependencies: [
                "KaspiPay",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/KaspiTestServer",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiEventsTests",
            dependencies: ["KaspiEvents", "KaspiPayTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiPayTests",
            dependencies: [
                "KaspiPay",
                "KaspiSupport",
                "KaspiPayTesting",
                "KaspiPayAsyncHTTPClient",
                "KaspiTestServer",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Vectors")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "QRCodeEncoderTests",
            dependencies: ["QRCodeEncoder", "KaspiPayTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiSandboxTests",
            dependencies: [
                "KaspiSandbox",
                "KaspiPay",
                "KaspiPayTesting",
                "KaspiPayAsyncHTTPClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Test support for the gateway: each test's database, SQLite or PostgreSQL.
        .target(
            name: "KaspiGatewayTestSupport",
            dependencies: ["KaspiGatewayStore", .product(name: "PostgresNIO", package: "postgres-nio")],
            path: "Tests/KaspiGatewayTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiGatewayStoreTests",
            dependencies: [
                "KaspiGatewayStore", "KaspiGatewayTestSupport", "KaspiPay", "KaspiPayTesting", "KaspiSQLite", "KaspiSandbox",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiGatewayTests",
            dependencies: [
                "KaspiGateway", "KaspiGatewayStore", "KaspiGatewayTestSupport", "KaspiSandbox", "KaspiPay", "KaspiPayTesting", "KaspiSupport",
                "KaspiCheckout", "KaspiEvents", "KaspiGatewayClient",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
                "KaspiWeb",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                "KaspiPayAsyncHTTPClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiCheckoutTests",
            dependencies: [
                "KaspiCheckout", "KaspiPayTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KaspiCLITests",
            dependencies: [
                "kaspi",
                "KaspiPay",
                "KaspiPayTesting",
                "KaspiTestServer",
                "KaspiSandbox",
                "KaspiGatewayStore",
                "KaspiGatewayTestSupport",
                "KaspiSQLite",
                "KaspiEvents",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
