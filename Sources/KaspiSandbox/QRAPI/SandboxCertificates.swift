import Crypto
import Foundation
import KaspiSupport
import SwiftASN1
import X509
import _CryptoExtras

/// The sandbox's certificate authority, made the way Kaspi's `cert.request` flow hands them
/// out: a CA, a server certificate for the TLS ports, and a client certificate with its key,
/// as PEM and as PKCS#12 (`client.p12`, with its password in `client.p12.password`).
///
/// The client certificate names the organizations it may act for as
/// `OU=<BIN>` attributes: one for r2, one or more for r3.
public struct SandboxCertificates: Sendable {
    /// The files in a certificates directory.
    public struct Paths: Sendable, Hashable {
        /// The folder the files are in.
        public var directory: String
        /// `ca.pem`: the CA that signs the server and client certificates.
        public var caCertificate: String { directory + "/ca.pem" }
        /// `ca-key.pem`: the CA's key.
        public var caKey: String { directory + "/ca-key.pem" }
        /// `server.pem`: the TLS ports' certificate.
        public var serverCertificate: String { directory + "/server.pem" }
        /// `server-key.pem`: its key.
        public var serverKey: String { directory + "/server-key.pem" }
        /// `client.pem`: the client certificate, for the organizations named at generation.
        public var clientCertificate: String { directory + "/client.pem" }
        /// `client-key.pem`: its key.
        public var clientKey: String { directory + "/client-key.pem" }
        /// `client.p12`: the client certificate and key as PKCS#12.
        public var clientPKCS12: String { directory + "/client.p12" }
        /// `client.p12.password`: the PKCS#12 file's password.
        public var clientPKCS12Password: String { directory + "/client.p12.password" }

        /// The files in `directory`.
        public init(directory: String) {
            var directory = directory
            while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
            self.directory = directory
        }
    }

    /// Writes a new CA, server certificate and client certificate into `directory`
    /// (created if needed), replacing what is there.
    ///
    /// - Parameters:
    ///   - organizations: the BINs the client certificate may act for.
    ///   - hosts: names and IP addresses the server certificate is valid for.
    ///   - password: the PKCS#12 password; a random one when nil.
    ///   - clientValidity: how long the client certificate stays valid (five years by default;
    ///     a short one tests expiry warnings).
    /// - Returns: where the files are.
    @discardableResult
    public static func generate(
        in directory: String, organizations: [String],
        hosts: [String] = ["localhost", "127.0.0.1", "::1", "mtokentest.kaspi.kz"], password: String? = nil,
        clientValidity: TimeInterval = 5 * 365 * 86_400
    ) throws -> Paths {
        let paths = Paths(directory: directory)
        try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            CountryName("KZ")
            OrganizationName("KaspiKit Sandbox")
            CommonName("KaspiKit Sandbox Root CA")
        }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(5 * 365 * 86_400), issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))

        let serverKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = []
        for host in hosts {
            if let address = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: address[...])))
            } else {
                names.append(.dnsName(host))
            }
        }
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(5 * 365 * 86_400), issuer: caName,
            subject: try DistinguishedName {
                OrganizationName("KaspiKit Sandbox")
                CommonName(hosts.first ?? "localhost")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(caKey))

        let clientKey = P256.Signing.PrivateKey()
        let client = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(clientKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(clientValidity), issuer: caName,
            subject: try DistinguishedName {
                CountryName("KZ")
                OrganizationName("KaspiKit Sandbox partner")
                for bin in organizations { OrganizationalUnitName(bin) }
                CommonName("KaspiKit sandbox client")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
            },
            issuerPrivateKey: .init(caKey))

        let password = password ?? randomPassword()
        try write(try ca.serializeAsPEM().pemString, to: paths.caCertificate, private: false)
        try write(caKey.pemRepresentation, to: paths.caKey, private: true)
        try write(try server.serializeAsPEM().pemString, to: paths.serverCertificate, private: false)
        try write(serverKey.pemRepresentation, to: paths.serverKey, private: true)
        try write(try client.serializeAsPEM().pemString, to: paths.clientCertificate, private: false)
        try write(clientKey.pemRepresentation, to: paths.clientKey, private: true)
        var serializer = DER.Serializer()
        try serializer.serialize(client)
        let p12 = try PKCS12Writer.bundle(
            certificate: serializer.serializedBytes, privateKeyPKCS8: Array(clientKey.derRepresentation), password: password)
        try PrivateFiles.write(p12, to: paths.clientPKCS12)
        try write(password + "\n", to: paths.clientPKCS12Password, private: true)
        return paths
    }

    /// Keys are their owner's from the first byte, and a link planted where one goes is
    /// replaced, never followed.
    private static func write(_ text: String, to path: String, private isPrivate: Bool) throws {
        try PrivateFiles.write(Array(text.utf8), to: path, mode: isPrivate ? 0o600 : 0o644)
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<20).map { _ in alphabet.randomElement() ?? "x" })
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// Checks client certificates against the sandbox's CA and reads the organizations they name.
final class SandboxCertificateAuthority: Sendable {
    let certificate: Certificate
    let paths: SandboxCertificates.Paths

