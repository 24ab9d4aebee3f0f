import Foundation

/// MD5 (RFC 1321): the checksum the data sets publish for their files. Not for security, only
/// to tell a complete, unchanged download from a cut or damaged one.
public struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0
    /// The block being mixed, as 16 little-endian words.
    private var words = [UInt32](repeating: 0, count: 16)

    public init() {}

    /// Per-round shift amounts and the constants floor(2^32 · |sin(i + 1)|).
    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]
    private static let constants: [UInt32] = (0..<64).map {
        UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296))
    }

    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        length &+= UInt64(bytes.count)
        buffer.append(contentsOf: bytes)
        var start = 0
        while buffer.count - start >= 64 {
            block(buffer[start..<(start + 64)])
            start += 64
        }
        buffer.removeFirst(start)
    }

    /// The digest as 32 lower-case hexadecimal digits.
    public mutating func hexDigest() -> String {
        let bits = length &* 8
        update([0x80] + [UInt8](repeating: 0, count: (55 - Int(length % 64) + 64) % 64))
        update((0..<8).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) })
        let words = [state.0, state.1, state.2, state.3]
        return words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * UInt32($0))) } }
            .map { String(format: "%02x", $0) }.joined()
    }

    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var md5 = MD5()
        md5.update(bytes)
        return md5.hexDigest()
    }

    private mutating func block(_ chunk: ArraySlice<UInt8>) {
        let base = chunk.startIndex
        for i in 0..<16 {
            let at = base + 4 * i
            words[i] = UInt32(chunk[at]) | UInt32(chunk[at + 1]) << 8 | UInt32(chunk[at + 2]) << 16 | UInt32(chunk[at + 3]) << 24
        }
        var (a, b, c, d) = state
        for i in 0..<64 {
            let f: UInt32, g: Int
            switch i / 16 {
            case 0: f = (b & c) | (~b & d); g = i
            case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            let sum = a &+ f &+ Self.constants[i] &+ words[g], s = Self.shifts[(i / 16) * 4 + i % 4]
            (a, d, c) = (d, c, b)
            b = b &+ (sum << s | sum >> (32 - s))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
