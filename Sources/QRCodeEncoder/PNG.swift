extension QRCode {
    /// The symbol as a 1-bit grayscale PNG.
    ///
    /// - Parameters:
    ///   - scale: pixels per module (at least 1).
    ///   - border: light modules around the symbol; the standard asks for 4.
    /// - Returns: the PNG file's bytes.
    public func png(scale: Int = 4, border: Int = 4) -> [UInt8] {
        let scale = max(1, scale)
        let border = max(0, border)
        let side = (size + 2 * border) * scale
        let rowBytes = (side + 7) / 8
        var raw: [UInt8] = []
        raw.reserveCapacity((rowBytes + 1) * side)
        for py in 0..<side {
            raw.append(0)  // filter: none
            let my = py / scale - border
            var byte: UInt8 = 0
            for px in 0..<side {
                let mx = px / scale - border
                let dark = mx >= 0 && my >= 0 && mx < size && my < size && self[mx, my]
                if !dark { byte |= 0x80 >> UInt8(px & 7) }  // 1 is white in grayscale
                if px & 7 == 7 || px == side - 1 {
                    raw.append(byte)
                    byte = 0
                }
            }
        }
        return PNGWriter.grayscale1Bit(width: side, height: side, scanlines: raw)
    }

    /// The symbol as SVG, one path for the dark modules, with a light background.
    ///
    /// - Parameter border: light modules around the symbol.
    public func svg(border: Int = 4) -> String {
        let side = size + 2 * border
        var path = ""
        for y in 0..<size {
            for x in 0..<size where self[x, y] { path += "M\(x + border) \(y + border)h1v1h-1z" }
        }
        return #"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \#(side) \#(side)" shape-rendering="crispEdges">"#
            + ##"<rect width="100%" height="100%" fill="#fff"/><path d="\##(path)" fill="#000"/></svg>"##
    }
}

/// A minimal PNG writer: grayscale, one bit per pixel, zlib-compressed.
enum PNGWriter {
    static func grayscale1Bit(width: Int, height: Int, scanlines: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [1, 0, 0, 0, 0]  // bit depth 1, grayscale, deflate, no filter, no interlace
        chunk("IHDR", header, into: &out)
        chunk("IDAT", Zlib.compress(scanlines), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        out += bigEndian(UInt32(data.count))
        let typeBytes = Array(type.utf8)
        out += typeBytes
        out += data
        out += bigEndian(CRC32.checksum(typeBytes + data))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}

enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// zlib (RFC 1950) around one deflate block (RFC 1951) with fixed Huffman codes and a
/// greedy LZ77 search that suits images: runs, and repeats of the previous scanline.
enum Zlib {
    static func compress(_ data: [UInt8]) -> [UInt8] {
        var bits = LSBBitWriter()
        bits.write(1, count: 1)  // final block
        bits.write(1, count: 2)  // fixed Huffman
        var i = 0
        var recent: [Int: Int] = [:]  // 3-byte hash -> last position
        while i < data.count {
            var bestLength = 0
            var bestDistance = 0
            if i + 3 <= data.count {
                let key = Int(data[i]) << 16 | Int(data[i + 1]) << 8 | Int(data[i + 2])
                var candidates: [Int] = []
                if let previous = recent[key] { candidates.append(previous) }
                if i >= 1 { candidates.append(i - 1) }
                for start in candidates where i - start <= 32768 && i - start > 0 {
                    var length = 0
                    while length < 258, i + length < data.count, data[start + length] == data[i + length] { length += 1 }
                    if length > bestLength {
                        bestLength = length
                        bestDistance = i - start
                    }
                }
                recent[key] = i
            }
            if bestLength >= 3 {
                writeLength(bestLength, &bits)
                writeDistance(bestDistance, &bits)
                for j in (i + 1)..<min(i + bestLength, data.count - 2) {
                    recent[Int(data[j]) << 16 | Int(data[j + 1]) << 8 | Int(data[j + 2])] = j
                }
                i += bestLength
            } else {
                writeLiteral(Int(data[i]), &bits)
                i += 1
            }
        }
        writeLiteral(256, &bits)
        var out: [UInt8] = [0x78, 0x01]
        out += bits.finish()
        out += PNGWriter.bigEndian(adler32(data))
        return out
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }

    private static func writeLiteral(_ value: Int, _ bits: inout LSBBitWriter) {
        switch value {
        case 0...143: bits.writeHuffman(0x30 + value, count: 8)
        case 144...255: bits.writeHuffman(0x190 + value - 144, count: 9)
        case 256...279: bits.writeHuffman(value - 256, count: 7)
        default: bits.writeHuffman(0xC0 + value - 280, count: 8)
        }
    }

    private static let lengthBase = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
    ]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ]
    private static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private static func writeLength(_ length: Int, _ bits: inout LSBBitWriter) {
        var index = lengthBase.count - 1
        while lengthBase[index] > length { index -= 1 }
        writeLiteral(257 + index, &bits)
        bits.write(length - lengthBase[index], count: lengthExtra[index])
    }

    private static func writeDistance(_ distance: Int, _ bits: inout LSBBitWriter) {
        var index = distanceBase.count - 1
        while distanceBase[index] > distance { index -= 1 }
        bits.writeHuffman(index, count: 5)
        bits.write(distance - distanceBase[index], count: distanceExtra[index])
    }
}

/// Deflate's bit order: values least significant bit first, Huffman codes most significant first.
struct LSBBitWriter {
    private var bytes: [UInt8] = []
    private var current: UInt32 = 0
    private var filled = 0

    mutating func write(_ value: Int, count: Int) {
        for i in 0..<count { push((value >> i) & 1) }
    }

    mutating func writeHuffman(_ code: Int, count: Int) {
        for i in stride(from: count - 1, through: 0, by: -1) { push((code >> i) & 1) }
    }

    private mutating func push(_ bit: Int) {
        current |= UInt32(bit) << UInt32(filled)
        filled += 1
        if filled == 8 {
            bytes.append(UInt8(current))
            current = 0
            filled = 0
        }
    }

    mutating func finish() -> [UInt8] {
        if filled > 0 { bytes.append(UInt8(current)) }
        current = 0
        filled = 0
        return bytes
    }
}