    /// Loads the CA of a certificates directory, generating one (for `organizations`) when the
    /// directory has none.
    init(directory: String, organizations: [String]) throws {
        let paths = SandboxCertificates.Paths(directory: directory)
        if !FileManager.default.fileExists(atPath: paths.caCertificate) {
            try SandboxCertificates.generate(in: directory, organizations: organizations)
        }
        let pem = try String(contentsOfFile: paths.caCertificate, encoding: .utf8)
        self.certificate = try Certificate(pemEncoded: pem)
        self.paths = paths
    }

    /// The BINs a client certificate may act for, or nil when it is not one this CA issued,
    /// or not valid now.
    func organizations(ofClientCertificate der: [UInt8], at now: Date) -> [String]? {
        guard let client = try? Certificate(derEncoded: der), client.issuer == certificate.subject,
            certificate.publicKey.isValidSignature(client.signature, for: client),
            client.notValidBefore <= now, now <= client.notValidAfter
        else { return nil }
        var bins: [String] = []
        for rdn in client.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationalUnitName {
                if let text = String(attribute.value) { bins.append(text) }
            }
        }
        return bins
    }
}

/// Writes a PKCS#12 file the way OpenSSL 3 does by default: the key shrouded with PBES2
/// (PBKDF2-HMAC-SHA256, AES-256-CBC), the certificate in clear, and an HMAC-SHA256 MAC.
enum PKCS12Writer {
    static func bundle(certificate: [UInt8], privateKeyPKCS8: [UInt8], password: String, iterations: Int = 2048) throws -> [UInt8] {
        let keyID = Array(SHA256.hash(data: certificate).prefix(20))
        let localKeyID = DERWriter.set(DERWriter.sequence(DERWriter.oid([1, 2, 840, 113549, 1, 9, 21]) + DERWriter.set(DERWriter.octets(keyID))))
        // The certificate bag.
        let certBag = DERWriter.sequence(
            DERWriter.oid([1, 2, 840, 113549, 1, 12, 10, 1, 3])
                + DERWriter.explicit(
                    0, DERWriter.sequence(DERWriter.oid([1, 2, 840, 113549, 1, 9, 22, 1]) + DERWriter.explicit(0, DERWriter.octets(certificate))))
                + localKeyID)
        // The shrouded key bag.
        let salt = randomBytes(16)
        let iv = randomBytes(16)
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        let encrypted = try AES._CBC.encrypt(privateKeyPKCS8, using: key, iv: AES._CBC.IV(ivBytes: iv))
        let pbes2 = DERWriter.sequence(
            DERWriter.oid([1, 2, 840, 113549, 1, 5, 13])
                + DERWriter.sequence(
                    DERWriter.sequence(
                        DERWriter.oid([1, 2, 840, 113549, 1, 5, 12])
                            + DERWriter.sequence(
                                DERWriter.octets(salt) + DERWriter.integer(iterations)
                                    + DERWriter.sequence(DERWriter.oid([1, 2, 840, 113549, 2, 9]) + DERWriter.null)))
                        + DERWriter.sequence(DERWriter.oid([2, 16, 840, 1, 101, 3, 4, 1, 42]) + DERWriter.octets(iv))))
        let keyBag = DERWriter.sequence(
            DERWriter.oid([1, 2, 840, 113549, 1, 12, 10, 1, 2])
                + DERWriter.explicit(0, DERWriter.sequence(pbes2 + DERWriter.octets(Array(encrypted))))
                + localKeyID)
        func dataContent(_ content: [UInt8]) -> [UInt8] {
            DERWriter.sequence(DERWriter.oid([1, 2, 840, 113549, 1, 7, 1]) + DERWriter.explicit(0, DERWriter.octets(content)))
        }
        let authenticatedSafe = DERWriter.sequence(dataContent(DERWriter.sequence(certBag)) + dataContent(DERWriter.sequence(keyBag)))
        // The MAC: HMAC-SHA256 with a key from the PKCS#12 KDF (RFC 7292 B.2, ID 3).
        let macSalt = randomBytes(16)
        let macKey = pkcs12KDF(password: password, salt: macSalt, id: 3, iterations: iterations)
        let mac = Array(HMAC<SHA256>.authenticationCode(for: authenticatedSafe, using: SymmetricKey(data: macKey)))
        let macData = DERWriter.sequence(
            DERWriter.sequence(DERWriter.sequence(DERWriter.oid([2, 16, 840, 1, 101, 3, 4, 2, 1]) + DERWriter.null) + DERWriter.octets(mac))
                + DERWriter.octets(macSalt) + DERWriter.integer(iterations))
        return DERWriter.sequence(DERWriter.integer(3) + dataContent(authenticatedSafe) + macData)
    }

