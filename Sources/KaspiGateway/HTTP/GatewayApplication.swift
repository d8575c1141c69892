import Hummingbird
import KaspiWeb
import Logging
import ServiceLifecycle

extension Gateway {
    /// The gateway's HTTP application: the merchant API under `/v1`, Kaspi's webhooks, the
    /// payer's pages, the dashboard, health and metrics. `services` (the PostgreSQL pool, say)
    /// and the background services (``Poller``, ``OutboxDispatcher``, ``Janitor``) are
    /// services of the application: they start before the server and stop after it, at
    /// graceful shutdown.
    ///
    /// - Parameters:
    ///   - services: services the gateway needs running, such as the PostgreSQL pool.
    ///   - beforeServing: runs once the services run and before the server listens (the
    ///     migrations); the worker waits for it too.
    ///   - onServerRunning: called with the bound port.
    /// - Throws: ``KaspiWeb/PageLibrary/LoadError`` when the page templates are missing.
    public func application(
        services: [any Service] = [], beforeServing: (@Sendable () async throws -> Void)? = nil,
        onServerRunning: (@Sendable (Int) async -> Void)? = nil
    ) throws -> some ApplicationProtocol {
        let pages = try Self.pages()
        // The dashboard and metrics on a listener of their own (loopback by default): the
        // public one serves only the payer's pages, the APIs and Kaspi's webhooks.
        var admin = Application(
            router: router(.admin, pages: pages),
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: .init(
                address: .hostname(configuration.adminHost, port: configuration.resolvedAdminPort), serverName: "kaspi-gateway-admin"),
            onServerRunning: { channel in self.context.adminBoundPort.set(channel.localAddress?.port ?? 0) },
            logger: logger)
        let readiness = self.readiness
        // Not before the store is migrated.
        admin.beforeServerStarts { await readiness.wait() }
        var app = Application(
            router: router(.public, pages: pages),
            // Connections that stop sending (slowloris) are closed rather than held forever.
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "kaspi-gateway"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                self.context.boundPort.set(port)
                await onServerRunning?(port)
            },
            logger: logger)
        app.addServices(services)
        app.addServices(admin)
        // Independent services: none waits for another (a slow merchant endpoint never holds
        // up a poll).
        app.addServices(Poller(gateway: self), OutboxDispatcher(gateway: self), Janitor(gateway: self))
        app.beforeServerStarts {
            try await beforeServing?()
            // Before any claim of this run, so that only the last run's leases are released.
            await self.releaseOwnLeases()
            self.readiness.open()
        }
        return app
    }

    /// The gateway's pages: its templates and stylesheet.
    static func pages() throws -> PageLibrary {
        try PageLibrary(
            bundle: "KaspiKit_KaspiGateway.resources", folder: "Templates",
            sourceFolder: #filePath.replacingOccurrences(of: "/HTTP/GatewayApplication.swift", with: "/Templates"),
            required: [
                "layout", "message", "result", "link", "admin-layout", "admin-message", "admin-login", "admin-orders", "admin-order",
                "admin-refunds", "admin-links", "admin-link", "admin-events", "admin-settings", "admin-kaspi", "admin-invoices",
                "admin-invoice-confirm", "admin-returns", "admin-return",
            ])
    }

    /// Which of the gateway's listeners a router serves.
    enum Listener {
        /// The public one: the payer's pages, the merchant API, the client endpoint, Kaspi's
        /// webhooks, health.
        case `public`
        /// The admin one: the dashboard, metrics, health.
        case admin
        /// Both sets of routes (Hummingbird's router tests).
        case all
    }

    /// The routes of one listener, one controller per area.
    func router(_ listener: Listener = .all) throws -> Router<GatewayRequestContext> {
        router(listener, pages: try Self.pages())
    }

    func router(_ listener: Listener, pages: PageLibrary) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestIDMiddleware(logger: logger))
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        // Validated at start; a configuration made in code without validation trusts no proxy.
        router.add(middleware: ClientAddressMiddleware(trusted: (try? TrustedProxies(configuration.trustedProxies)) ?? .none))
        OperationsController(gateway: self).addRoutes(to: router, metrics: listener != .public)
        if listener != .admin {
            WebhookController(gateway: self).addRoutes(to: router)
            MerchantAPIController(gateway: self).addRoutes(to: router)
            ClientController(gateway: self).addRoutes(to: router)
            PublicPagesController(gateway: self, pages: pages).addRoutes(to: router)
        }
        if listener != .public { DashboardController(gateway: self, pages: pages).addRoutes(to: router) }
        pages.addAssetRoutes(to: router)
        // Last, once every route is known: a known path asked with another method is a 405.
        router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes.map { ($0.method, $0.path.description) }))
        return router
    }
}
