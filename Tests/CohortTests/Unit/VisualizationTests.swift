import CZlib
import CohortAnalysis
import CohortBase
@testable import CohortBench
import CohortData
@testable import CohortLaunch
import CohortNN
import CohortReporting
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Foundation
import Testing

/// A minimal PNG reader for 8-bit RGB files with filter 0, the kind `RGBImage.png()` writes:
/// checks the signature and every chunk's CRC, inflates the image data and unfilters it.
func decodePNG(_ data: Data) throws -> RGBImage {
    struct Bad: Error { let why: String }
    let bytes = [UInt8](data)
    guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Bad(why: "signature") }
    func u32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
    var i = 8, width = 0, height = 0, compressed: [UInt8] = [], sawEnd = false
    while i < bytes.count {
        let length = u32(i), type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
        let body = Array(bytes[(i + 8)..<(i + 8 + length)])
        let crc = Array(bytes[(i + 4)..<(i + 8 + length)]).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        guard u32(i + 8 + length) == Int(crc) else { throw Bad(why: "CRC of \(type)") }
        switch type {
        case "IHDR":
            width = u32(i + 8); height = u32(i + 12)
            guard Array(body[8...]) == [8, 2, 0, 0, 0] else { throw Bad(why: "not 8-bit RGB") }
        case "IDAT": compressed += body
        case "IEND": sawEnd = true
        default: break
        }
        i += 12 + length
    }
    guard sawEnd, width > 0, height > 0 else { throw Bad(why: "missing chunks") }
    var raw = [UInt8](repeating: 0, count: height * (1 + 3 * width))
    var rawLength = uLongf(raw.count)
    guard uncompress(&raw, &rawLength, compressed, uLong(compressed.count)) == Z_OK, Int(rawLength) == raw.count else {
        throw Bad(why: "inflate")
    }
    var image = RGBImage(width: width, height: height)
    for y in 0..<height {
        let row = y * (1 + 3 * width)
        guard raw[row] == 0 else { throw Bad(why: "filter \(raw[row])") }
        image.pixels.replaceSubrange((3 * y * width)..<(3 * (y + 1) * width), with: raw[(row + 1)..<(row + 1 + 3 * width)])
    }
    return image
}

@Suite struct VisualizationTests {
    @Test func pngRoundTrips() throws {
        var image = RGBImage(width: 7, height: 3)
        var rng = SplitMix64(seed: 11)
        for i in image.pixels.indices { image.pixels[i] = UInt8(rng.next() & 0xFF) }
        #expect(try decodePNG(image.png()) == image)
        // A grid of pictures keeps each one, enlarged, at its place.
        let grid = Pictures.grid([[image], [image]], scale: 2, gap: 1)
        let decoded = try decodePNG(grid.png())
        #expect(decoded.width == 1 + 7 * 2 + 1 && decoded.height == 1 + 2 * (3 * 2 + 1))
        #expect(decoded[1 + 2 * 4 + 1, 1 + 3 * 2 + 1 + 2 * 2] == image[4, 2])
    }

    @Test func picturesScaleAndColour() {
        let stretched = Pictures.stretched(planes: [-2, 0, 2, 6], channels: 1, height: 2, width: 2)
        #expect(stretched[0, 0] == (0, 0, 0) && stretched[1, 1] == (255, 255, 255) && stretched[1, 0].0 == 64)
        let centred = Pictures.centred(planes: [-1, 0, 0.5], channels: 1, height: 1, width: 3)
        #expect(centred[0, 0].0 == 0 && centred[1, 0].0 == 128 && centred[2, 0].0 == 191)
        #expect(Pictures.heat(0) == (68, 1, 84) && Pictures.heat(1) == (253, 231, 37))
    }

    /// One filter, one active unit: the deconvnet's projection is that filter, scaled by the
    /// activation and placed over the unit's receptive field, and 0 elsewhere.
    @Test func deconvnetProjectsOneUnitBackToItsFilter() throws {
        let conv = Conv2D(inChannels: 2, outChannels: 1, height: 6, width: 7, kernel: 3, maxBatch: 1)
        let network = Network(layers: [("conv", conv), (nil, ReLU(shape: [1, 4, 5], maxBatch: 1))], maxBatch: 1)
        network.initializeParameters(seed: 4)
        let weights = array(UnsafePointer(network.parameters.pointer), 18)
        let x = FloatBuffer(randomValues(2 * 6 * 7, seed: 5))
        let projection = Deconvnet.project(network, input: x.pointer, featureLayer: 1, map: 0)
        let output = array(network.forward(x.pointer, batch: 1), 20)
        let peak = try #require(output.indices.max { output[$0] < output[$1] })
        #expect(projection.unit.y == peak / 5 && projection.unit.x == peak % 5 && projection.activation == output[peak])
        #expect(projection.activation > 0)
        for c in 0..<2 {
            for y in 0..<6 {
                for x in 0..<7 {
                    let (u, v) = (y - projection.unit.y, x - projection.unit.x)
                    let expected = (0..<3).contains(u) && (0..<3).contains(v) ? projection.activation * weights[(c * 3 + u) * 3 + v] : 0
                    #expect(abs(projection.pixels[(c * 6 + y) * 7 + x] - expected) <= 1e-6, "c \(c) y \(y) x \(x)")
                }
            }
        }
    }

