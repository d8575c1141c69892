import Crypto
import Foundation
import KaspiGatewayStore
import KaspiPay
import Synchronization
import _CryptoExtras

/// The admin dashboard's secrets, prepared at start.
struct AdminSecrets: Sendable {
    /// PBKDF2-HMAC-SHA256 of the password, with its random salt and rounds.
    var passwordHash: [UInt8]
    var salt: [UInt8]
    var rounds: Int
    /// Signs session cookies and CSRF tokens; shared by instances through the database.
    var sessionKey: SymmetricKey
    /// Stands for the password in every session's signature, so that changing the password
    /// ends every session signed before: an HMAC of the configured password, or of the stored
    /// hash, under the session key (the same on every instance and across restarts).
    var passwordFingerprint: String
}

/// A signed-in admin session.
struct AdminSession: Sendable {
    var nonce: String
    var csrf: String
}

/// The dashboard's sign-in: the password's hash, session and CSRF tokens signed with a key
/// shared by every instance through the database, sign-outs every instance honours, and the
/// throttle on failed attempts.
final class AdminSignIn: GatewayPart {
    let context: GatewayContext
    /// The secrets, once prepared (``prepareAdmin()``).
    let admin = Mutex<AdminSecrets?>(nil)
    /// Failed sign-ins, per client address and in all.
    let signInThrottle = SignInThrottle()

    init(context: GatewayContext) { self.context = context }

    /// Prepares the dashboard's secrets. With no password configured, one is generated the
    /// first time and returned so that it can be printed once; later starts reuse its hash.
    ///
    /// - Returns: the generated password, when one was generated now.
    @discardableResult
    func prepareAdmin() async throws -> String? {
        let sessionSecret = try await store.setting(
            "admin.session_key", orInsert: Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString())
        let key = SymmetricKey(data: Data(base64Encoded: sessionSecret) ?? Data(sessionSecret.utf8))
        var generated: String? = nil
        let hashed: (salt: [UInt8], hash: [UInt8], rounds: Int)
        let fingerprint: String
        if let password = configuration.adminPassword {
            hashed = Self.hashPassword(password)
            fingerprint = HMACToken.mac("password:configured:\(password)", key)
        } else if try await store.setting(Self.passwordSetting) == nil, let legacy = try await store.setting("admin.password") {
            // Stored by an earlier version (20,000 rounds): upgraded at the next sign-in.
            let parts = legacy.split(separator: ".").map { Array(Data(base64Encoded: String($0)) ?? Data()) }
            hashed = (parts.first ?? [], parts.count > 1 ? parts[1] : [], 20_000)
            fingerprint = HMACToken.mac("password:stored:\(legacy)", key)
        } else {
            let candidate = String(GatewayID.make("pw", length: 16).dropFirst(3))
            let encoded = Self.encodePassword(Self.hashPassword(candidate))
            let stored = try await store.setting(Self.passwordSetting, orInsert: encoded)
            if stored == encoded { generated = candidate }
            hashed = Self.decodePassword(stored) ?? ([], [], Self.pbkdf2Rounds)
            fingerprint = HMACToken.mac("password:stored:\(stored)", key)
        }
        admin.withLock {
            $0 = AdminSecrets(passwordHash: hashed.hash, salt: hashed.salt, rounds: hashed.rounds, sessionKey: key, passwordFingerprint: fingerprint)
        }
        return generated
    }

    static let passwordSetting = "admin.password.v2"

    /// OWASP's figure for PBKDF2-HMAC-SHA256.
    static let pbkdf2Rounds = 600_000

    /// A random salt and the password's PBKDF2-HMAC-SHA256.
    static func hashPassword(_ password: String) -> (salt: [UInt8], hash: [UInt8], rounds: Int) {
        let salt = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        return (salt, pbkdf2(password, salt: salt, rounds: pbkdf2Rounds), pbkdf2Rounds)
    }

    /// `rounds.salt.hash`, the salt and hash in base64.
    static func encodePassword(_ hashed: (salt: [UInt8], hash: [UInt8], rounds: Int)) -> String {
        "\(hashed.rounds).\(Data(hashed.salt).base64EncodedString()).\(Data(hashed.hash).base64EncodedString())"
    }

