/// A QR code symbol (ISO/IEC 18004): byte mode, error correction level M, versions 1 to 40,
/// the mask chosen by the standard's penalty score (7.8.3).
///
/// ```swift
/// let qr = try QRCode(encoding: Array("https://pay.example/p/1".utf8))
/// let png = qr.png(scale: 4)
/// ```
public struct QRCode: Sendable, Hashable {
    /// The version, 1 to 40: the symbol is `17 + 4 * version` modules wide.
    public let version: Int
    /// The mask pattern applied, 0 to 7.
    public let mask: Int
    /// Modules per side.
    public let size: Int
    /// Row-major modules, `true` for dark.
    public let modules: [Bool]

    /// Why a payload cannot be encoded.
    public enum EncodingError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The payload needs more than version 40 holds at level M (2331 bytes).
        case tooLong(bytes: Int)
        public var description: String {
            switch self {
            case .tooLong(let bytes):
                "QR_TOO_LONG: \(bytes) bytes do not fit in a QR code at error correction M (at most 2331); shorten the text."
            }
        }
    }

    /// Whether the module at column `x`, row `y` is dark.
    public subscript(x: Int, y: Int) -> Bool { modules[y * size + x] }

    /// Encodes bytes in byte mode at level M, in the smallest version that holds them.
    ///
    /// - Parameters:
    ///   - data: the payload, for example a URL's UTF-8 bytes.
    ///   - mask: a fixed mask (0 to 7) instead of the one with the lowest penalty.
    ///   - minimumVersion: the smallest version to use.
    /// - Throws: ``EncodingError/tooLong(bytes:)``.
    public init(encoding data: [UInt8], mask: Int? = nil, minimumVersion: Int = 1) throws(EncodingError) {
        var chosen: Int? = nil
        for version in max(1, minimumVersion)...40 {
            let capacity = Tables.dataCodewords(version) * 8
            if 4 + Tables.countBits(version) + data.count * 8 <= capacity {
                chosen = version
                break
            }
        }
        guard let version = chosen else { throw .tooLong(bytes: data.count) }

        // The bit stream: mode, count, bytes, terminator, padding.
        var bits = BitBuffer()
        bits.append(0b0100, count: 4)
        bits.append(data.count, count: Tables.countBits(version))
        for byte in data { bits.append(Int(byte), count: 8) }
        let capacity = Tables.dataCodewords(version) * 8
        bits.append(0, count: min(4, capacity - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var codewords = bits.bytes
        var pad: UInt8 = 0xEC
        while codewords.count < capacity / 8 {
            codewords.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }

        var matrix = Matrix(version: version)
        matrix.drawFunctionPatterns()
        matrix.drawCodewords(Tables.addErrorCorrection(codewords, version: version))
        var best = mask ?? 0
        if mask == nil {
            var bestScore = Int.max
            for candidate in 0..<8 {
                var trial = matrix
                trial.applyMask(candidate)
                trial.drawFormatBits(mask: candidate)
                let score = trial.penaltyScore()
                if score < bestScore {
                    bestScore = score
                    best = candidate
                }
            }
        }
        matrix.applyMask(best)
        matrix.drawFormatBits(mask: best)
        self.version = version
        self.mask = best
        self.size = matrix.size
        self.modules = matrix.modules
    }

    /// Encodes a string's UTF-8 bytes.
    public init(encoding text: String) throws(EncodingError) {
        try self.init(encoding: Array(text.utf8))
    }
}

/// Bits appended most significant first.
struct BitBuffer {
    private(set) var bits: [Bool] = []
    var count: Int { bits.count }

    mutating func append(_ value: Int, count: Int) {
        for shift in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> shift) & 1 == 1) }
    }

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (index, bit) in bits.enumerated() where bit { out[index >> 3] |= 0x80 >> UInt8(index & 7) }
        return out
    }
}

/// The standard's tables for level M, and Reed-Solomon error correction.
enum Tables {
    /// Error correction codewords per block at level M, versions 1 to 40.
    static let eccPerBlock: [Int] = [
        10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
        26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    ]
    /// Error correction blocks at level M, versions 1 to 40.
    static let blocks: [Int] = [
        1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
        17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
    ]

    /// Bits of the character count in byte mode.
    static func countBits(_ version: Int) -> Int { version < 10 ? 8 : 16 }

