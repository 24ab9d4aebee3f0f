import CJPEG
import CohortBase
import Foundation

/// Image files as an image folder holds them: JPEG (libjpeg-turbo) or PNG (`PNGReader`),
/// recognised by their first bytes, not their names.
public enum ImageFile {
    /// Larger images are refused before any allocation (a hostile header could ask for 2^62 bytes).
    static let maxPixels = PNGReader.maxPixels

    /// The file's image, or a `CohortError` naming the file and what is wrong with it.
    public static func read(_ path: String) throws -> DecodedImage {
        let file = try MappedFile(path: path)
        let bytes = file.bytes(0..<file.size)
        do { return try decode(bytes) } catch let error as CohortError {
            throw CohortError.failure("\(path): \(error.description)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> DecodedImage {
        guard !bytes.isEmpty else { throw CohortError.failure("an empty file, not an image") }
        if bytes.starts(with: PNGReader.signature) { return try PNGReader.decode(bytes) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return try decodeJPEG(bytes) }
        throw CohortError.failure("neither a JPEG nor a PNG image (its first bytes are "
                                  + bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ") + ")")
    }

    static func decodeJPEG(_ bytes: [UInt8]) throws -> DecodedImage {
        var message = [CChar](repeating: 0, count: 256)
        func fail() -> CohortError {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return .failure("not a JPEG this reader takes: \(text)")
        }
        var width: Int32 = 0, height: Int32 = 0, components: Int32 = 0
        guard cohort_jpeg_header(bytes, bytes.count, &width, &height, &components, &message, message.count) == 0 else {
            throw fail()
        }
        let (w, h, c) = (Int(width), Int(height), Int(components))
        guard w > 0, h > 0, w <= maxPixels / h else { throw CohortError.failure("not a JPEG this reader takes: image size \(w)x\(h)") }
        var interleaved = [UInt8](repeating: 0, count: w * h * c)
        guard cohort_jpeg_decode(bytes, bytes.count, &interleaved, interleaved.count, &message, message.count) == 0 else {
            throw fail()
        }
        guard c == 3 else { return DecodedImage(width: w, height: h, channels: 1, pixels: interleaved) }
        let plane = w * h
        var planes = [UInt8](repeating: 0, count: 3 * plane)
        for p in 0..<plane {
            planes[p] = interleaved[3 * p]; planes[plane + p] = interleaved[3 * p + 1]; planes[2 * plane + p] = interleaved[3 * p + 2]
        }
        return DecodedImage(width: w, height: h, channels: 3, pixels: planes)
    }
}

/// How an image file becomes a sample of `[channels, height, width]`, as torchvision's
/// `ImageFolder` with `Resize(min(height, width))` and `CenterCrop((height, width))` makes it
/// from PIL images, in this order:
/// 1. channels: PIL's `convert("L")` for grey (`L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`)
///    or `convert("RGB")` for colour (grey copied to each channel; PNG alpha dropped);
/// 2. an image whose size differs from the target: its shorter side resized to
///    `S = min(height, width)`, the longer to `floor(S · long / short)`, with PIL's bilinear
///    filter (antialiased: the triangle widened by the reduction factor, 22-bit fixed-point
///    weights, rows then columns, each pass rounded to bytes);
/// 3. the centre `height x width`: offsets `round((size - target) / 2)` (half to even, as
///    Python's `round`), zero where the image is smaller.
public struct ImageTransform: Sendable, Equatable, Codable {
    public let channels: Int, height: Int, width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels; self.height = height; self.width = width
    }

    /// `image` as a sample, written to `out` (`channels · height · width` bytes).
    public func apply(_ image: DecodedImage, into out: UnsafeMutablePointer<UInt8>) {
        var planes = Self.convert(image.pixels, from: image.channels, to: channels, count: image.width * image.height)
        var (w, h) = (image.width, image.height)
        if w != width || h != height {
            let s = min(width, height)
            let (newW, newH) = w <= h ? (s, s * h / w) : (s * w / h, s)
            if newW != w || newH != h {
                planes = Self.resize(planes, channels: channels, width: w, height: h, toWidth: newW, height: newH)
                (w, h) = (newW, newH)
            }
        }
        let top = Self.cropOffset(size: h, target: height), left = Self.cropOffset(size: w, target: width)
        for c in 0..<channels {
            for y in 0..<height {
                let sy = y + top
                for x in 0..<width {
                    let sx = x + left
                    out[(c * height + y) * width + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? planes[(c * h + sy) * w + sx] : 0
                }
            }
        }
    }

    /// Planes of `from` channels as `to` channels (1 or 3), as PIL converts them.
    static func convert(_ pixels: [UInt8], from: Int, to: Int, count: Int) -> [UInt8] {
        if from == to { return pixels }
        if to == 3 { return pixels + pixels + pixels }
        return (0..<count).map { p in
            let l = 19595 * Int(pixels[p]) + 38470 * Int(pixels[count + p]) + 7471 * Int(pixels[2 * count + p]) + 0x8000
            return UInt8(l >> 16)
        }
    }

    /// torchvision's `CenterCrop` offset: `round((size - target) / 2)` half to even, or minus
    /// the left/top padding `(target - size) // 2` where the image is smaller.
    static func cropOffset(size: Int, target: Int) -> Int {
        guard size >= target else { return -((target - size) / 2) }
        return Int((Double(size - target) / 2).rounded(.toNearestOrEven))
    }

    static let precisionBits = 32 - 8 - 2

    /// PIL's `ImagingResample` with its bilinear filter on 8-bit planes: a horizontal pass, then a vertical one.
    static func resize(_ planes: [UInt8], channels: Int, width: Int, height: Int, toWidth: Int, height toHeight: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: channels * toWidth * toHeight)
        let horizontal = coefficients(inSize: width, outSize: toWidth), vertical = coefficients(inSize: height, outSize: toHeight)
        var rows = [UInt8](repeating: 0, count: toWidth * height)
        for c in 0..<channels {
            let plane = c * width * height
            for y in 0..<height {
                for x in 0..<toWidth {
                    rows[y * toWidth + x] = horizontal.apply(x) { planes[plane + y * width + $0] }
                }
            }
            for y in 0..<toHeight {
                for x in 0..<toWidth {
                    out[(c * toHeight + y) * toWidth + x] = vertical.apply(y) { rows[$0 * toWidth + x] }
                }
            }
        }
        return out
    }

    /// One pass's taps: for each output position its first input and fixed-point weights.
    struct Taps {
        var first: [Int] = [], weights: [[Int]] = []

        func apply(_ out: Int, _ input: (Int) -> UInt8) -> UInt8 {
            var sum = 1 << (precisionBits - 1)
            for (k, weight) in weights[out].enumerated() { sum += Int(input(first[out] + k)) * weight }
            return UInt8(max(0, min(255, sum >> precisionBits)))
        }
    }

    /// PIL's `precompute_coeffs` and `normalize_coeffs_8bpc` for the triangle filter (support 1).
    static func coefficients(inSize: Int, outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize), filterScale = max(scale, 1), support = filterScale
        let reciprocal = 1 / filterScale
        var taps = Taps()
        for x in 0..<outSize {
            let center = (Double(x) + 0.5) * scale
            let low = max(Int(center - support + 0.5), 0), high = min(Int(center + support + 0.5), inSize)
            var weights = (low..<high).map { i in max(0, 1 - abs((Double(i) - center + 0.5) * reciprocal)) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            let one = Double(1 << precisionBits)
            taps.first.append(low)
            taps.weights.append(weights.map { $0 < 0 ? Int(-0.5 + $0 * one) : Int(0.5 + $0 * one) })
        }
        return taps
    }
}
