import CohortTensor
import Foundation

/// Images of 10 classes generated in memory from a seed, for tests and benchmarks.
///
/// Each class has a prototype made of three soft blobs (random centre, radius and
/// per-channel brightness); a sample is its class prototype shifted by up to ±2 pixels
/// with uniform noise on every pixel. Pixels stay within 32...245, never clipped, so no
/// two image patches are exactly equal (flat, saturated regions would make max-pool
/// ties that rounding noise breaks differently from run to run). A CNN learns the blobs; an RNN reading rows sees
/// them at class-specific steps. Any shape `[C, H, W]`: `[3, 32, 32]` like CIFAR-10
/// (normalised the same way), `[1, 28, 28]` like MNIST.
public enum Synthetic {
    /// Training and test samples of `--dataset synthetic` without `--limit` and `--test-limit`.
    public static let defaultCounts = (train: 10_000, test: 2_000)

    public static func make(shape: Shape, count: Int, seed: UInt64, split: UInt64, classes: Int = 10) -> ImageDataset {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let prototypes = makePrototypes(shape: shape, seed: seed, classes: classes)
        let size = c * h * w
        var pixels = [UInt8](repeating: 0, count: count * size)
        var labels = [UInt8](repeating: 0, count: count)
        pixels.withUnsafeMutableBufferPointer { out in
            for s in 0..<count {
                // One stream per sample: a smaller count gives a prefix of a larger one.
                var rng = SplitMix64(seed: seed, stream: 0x5EED &+ split, index: UInt64(s))
                let label = rng.nextIndex(below: classes)
                labels[s] = UInt8(label)
                let dy = rng.nextIndex(below: 5) - 2, dx = rng.nextIndex(below: 5) - 2
                let proto = prototypes[label]
                for ch in 0..<c {
                    for y in 0..<h {
                        let sy = min(max(y - dy, 0), h - 1)
                        for x in 0..<w {
                            let sx = min(max(x - dx, 0), w - 1)
                            let noise = Float(rng.next() >> 58) - 32  // uniform in [-32, 31]
                            let v = proto[(ch * h + sy) * w + sx] + noise
                            out[s * size + (ch * h + y) * w + x] = UInt8(min(max(v, 0), 255))
                        }
                    }
                }
            }
        }
        let likeCIFAR = c == 3
        return ImageDataset(name: "synthetic", channels: c, height: h, width: w, pixels: pixels, labels: labels,
                            classes: classes, mean: likeCIFAR ? 0.5 : 0, std: likeCIFAR ? 0.5 : 1)
    }

    /// Training and test splits from the same class prototypes.
    public static func splits(shape: Shape, trainCount: Int, testCount: Int, seed: UInt64) -> DatasetSplits {
        DatasetSplits(train: make(shape: shape, count: trainCount, seed: seed, split: 0),
                      test: make(shape: shape, count: testCount, seed: seed, split: 1))
    }

    /// One prototype image (as floats 0...255) per class.
    private static func makePrototypes(shape: Shape, seed: UInt64, classes: Int) -> [[Float]] {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        var rng = SplitMix64(seed: seed, stream: 0x9A77E7)
        return (0..<classes).map { _ in
            // Background 64 plus the brightest blob at each pixel (at most 150): with the
            // noise in [-32, 31], every pixel lies in 32...245.
            var image = [Float](repeating: 0, count: c * h * w)
            for _ in 0..<3 {
                let cy = rng.uniform(0.15, 0.85) * Float(h), cx = rng.uniform(0.15, 0.85) * Float(w)
                let radius = rng.uniform(0.08, 0.2) * Float(min(h, w))
                let brightness = (0..<c).map { _ in rng.uniform(50, 150) }
                for ch in 0..<c {
                    for y in 0..<h {
                        for x in 0..<w {
                            let d2 = (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx)
                            let i = (ch * h + y) * w + x
                            image[i] = max(image[i], brightness[ch] * expf(-d2 / (2 * radius * radius)))
                        }
                    }
                }
            }
            return image.map { $0 + 64 }
        }
    }
}