    /// RFC 7292 appendix B.2 with SHA-256, for a 32-byte output.
    static func pkcs12KDF(password: String, salt: [UInt8], id: UInt8, iterations: Int) -> [UInt8] {
        let v = 64
        var bmp: [UInt8] = []
        for unit in password.utf16 { bmp += [UInt8(unit >> 8), UInt8(unit & 0xFF)] }
        bmp += [0, 0]
        func stretch(_ bytes: [UInt8]) -> [UInt8] {
            guard !bytes.isEmpty else { return [] }
            let length = v * ((bytes.count + v - 1) / v)
            return (0..<length).map { bytes[$0 % bytes.count] }
        }
        let d = [UInt8](repeating: id, count: v)
        var a = Array(SHA256.hash(data: d + stretch(salt) + stretch(bmp)))
        for _ in 1..<max(1, iterations) { a = Array(SHA256.hash(data: a)) }
        return a
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// A minimal DER writer for the PKCS#12 structures.
enum DERWriter {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = [tag]
        let n = content.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else {
            var bytes: [UInt8] = []
            var rest = n
            while rest > 0 {
                bytes.insert(UInt8(rest & 0xFF), at: 0)
                rest >>= 8
            }
            out.append(0x80 | UInt8(bytes.count))
            out += bytes
        }
        return out + content
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] { tlv(0x30, content) }
    static func set(_ content: [UInt8]) -> [UInt8] { tlv(0x31, content) }
    static func octets(_ content: [UInt8]) -> [UInt8] { tlv(0x04, content) }
    static func explicit(_ number: UInt8, _ content: [UInt8]) -> [UInt8] { tlv(0xA0 | number, content) }
    static let null: [UInt8] = [0x05, 0x00]

    static func integer(_ value: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        } while rest > 0
        if let first = bytes.first, first & 0x80 != 0 { bytes.insert(0, at: 0) }
        return tlv(0x02, bytes)
    }

    static func oid(_ components: [UInt64]) -> [UInt8] {
        guard components.count >= 2 else { return tlv(0x06, []) }
        var out: [UInt8] = []
        func base128(_ value: UInt64) {
            var chunk: [UInt8] = [UInt8(value & 0x7F)]
            var rest = value >> 7
            while rest > 0 {
                chunk.insert(UInt8(rest & 0x7F) | 0x80, at: 0)
                rest >>= 7
            }
            out += chunk
        }
        base128(components[0] * 40 + components[1])
        for component in components.dropFirst(2) { base128(component) }
        return tlv(0x06, out)
    }
}
