import CZlib
import CohortBase
import Foundation

/// An image read from a JPEG or PNG file (`ImageFile`): 8 bits per sample, `channels` planes (`[C, H, W]`, 1 for
/// grey, 3 for colour; alpha is dropped, palettes are looked up).
public struct DecodedImage: Equatable, Sendable {
    public let width: Int, height: Int, channels: Int
    public let pixels: [UInt8]
}

/// Reads PNG files (ISO/IEC 15948): bit depth 8, grey, grey + alpha, truecolour, truecolour +
/// alpha or palette, not interlaced; anything else is refused with its reason.
public enum PNGReader {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    /// Larger images are refused before any allocation (a hostile header could ask for 2^62 bytes).
    static let maxPixels = 1 << 26

    public static func read(_ path: String) throws -> DecodedImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CohortError.failure("\(path): cannot read the file")
        }
        do { return try decode([UInt8](data)) } catch let error as CohortError {
            throw CohortError.failure("\(path): \(error.description)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> DecodedImage {
        func fail(_ why: String) -> CohortError { .failure("not a PNG this reader takes: \(why)") }
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw fail("no PNG signature") }
        var offset = 8
        var header: (width: Int, height: Int, depth: UInt8, colour: UInt8, interlace: UInt8)?
        var palette: [UInt8] = [], compressed: [UInt8] = [], ended = false
        while !ended && offset + 12 <= bytes.count {
            let length = Int(bigEndian(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard length <= bytes.count - offset - 12 else { throw fail("chunk \(type) runs past the end of the file") }
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            offset += 12 + length
            switch type {
            case "IHDR":
                guard body.count == 13 else { throw fail("IHDR of \(body.count) bytes") }
                header = (Int(bigEndian(body, 0)), Int(bigEndian(body, 4)), body[8], body[9], body[12])
            case "PLTE": palette = body
            case "IDAT": compressed += body
            case "IEND": ended = true
            default: continue
            }
        }
        guard ended else { throw fail("the file ends before its IEND chunk (cut short?)") }
        guard let header else { throw fail("no IHDR chunk") }
        let (width, height) = (header.width, header.height)
        guard width > 0, height > 0, width <= maxPixels / height else { throw fail("image size \(width)x\(height)") }
        guard header.depth == 8 else { throw fail("bit depth \(header.depth) (8 is read)") }
        guard header.interlace == 0 else { throw fail("interlaced") }
        let samples: Int
        switch header.colour {
        case 0: samples = 1
        case 2: samples = 3
        case 3: samples = 1
        case 4: samples = 2
        case 6: samples = 4
        default: throw fail("colour type \(header.colour)")
        }
        let stride = width * samples
        let raw = try inflate(compressed, expected: height * (stride + 1))
        let rows = try unfiltered(raw, height: height, stride: stride, bytesPerPixel: samples)
        return try planes(rows, width: width, height: height, colour: header.colour, samples: samples, palette: palette)
    }

    static func bigEndian(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    /// The zlib stream of the IDAT chunks, which must inflate to exactly `expected` bytes.
    static func inflate(_ compressed: [UInt8], expected: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: expected + 1)
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw CohortError.failure("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var input = compressed
        let status = input.withUnsafeMutableBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == expected else {
            throw CohortError.failure("not a PNG this reader takes: the image data is damaged or of the wrong size")
        }
        out.removeLast()
        return out
    }

    /// Undoes each row's filter (none, sub, up, average, Paeth), returning the rows without their filter bytes.
    static func unfiltered(_ raw: [UInt8], height: Int, stride: Int, bytesPerPixel bpp: Int) throws -> [UInt8] {
        var rows = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)], source = y * (stride + 1) + 1, row = y * stride
            for i in 0..<stride {
                let a = i >= bpp ? Int(rows[row + i - bpp]) : 0
                let b = y > 0 ? Int(rows[row - stride + i]) : 0
                let c = i >= bpp && y > 0 ? Int(rows[row - stride + i - bpp]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw CohortError.failure("not a PNG this reader takes: row \(y) has filter \(filter)")
                }
                rows[row + i] = UInt8(truncatingIfNeeded: Int(raw[source + i]) + predictor)
            }
        }
        return rows
    }

    /// Interleaved samples to planes: grey or RGB, without alpha, palette entries looked up.
    static func planes(_ rows: [UInt8], width: Int, height: Int, colour: UInt8, samples: Int,
                       palette: [UInt8]) throws -> DecodedImage {
        let count = width * height
        let channels = colour == 0 || colour == 4 ? 1 : 3
        var pixels = [UInt8](repeating: 0, count: channels * count)
        for p in 0..<count {
            if colour == 3 {
                let entry = Int(rows[p])
                guard 3 * entry + 2 < palette.count else {
                    throw CohortError.failure("not a PNG this reader takes: palette index \(entry) past the palette")
                }
                for c in 0..<3 { pixels[c * count + p] = palette[3 * entry + c] }
            } else {
                for c in 0..<channels { pixels[c * count + p] = rows[p * samples + c] }
            }
        }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }
}