    /// Modules available for data and error correction after the function patterns.
    static func rawDataModules(_ version: Int) -> Int {
        var result = (16 * version + 128) * version + 64
        if version >= 2 {
            let alignments = version / 7 + 2
            result -= (25 * alignments - 10) * alignments - 55
            if version >= 7 { result -= 36 }
        }
        return result
    }

    static func dataCodewords(_ version: Int) -> Int {
        rawDataModules(version) / 8 - eccPerBlock[version - 1] * blocks[version - 1]
    }

    /// Splits data into blocks, adds each block's error correction, and interleaves them.
    static func addErrorCorrection(_ data: [UInt8], version: Int) -> [UInt8] {
        let blockCount = blocks[version - 1]
        let eccLength = eccPerBlock[version - 1]
        let raw = rawDataModules(version) / 8
        let shortBlocks = blockCount - raw % blockCount
        let shortLength = raw / blockCount
        let divisor = reedSolomonDivisor(degree: eccLength)
        var all: [[UInt8]] = []
        var offset = 0
        for index in 0..<blockCount {
            let length = shortLength - eccLength + (index < shortBlocks ? 0 : 1)
            var block = Array(data[offset..<offset + length])
            offset += length
            let ecc = reedSolomonRemainder(block, divisor: divisor)
            if index < shortBlocks { block.append(0) }
            all.append(block + ecc)
        }
        var result: [UInt8] = []
        result.reserveCapacity(raw)
        for i in 0..<all[0].count {
            for (j, block) in all.enumerated() where i != shortLength - eccLength || j >= shortBlocks {
                result.append(block[i])
            }
        }
        return result
    }

    static func reedSolomonDivisor(degree: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: degree)
        result[degree - 1] = 1
        var root: UInt8 = 1
        for _ in 0..<degree {
            for j in 0..<degree {
                result[j] = multiply(result[j], root)
                if j + 1 < degree { result[j] ^= result[j + 1] }
            }
            root = multiply(root, 0x02)
        }
        return result
    }

    static func reedSolomonRemainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: divisor.count)
        for byte in data {
            let factor = byte ^ result.removeFirst()
            result.append(0)
            for i in 0..<result.count { result[i] ^= multiply(divisor[i], factor) }
        }
        return result
    }

    /// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1.
    static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
        var z = 0
        for i in stride(from: 7, through: 0, by: -1) {
            z = (z << 1) ^ ((z >> 7) * 0x11D)
            z ^= Int((y >> UInt8(i)) & 1) * Int(x)
        }
        return UInt8(z)
    }
}

/// The module grid while a symbol is built.
struct Matrix {
    let version: Int
    let size: Int
    var modules: [Bool]
    var isFunction: [Bool]

    init(version: Int) {
        self.version = version
        self.size = version * 4 + 17
        self.modules = Array(repeating: false, count: size * size)
        self.isFunction = Array(repeating: false, count: size * size)
    }

    mutating func set(_ x: Int, _ y: Int, _ dark: Bool) {
        modules[y * size + x] = dark
        isFunction[y * size + x] = true
    }

    func alignmentPositions() -> [Int] {
        guard version > 1 else { return [] }
        let count = version / 7 + 2
        let step = version == 32 ? 26 : (version * 4 + count * 2 + 1) / (count * 2 - 2) * 2
        var result = [6]
        var position = size - 7
        while result.count < count {
            result.insert(position, at: 1)
            position -= step
        }
        return result
    }

    mutating func drawFunctionPatterns() {
        for i in 0..<size {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        for (x, y) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            for dy in -4...4 {
                for dx in -4...4 {
                    let xx = x + dx
                    let yy = y + dy
                    guard (0..<size).contains(xx), (0..<size).contains(yy) else { continue }
                    let distance = max(abs(dx), abs(dy))
                    set(xx, yy, distance != 2 && distance != 4)
                }
            }
        }
        let positions = alignmentPositions()
        let last = positions.count - 1
        for i in positions.indices {
            for j in positions.indices {
                if (i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0) { continue }
                for dy in -2...2 {
                    for dx in -2...2 { set(positions[i] + dx, positions[j] + dy, max(abs(dx), abs(dy)) != 1) }
                }
            }
        }
        drawFormatBits(mask: 0)
        if version >= 7 {
            var remainder = version
            for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
            let bits = version << 12 | remainder
            for i in 0..<18 {
                let bit = (bits >> i) & 1 == 1
                let a = size - 11 + i % 3
                let b = i / 3
                set(a, b, bit)
                set(b, a, bit)
            }
        }
    }

