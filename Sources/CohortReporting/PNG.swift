import CZlib
import Foundation

extension RGBImage {
    /// The PNG file: 8-bit truecolour, no interlace, every row with filter 0 (none),
    /// the image data deflated by zlib; each chunk carries its CRC-32.
    public func png() -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(3 * y * width)..<(3 * (y + 1) * width)])
        }
        var file = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.appendBigEndian(UInt32(width)); header.appendBigEndian(UInt32(height))
        header.append(contentsOf: [8, 2, 0, 0, 0])  // bit depth 8, colour type 2 (RGB), deflate, filter set 0, no interlace
        PNG.appendChunk("IHDR", header, to: &file)
        PNG.appendChunk("IDAT", PNG.deflate(raw), to: &file)
        PNG.appendChunk("IEND", Data(), to: &file)
        return file
    }
}

enum PNG {
    static func appendChunk(_ type: String, _ body: Data, to file: inout Data) {
        file.appendBigEndian(UInt32(body.count))
        var typed = Data(type.utf8)
        typed.append(body)
        file.append(typed)
        let crc = typed.withUnsafeBytes { crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count)) }
        file.appendBigEndian(UInt32(crc))
    }

    static func deflate(_ bytes: [UInt8]) -> Data {
        var bound = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let status = bytes.withUnsafeBufferPointer { source in
            compress2(&out, &bound, source.baseAddress, uLong(bytes.count), Z_BEST_COMPRESSION)
        }
        // compress2 only fails for a too-small output (impossible with compressBound) or no memory.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        return Data(out[0..<Int(bound)])
    }
}

extension Data {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }
}