    static func decodePassword(_ text: String) -> (salt: [UInt8], hash: [UInt8], rounds: Int)? {
        let parts = text.split(separator: ".")
        guard parts.count == 3, let rounds = Int(parts[0]), rounds > 0, let salt = Data(base64Encoded: String(parts[1])),
            let hash = Data(base64Encoded: String(parts[2]))
        else { return nil }
        return (Array(salt), Array(hash), rounds)
    }

    /// PBKDF2-HMAC-SHA256 through swift-crypto, 32 bytes.
    static func pbkdf2(_ password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        return key?.withUnsafeBytes { Array($0) } ?? []
    }

    /// Whether `password` is the admin's, in constant time; a password stored with fewer
    /// rounds than today's is stored again with today's once it is proven.
    func verifyAdminPassword(_ password: String) async -> Bool {
        guard let secrets = admin.withLock({ $0 }), !secrets.passwordHash.isEmpty else { return false }
        let candidate = Self.pbkdf2(password, salt: secrets.salt, rounds: secrets.rounds)
        guard Signature.constantTimeEquals(Data(candidate).base64EncodedString(), Data(secrets.passwordHash).base64EncodedString()) else {
            return false
        }
        if secrets.rounds < Self.pbkdf2Rounds, configuration.adminPassword == nil,
            let stored = try? await store.setting(Self.passwordSetting, orInsert: Self.encodePassword(Self.hashPassword(password))),
            let upgraded = Self.decodePassword(stored)
        {
            admin.withLock {
                $0?.passwordHash = upgraded.hash
                $0?.salt = upgraded.salt
                $0?.rounds = upgraded.rounds
                if let key = $0?.sessionKey { $0?.passwordFingerprint = HMACToken.mac("password:stored:\(stored)", key) }
            }
            logger.info("Dashboard password hash upgraded to \(Self.pbkdf2Rounds) PBKDF2 rounds")
        }
        return true
    }

    /// Whether the dashboard is served over https (its cookies are then `Secure`).
    var servesHTTPS: Bool { configuration.publicURL?.lowercased().hasPrefix("https://") ?? false }

    /// How long a dashboard session lasts.
    static let adminSessionLifetime = 12 * 3600

    /// The signed-in session a token stands for, if it is genuine, unexpired and not signed
    /// out.
    func adminSession(token: String) async -> AdminSession? {
        guard let secrets = admin.withLock({ $0 }) else { return nil }
        let parts = token.split(separator: ".").map(String.init)
        guard parts.count == 3, let expiry = Double(parts[0]), expiry > now().timeIntervalSince1970,
            Signature.constantTimeEquals(
                parts[2], HMACToken.mac("session:\(parts[0]):\(parts[1]):\(secrets.passwordFingerprint)", secrets.sessionKey))
        else { return nil }
        // Signed-out sessions are remembered in the database, so every instance refuses them.
        // When the database cannot say, the session is refused (fail closed).
        do {
            guard try await store.setting("admin.signed_out.\(parts[1])") == nil else { return nil }
        } catch {
            return nil
        }
        return AdminSession(nonce: parts[1], csrf: HMACToken.mac("csrf:\(parts[1])", secrets.sessionKey))
    }

    /// A new session's token: `expiry.nonce.signature`.
    func newAdminSessionToken() -> String? {
        guard let secrets = admin.withLock({ $0 }) else { return nil }
        let expiry = String(Int(now().timeIntervalSince1970) + Self.adminSessionLifetime)
        let nonce = GatewayID.make("s", length: 20).dropFirst(2)
        // Signed with the password's fingerprint too: a new password ends every older session.
        return "\(expiry).\(nonce).\(HMACToken.mac("session:\(expiry):\(nonce):\(secrets.passwordFingerprint)", secrets.sessionKey))"
    }

    /// Signs a session out on every instance.
    func signOut(_ session: AdminSession) async throws {
        _ = try await store.setting("admin.signed_out.\(session.nonce)", orInsert: now().ISO8601Format())
    }
}