    /// Through the whole CNN: projections have the input's shape, are 0 outside the unit's
    /// receptive field, and the top samples are sorted and really the strongest.
    @Test func deconvnetThroughTheCNN() throws {
        let network = TestModels.cnn(channels: 3, size: 16, filters: (4, 6), maxBatch: 8)
        network.initializeParameters(seed: 2)
        let data = Synthetic.make(shape: [3, 16, 16], count: 20, seed: 1, split: 1)
        let feature = Deconvnet.featureLayer(after: 3, in: network)
        #expect(feature == 4)
        let top = Deconvnet.topSamples(network, data: data, featureLayer: feature, top: 3)
        #expect(top.count == 6 && top.allSatisfy { $0.count == 3 })
        let input = FloatBuffer(count: 3 * 16 * 16)
        var label: Int32 = 0
        for map in 0..<6 {
            #expect(top[map].map(\.activation) == top[map].map(\.activation).sorted(by: >))
            try data.fill(indices: [top[map][0].sample], x: input.pointer, y: &label)
            let projection = Deconvnet.project(network, input: input.pointer, featureLayer: feature, map: map)
            #expect(projection.pixels.count == 3 * 16 * 16)
            #expect(abs(projection.activation - top[map][0].activation) <= 1e-5)
            // conv2 (5x5 over pooled 2x2 cells) after conv1 (5x5): a field of 5 + 2*(5-1) + 1 = 14 pixels around 2u.
            let (cy, cx) = (2 * projection.unit.y, 2 * projection.unit.x)
            for c in 0..<3 {
                for y in 0..<16 {
                    for x in 0..<16 where abs(y - cy) > 7 || abs(x - cx) > 7 {
                        #expect(projection.pixels[(c * 16 + y) * 16 + x] == 0)
                    }
                }
            }
        }
        // No other sample beats the weakest kept one.
        let all = Deconvnet.topSamples(network, data: data, featureLayer: feature, top: 20)
        #expect(all[0].prefix(3).map(\.sample) == top[0].map(\.sample))
    }

    /// A model that answers from one pixel: occluding that pixel, and only that, drops the
    /// probability of the true class.
    @Test func occlusionFindsTheOnePixelTheModelUses() throws {
        let (h, w, pixelY, pixelX) = (8, 8, 3, 5)
        let linear = Linear(inFeatures: h * w, outFeatures: 2, maxBatch: 16)
        let network = Network(layers: [(nil, Flatten(shape: [1, h, w])), ("fc", linear)], maxBatch: 16)
        // logit0 = 20 (x - 0.75) at the pixel: bright (1.0) -> p0 = 0.993; grey (0.5) -> p0 = 0.007.
        let p = network.parameters.pointer
        p.update(repeating: 0, count: network.parameterCount)
        p[pixelY * w + pixelX] = 20
        p[2 * h * w] = -15
        var pixels = [UInt8](repeating: 0, count: h * w)
        pixels[pixelY * w + pixelX] = 255
        let data = ImageDataset(name: "one-pixel", channels: 1, height: h, width: w, pixels: pixels, labels: [0],
                                classes: 2, mean: 0, std: 1)
        let map = Occlusion.map(network, data: data, index: 0, size: 3, stride: 2)
        #expect(map.rowStarts == [0, 2, 4, 5] && map.columnStarts == [0, 2, 4, 5])
        #expect(map.unoccluded > 0.99)
        for (i, y0) in map.rowStarts.enumerated() {
            for (j, x0) in map.columnStarts.enumerated() {
                let covers = (y0..<(y0 + 3)).contains(pixelY) && (x0..<(x0 + 3)).contains(pixelX)
                let probability = map.probabilities[i * map.columns + j]
                #expect(covers ? probability < 0.01 : probability > 0.99, "square at (\(y0), \(x0))")
            }
        }
    }

    @Test func reluStatisticsMatchADirectComputation() throws {
        let network = TestModels.cnn(channels: 1, size: 8, filters: (3, 4), maxBatch: 4)
        network.initializeParameters(seed: 6)
        let data = Synthetic.make(shape: [1, 8, 8], count: 10, seed: 3, split: 1)
        let stats = ActivationStatistics.relus(network, data: data)
        #expect(stats.map(\.name) == ["ReLU1", "ReLU2"])
        // The same by hand: all 10 samples at once, the first ReLU's output (layer 1).
        let big = TestModels.cnn(channels: 1, size: 8, filters: (3, 4), maxBatch: 10)
        big.parameters.pointer.update(from: network.parameters.pointer, count: network.parameterCount)
        let x = FloatBuffer(count: 10 * 64)
        var labels = [Int32](repeating: 0, count: 10)
        try data.fill(indices: 0..<10, x: x.pointer, y: &labels)
        let relu1 = array(big.layers[1].forward(big.layers[0].forward(x.pointer, batch: 10), batch: 10), 10 * 3 * 64).map(Double.init)
        let mean = relu1.reduce(0, +) / Double(relu1.count)
        let std = (relu1.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(relu1.count)).squareRoot()
        #expect(abs(stats[0].mean - mean) <= 1e-9 && abs(stats[0].std - std) <= 1e-9)
        #expect(stats[0].count == 10 * 3 * 64 && stats[0].mean > 0)
    }
}
