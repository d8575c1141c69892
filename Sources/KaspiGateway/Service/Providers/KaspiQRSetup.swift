import Foundation
import KaspiGatewayStore
import KaspiPay
import KaspiPayAsyncHTTPClient
import Logging

/// Builds the Kaspi QR API's client and manages the gateway's devices: what
/// `kaspi gateway --profile qr` and its `tradepoints`, `device` and `check` commands use.
public enum KaspiQRSetup {
    /// A transport for the settings: with the client certificate and CA bundle on r2 and r3,
    /// through the forward proxy when one is set.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError`` when a certificate file cannot be read.
    public static func transport(
        _ settings: KaspiQRAPI.Settings, readTimeout: Duration = .seconds(30)
    ) throws(ConfigurationError) -> AsyncHTTPClientTransport {
        if let files = settings.certificates {
            return try AsyncHTTPClientTransport(tls: KaspiTLSSettings(files), readTimeout: readTimeout, proxy: settings.proxy)
        }
        return AsyncHTTPClientTransport(readTimeout: readTimeout, proxy: settings.proxy)
    }

    /// A client of the configured scheme.
    ///
    /// - Throws: ``KaspiPay/ConfigurationError`` for a missing key or BIN, or an unknown host.
    public static func client(
        _ settings: KaspiQRAPI.Settings, transport: some KaspiTransport, requestTimeout: Duration = .seconds(30),
        rateLimiter: (any RequestRateLimiter)? = nil, logger: Logger
    ) throws(ConfigurationError) -> KaspiQRAPI.AnyClient {
        let configuration = KaspiQRAPI.Configuration(host: settings.host, requestTimeout: requestTimeout)
        switch settings.scheme {
        case .r1:
            guard let apiKey = settings.apiKey else { throw .missingVariable("KASPI_QR_API_KEY") }
            return .r1(try .init(apiKey: apiKey, configuration: configuration, transport: transport, rateLimiter: rateLimiter, logger: logger))
        case .r2:
            return .r2(try .init(configuration: configuration, transport: transport, rateLimiter: rateLimiter, logger: logger))
        case .r3:
            guard let bin = settings.organizationBin else { throw .missingVariable("KASPI_QR_ORGANIZATION_BIN") }
            return .r3(try .init(organizationBin: bin, configuration: configuration, transport: transport, rateLimiter: rateLimiter, logger: logger))
        }
    }

    /// Why a device could not be managed.
    public struct DeviceError: Error, Sendable, CustomStringConvertible {
        /// A stable machine code.
        public var code: String
        /// What happened and what to do.
        public var message: String
        public var description: String { message }
    }

    /// Registers the gateway as a device on a trade point and stores its token. Registering
    /// the same device id again returns the same token (Kaspi's register is idempotent).
    ///
    /// - Parameters:
    ///   - deviceID: the id to register under; by default `kaspikit-<trade point>-<random>`.
    ///   - isDefault: whether checkouts use it by default (the first device always is).
    ///   - referencePrefix: checkouts whose merchant reference starts with this use it.
    ///   - organizationBin: r3: the organization (default: the configured one).
    public static func registerDevice(
        client: KaspiQRAPI.AnyClient, store: any GatewayStore, tradePointID: Int64, deviceID: String? = nil, isDefault: Bool = false,
        referencePrefix: String? = nil, organizationBin: KaspiQRAPI.OrganizationBIN? = nil, now: Date = Date()
    ) async throws -> ProviderDevice {
        let scoped = client.acting(for: organizationBin)
        let id = deviceID ?? "kaspikit-\(tradePointID)-\(GatewayID.make("d").dropFirst(2).prefix(10))"
        let token = try await scoped.registerDevice(id: id, tradePointID: tradePointID)
        let existing = try await store.devices(provider: KaspiQRProvider.providerName)
        let bin = (organizationBin ?? client.organizationBin)?.value
        if let same = existing.first(where: { $0.deviceID == id && $0.organizationBin == bin }) {
            var updated = same
            updated.token = token.value
            updated.tradePointID = tradePointID
            if isDefault { updated.isDefault = true }
            if let referencePrefix { updated.referencePrefix = referencePrefix }
            try await store.save(updated)
            return updated
        }
        let device = ProviderDevice(
            id: GatewayID.make("dev"), provider: KaspiQRProvider.providerName, organizationBin: bin, tradePointID: tradePointID, deviceID: id,
            token: token.value, isDefault: isDefault || existing.isEmpty, referencePrefix: referencePrefix, createdAt: now)
        try await store.save(device)
        return device
    }

    /// Deletes a device at Kaspi and in the store. A device Kaspi no longer knows (-1501) or
    /// already deleted (-1502) is removed from the store all the same.
    public static func deleteDevice(
        client: KaspiQRAPI.AnyClient, store: any GatewayStore, id: String, now: Date = Date()
    ) async throws -> ProviderDevice {
        let devices = try await store.devices(provider: KaspiQRProvider.providerName)
        guard let device = devices.first(where: { $0.id == id || $0.deviceID == id }) else {
            throw DeviceError(code: "DEVICE_NOT_FOUND", message: "No registered device \(id): see `kaspi gateway device list`.")
        }
        let scoped = client.acting(for: device.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) })
        if let token = try? KaspiQRAPI.DeviceToken(device.token) {
            let outcome = await Self.attempt { () async throws(KaspiQRAPI.APIError) in try await scoped.deleteDevice(token) }
            // A device Kaspi has forgotten already is removed from the store all the same.
            if let outcome, outcome.statusCode != .deviceNotFound, outcome.statusCode != .deviceNotActive { throw outcome }
        }
        _ = try await store.deleteDevice(id: device.id, at: now)
        if device.isDefault, let next = try await store.devices(provider: KaspiQRProvider.providerName).first {
            var promoted = next
            promoted.isDefault = true
            try await store.save(promoted)
        }
        return device
    }

    /// The error a call threw, or nil.
    static func attempt(_ body: () async throws(KaspiQRAPI.APIError) -> Void) async -> KaspiQRAPI.APIError? {
        do {
            try await body()
            return nil
        } catch {
            return error
        }
    }

    /// Replaces a device with a new one on the same trade point (a new id, so a new token),
    /// then deletes the old one: for a token that may have leaked.
    public static func rotateDevice(
        client: KaspiQRAPI.AnyClient, store: any GatewayStore, id: String, now: Date = Date()
    ) async throws -> ProviderDevice {
        let devices = try await store.devices(provider: KaspiQRProvider.providerName)
        guard let old = devices.first(where: { $0.id == id || $0.deviceID == id }) else {
            throw DeviceError(code: "DEVICE_NOT_FOUND", message: "No registered device \(id): see `kaspi gateway device list`.")
        }
        let replacement = try await registerDevice(
            client: client, store: store, tradePointID: old.tradePointID, isDefault: old.isDefault, referencePrefix: old.referencePrefix,
            organizationBin: old.organizationBin.flatMap { try? KaspiQRAPI.OrganizationBIN($0) }, now: now)
        _ = try await deleteDevice(client: client, store: store, id: old.id, now: now)
        if old.isDefault {
            var kept = replacement
            kept.isDefault = true
            try await store.save(kept)
            return kept
        }
        return replacement
    }
}