    /// Draws both copies of the format information for level M and a mask.
    mutating func drawFormatBits(mask: Int) {
        let data = 0 << 3 | mask  // level M's format bits are 00
        var remainder = data
        for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
        let bits = (data << 10 | remainder) ^ 0x5412
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        for i in 0...5 { set(8, i, bit(i)) }
        set(8, 7, bit(6))
        set(8, 8, bit(7))
        set(7, 8, bit(8))
        for i in 9..<15 { set(14 - i, 8, bit(i)) }
        for i in 0..<8 { set(size - 1 - i, 8, bit(i)) }
        for i in 8..<15 { set(8, size - 15 + i, bit(i)) }
        set(8, size - 8, true)
    }

    mutating func drawCodewords(_ data: [UInt8]) {
        var i = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vertical in 0..<size {
                for j in 0..<2 {
                    let x = right - j
                    let upward = (right + 1) & 2 == 0
                    let y = upward ? size - 1 - vertical : vertical
                    if !isFunction[y * size + x], i < data.count * 8 {
                        modules[y * size + x] = (data[i >> 3] >> UInt8(7 - (i & 7))) & 1 == 1
                        i += 1
                    }
                }
            }
            right -= 2
        }
    }

    mutating func applyMask(_ mask: Int) {
        for y in 0..<size {
            for x in 0..<size where !isFunction[y * size + x] {
                let invert: Bool
                switch mask {
                case 0: invert = (x + y) % 2 == 0
                case 1: invert = y % 2 == 0
                case 2: invert = x % 3 == 0
                case 3: invert = (x + y) % 3 == 0
                case 4: invert = (x / 3 + y / 2) % 2 == 0
                case 5: invert = x * y % 2 + x * y % 3 == 0
                case 6: invert = (x * y % 2 + x * y % 3) % 2 == 0
                default: invert = ((x + y) % 2 + x * y % 3) % 2 == 0
                }
                if invert { modules[y * size + x].toggle() }
            }
        }
    }

    /// The penalty of ISO/IEC 18004:2015 7.8.3 (table 11): runs of five or more modules
    /// (N1 = 3, plus one per extra module), 2x2 blocks (N2 = 3 each), 1:1:3:1:1 finder-like
    /// patterns with four light modules (or the symbol's edge) before or after (N3 = 40 each),
    /// and the dark proportion's distance from 50% in steps of 5% (N4 = 10 each).
    func penaltyScore() -> Int {
        var result = 0
        var line = [Bool](repeating: false, count: size)
        for vertical in [false, true] {
            for a in 0..<size {
                for b in 0..<size { line[b] = vertical ? modules[b * size + a] : modules[a * size + b] }
                var run = 1
                for b in 1..<size {
                    if line[b] == line[b - 1] {
                        run += 1
                    } else {
                        if run >= 5 { result += run - 2 }
                        run = 1
                    }
                }
                if run >= 5 { result += run - 2 }
                result += finderLikePatterns(line) * 40
            }
        }
        for y in 1..<size {
            for x in 1..<size {
                let color = modules[y * size + x]
                if color == modules[y * size + x - 1], color == modules[(y - 1) * size + x],
                    color == modules[(y - 1) * size + x - 1]
                {
                    result += 3
                }
            }
        }
        let dark = modules.reduce(0) { $0 + ($1 ? 1 : 0) }
        let total = size * size
        // 10 * floor(|dark% - 50| / 5), in integers: |200 * dark - 100 * total| / (10 * total).
        result += 10 * (abs(200 * dark - 100 * total) / (10 * total))
        return result
    }

    /// Counts dark-light-dark-dark-dark-light-dark runs with four light modules, or the
    /// symbol's edge, on at least one side.
    private func finderLikePatterns(_ line: [Bool]) -> Int {
        let pattern = [true, false, true, true, true, false, true]
        var count = 0
        var index = 0
        while index + 7 <= size {
            guard (0..<7).allSatisfy({ line[index + $0] == pattern[$0] }) else {
                index += 1
                continue
            }
            let before = line[max(index - 4, 0)..<index].allSatisfy { !$0 }
            let after = line[(index + 7)..<min(index + 11, size)].allSatisfy { !$0 }
            if index == 0 || index == size - 7 || before || after {
                count += 1
                index += 7
            } else {
                index += 4
            }
        }
        return count
    }
}
