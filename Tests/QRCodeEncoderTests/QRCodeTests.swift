import Foundation
import KaspiPayTesting
import Testing

@testable import QRCodeEncoder

/// The encoder and the PNG writer, held against independent references: zbar (Debian's
/// zbar-tools) decodes our PNGs, Python's zlib inflates our streams, and python-qrcode (PyPI)
/// builds the same symbols.
@Suite("QR codes")
struct QRCodeTests {
    static let payloads: [String] = [
        "A",
        "http://127.0.0.1:8181/pay/ORDER-1",
        "https://pay.kaspi.kz/pay/ORDER-2026-11-29-000123?tp=TP-1&sig=656fe6a0a98dde2ee92b05823778534d",
        "https://sandbox.example/pay/" + String(repeating: "abcdefghij", count: 12),
        "https://sandbox.example/pay/" + String(repeating: "0123456789ABCDEF", count: 20),
        "https://sandbox.example/pay/" + String(repeating: "x", count: 600),
        "Оплата заказа №7 — 5 000 ₸",
    ]

    func temporaryFile(_ bytes: [UInt8], suffix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kaspi-qr-\(UUID().uuidString)\(suffix)")
        try Data(bytes).write(to: url)
        return url
    }

    @Test(.requires(.zbarimg), arguments: payloads)
    func zbarDecodesOurPNGs(_ payload: String) async throws {
        let zbar = try ExternalTool.zbarimg.require()
        let qr = try QRCode(encoding: payload)
        let file = try temporaryFile(qr.png(scale: 3), suffix: ".png")
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try await ProcessRunner.run(zbar, ["--quiet", "--raw", "-Sbinary", file.path])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdoutBytes == Array(payload.utf8) || output.stdoutBytes == Array(payload.utf8) + [0x0A])
    }

    @Test func versionsGrowWithThePayload() throws {
        #expect(try QRCode(encoding: "A").version == 1)
        #expect(try QRCode(encoding: String(repeating: "a", count: 14)).version == 1)
        #expect(try QRCode(encoding: String(repeating: "a", count: 15)).version == 2)
        #expect(try QRCode(encoding: String(repeating: "a", count: 2331)).version == 40)
        #expect(throws: QRCode.EncodingError.tooLong(bytes: 2332)) { try QRCode(encoding: String(repeating: "a", count: 2332)) }
        for version in 1...40 {
            #expect(
                Tables.addErrorCorrection(Array(repeating: 0, count: Tables.dataCodewords(version)), version: version).count == Tables.rawDataModules(
                    version) / 8)
        }
    }

    /// python-qrcode (PyPI) builds the same symbol: same version and same modules for every
    /// mask. The mask we choose is the one segno's ISO penalty evaluation (PyPI) scores lowest
    /// among those eight symbols. (python-qrcode's own penalty deviates from the standard, and
    /// segno's data stream has an extra zero byte after an aligned terminator, so each
    /// library serves as the reference for what it gets right.)
    @Test(.requires(.python3), arguments: payloads)
    func pythonQRCodeAgrees(_ payload: String) async throws {
        let python = try ExternalTool.python3.require()
        let script = """
            import sys, qrcode, segno.encoder
            from qrcode.util import QRData, MODE_8BIT_BYTE
            data = sys.stdin.buffer.read()
            out = []
            scores = []
            for mask in range(8):
                q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, mask_pattern=mask, border=0)
                q.add_data(QRData(data, mode=MODE_8BIT_BYTE, check_data=False), optimize=0)
                q.make(fit=True)
                matrix = q.get_matrix()
                size = len(matrix)
                scores.append(segno.encoder.evaluate_mask([bytearray(1 if v else 0 for v in row) for row in matrix], size, size))
                rows = ''.join(''.join('1' if v else '0' for v in row) for row in matrix)
                out.append('%d %d %s' % (q.version, mask, rows))
            best = scores.index(min(scores))
            out.insert(0, out[best])
            print('\\n'.join(out))
            """
        let output = try await ProcessRunner.run(python, ["-c", script], stdin: Array(payload.utf8))
        try #require(output.status == 0, "python-qrcode is missing (pip install qrcode): \(output.stderr)")
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.count == 9)
        for (index, line) in lines.enumerated() {
            let parts = line.split(separator: " ")
            let mask = index == 0 ? nil : index - 1
            let ours = try QRCode(encoding: Array(payload.utf8), mask: mask)
            #expect(Int(parts[0]) == ours.version)
            #expect(Int(parts[1]) == ours.mask, "mask \(mask.map(String.init) ?? "auto")")
            #expect(String(parts[2]) == ours.modules.map { $0 ? "1" : "0" }.joined(), "mask \(mask.map(String.init) ?? "auto")")
        }
    }

    @Test(.requires(.python3)) func pythonInflatesOurZlibStreams() async throws {
        let python = try ExternalTool.python3.require()
        var inputs: [[UInt8]] = [[], [0], Array("hello hello hello hello".utf8), Array(repeating: 0xFF, count: 100_000)]
        var generator = SystemRandomNumberGenerator()
        inputs.append((0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        inputs.append((0..<20000).map { UInt8(($0 / 7) % 3) })
        for input in inputs {
            let compressed = Zlib.compress(input)
            let output = try await ProcessRunner.run(
                python, ["-c", "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))"],
                stdin: compressed)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(output.stdoutBytes == input)
        }
        #expect(Zlib.compress(Array(repeating: 0xFF, count: 100_000)).count < 1000)
    }

    @Test func pngChunksAreWellFormed() async throws {
        let python = try ExternalTool.python3.require()
        let qr = try QRCode(encoding: "http://127.0.0.1:8181/pay/ORDER-1")
        let png = qr.png(scale: 2, border: 4)
        let script = """
            import sys, struct, zlib
            d = sys.stdin.buffer.read()
            assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            i = 8; chunks = []; idat = b''
            while i < len(d):
                n, = struct.unpack('>I', d[i:i+4]); t = d[i+4:i+8]; body = d[i+8:i+8+n]
                crc, = struct.unpack('>I', d[i+8+n:i+12+n])
                assert zlib.crc32(t + body) == crc, t
                chunks.append(t.decode()); i += 12 + n
                if t == b'IDAT': idat += body
                if t == b'IHDR': w, h, depth, color = struct.unpack('>IIBB', body[:10])
            raw = zlib.decompress(idat)
            assert len(raw) == h * (1 + (w + 7) // 8)
            print(','.join(chunks), w, h, depth, color)
            """
        let output = try await ProcessRunner.run(python, ["-c", script], stdin: png)
        #expect(output.status == 0, "\(output.stderr)")
        let side = (qr.size + 8) * 2
        #expect(output.stdout == "IHDR,IDAT,IEND \(side) \(side) 1 0\n")
    }

    @Test func svgDrawsEveryDarkModule() throws {
        let qr = try QRCode(encoding: "A")
        let svg = qr.svg()
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains(#"viewBox="0 0 29 29""#))
        #expect(svg.components(separatedBy: "h1v1h-1z").count - 1 == qr.modules.filter { $0 }.count)
    }
}
