import CZlib
import CohortBase
@testable import CohortData
import CohortReporting
import Foundation
import Testing

/// The PNG reader behind `cohort predict`: every filter, every 8-bit colour type, the
/// project's own PNG writer, and the files it refuses.
@Suite struct PNGReaderTests {
    /// A PNG file: IHDR, PLTE if given, one IDAT of `rows` (each with its filter byte) deflated, IEND.
    static func png(width: Int, height: Int, colour: UInt8, depth: UInt8 = 8, interlace: UInt8 = 0,
                    palette: [UInt8] = [], rows: [UInt8]) -> [UInt8] {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            let crc = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
            return word(UInt32(body.count)) + typed + word(crc)
        }
        func word(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        var compressed = [UInt8](repeating: 0, count: rows.count + 1024)
        var length = UInt(compressed.count)
        _ = compress2(&compressed, &length, rows, UInt(rows.count), 9)
        let header = word(UInt32(width)) + word(UInt32(height)) + [depth, colour, 0, 0, interlace]
        return [137, 80, 78, 71, 13, 10, 26, 10] + chunk("IHDR", header) + (palette.isEmpty ? [] : chunk("PLTE", palette))
            + chunk("IDAT", Array(compressed.prefix(Int(length)))) + chunk("IEND", [])
    }

    /// A 5x3 RGB image, sample value 17·(3·(5y + x) + c) mod 256.
    static let rgb: [UInt8] = (0..<45).map { UInt8(17 * $0 % 256) }

    /// `rgb` with every row under PNG filter `filter` (0 none, 1 sub, 2 up, 3 average, 4 Paeth).
    static func filteredRGB(filter: UInt8) -> [UInt8] {
        let stride = 15
        var rows: [UInt8] = []
        for y in 0..<3 {
            rows.append(filter)
            for i in 0..<stride {
                let a = i >= 3 ? Int(rgb[y * stride + i - 3]) : 0, b = y > 0 ? Int(rgb[(y - 1) * stride + i]) : 0
                let c = i >= 3 && y > 0 ? Int(rgb[(y - 1) * stride + i - 3]) : 0
                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                let predictor = [0, a, b, (a + b) / 2, pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)][Int(filter)]
                rows.append(UInt8(truncatingIfNeeded: Int(rgb[y * stride + i]) - predictor))
            }
        }
        return png(width: 5, height: 3, colour: 2, rows: rows)
    }

    /// 2x2, palette of red, green, blue, white.
    static let palettePNG = png(width: 2, height: 2, colour: 3, palette: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255],
                                rows: [0, 0, 1, 0, 2, 3])

    /// `rgb` as planes: what the reader returns.
    var rgbPlanes: [UInt8] { (0..<3).flatMap { c in (0..<15).map { Self.rgb[3 * $0 + c] } } }

    @Test(arguments: [UInt8(0), 1, 2, 3, 4])
    func everyFilterDecodes(filter: UInt8) throws {
        let image = try PNGReader.decode(Self.filteredRGB(filter: filter))
        #expect(image.width == 5 && image.height == 3 && image.channels == 3)
        #expect(image.pixels == rgbPlanes)
    }

    @Test func everyColourType() throws {
        let grey = try PNGReader.decode(Self.png(width: 2, height: 1, colour: 0, rows: [0, 10, 200]))
        #expect(grey.channels == 1 && grey.pixels == [10, 200])
        let greyAlpha = try PNGReader.decode(Self.png(width: 2, height: 1, colour: 4, rows: [0, 10, 255, 200, 0]))
        #expect(greyAlpha.channels == 1 && greyAlpha.pixels == [10, 200])
        let rgba = try PNGReader.decode(Self.png(width: 1, height: 1, colour: 6, rows: [0, 1, 2, 3, 4]))
        #expect(rgba.channels == 3 && rgba.pixels == [1, 2, 3])
        let palette = try PNGReader.decode(Self.palettePNG)
        #expect(palette.pixels == [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255])
    }

    @Test func readsWhatTheProjectWrites() throws {
        var picture = RGBImage(width: 3, height: 2)
        for i in 0..<picture.pixels.count { picture.pixels[i] = UInt8(i * 13 % 256) }
        let image = try PNGReader.decode([UInt8](picture.png()))
        #expect(image.pixels == (0..<3).flatMap { c in (0..<6).map { picture.pixels[3 * $0 + c] } })
    }

    @Test func conversionToTheModelsInput() {
        func sample(_ image: DecodedImage, _ channels: Int, _ height: Int, _ width: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: channels * height * width)
            ImageTransform(channels: channels, height: height, width: width).apply(image, into: &out)
            return out
        }
        // PIL's convert("L") of pure red, green and blue, and grey copied to three planes.
        let colour = DecodedImage(width: 3, height: 1, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255])
        #expect(sample(colour, 1, 1, 3) == [76, 150, 29])
        let grey = DecodedImage(width: 2, height: 1, channels: 1, pixels: [10, 20])
        #expect(sample(grey, 3, 1, 2) == [10, 20, 10, 20, 10, 20])
        // The shorter side already fits: the centre is cut, or the image padded with zeros around it.
        let row = DecodedImage(width: 4, height: 1, channels: 1, pixels: [0, 100, 200, 250])
        #expect(sample(row, 1, 1, 2) == [100, 200])
        #expect(sample(grey, 1, 1, 4) == [0, 10, 20, 0])
        // Halving with PIL's antialiased bilinear filter: taps 3/7, 3/7, 1/7 around each centre.
        // (PIL 9.4 gives the same for this picture.)
        let square = DecodedImage(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8($0 % 4 * 60) })
        #expect(sample(square, 1, 2, 2) == [43, 137, 43, 137])
    }

    @Test func refusedFilesSayWhy() {
        func refused(_ bytes: [UInt8], _ why: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try PNGReader.decode(bytes)
                Issue.record("accepted; expected: \(why)", sourceLocation: sourceLocation)
            } catch let error as CohortError {
                #expect(error.description.contains(why), "\(error)", sourceLocation: sourceLocation)
            } catch { Issue.record("\(error)", sourceLocation: sourceLocation) }
        }
        refused(Array("GIF89a".utf8), "no PNG signature")
        refused(Self.png(width: 1, height: 1, colour: 0, depth: 16, rows: [0, 0, 0]), "bit depth 16")
        refused(Self.png(width: 1, height: 1, colour: 0, interlace: 1, rows: [0, 0]), "interlaced")
        refused(Self.png(width: 1 << 20, height: 1 << 20, colour: 0, rows: [0]), "image size")
        refused(Self.png(width: 2, height: 1, colour: 0, rows: [0, 1]), "damaged or of the wrong size")
        refused(Self.png(width: 1, height: 1, colour: 0, rows: [7, 1]), "filter 7")
        refused(Self.png(width: 1, height: 1, colour: 3, palette: [1, 2, 3], rows: [0, 5]), "palette index 5")
        refused(Array(Self.palettePNG.prefix(40)), "ends before its IEND chunk")
        refused(Array(Self.palettePNG.prefix(50)), "chunk PLTE runs past the end")
    }
}
