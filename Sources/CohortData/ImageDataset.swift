import CohortTensor


/// A labelled set of images kept as bytes (`[count, C, H, W]`, 0...255), normalised
/// per batch when copied out: `x = (pixel / 255 - mean) / std`.
public struct ImageDataset: Sendable {
    public let name: String
    public let channels: Int, height: Int, width: Int
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let classes: Int
    /// Per-dataset normalisation after scaling to [0, 1] (CIFAR-10: 0.5 / 0.5; MNIST: 0 / 1).
    public let mean: Float, std: Float

    public var count: Int { labels.count }
    public var imageShape: Shape { [channels, height, width] }
    public var sampleSize: Int { channels * height * width }

    public init(name: String, channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [UInt8],
                classes: Int = 10, mean: Float = 0, std: Float = 1) {
        precondition(pixels.count == labels.count * channels * height * width, "pixels do not match labels")
        self.name = name; self.channels = channels; self.height = height; self.width = width
        self.pixels = pixels; self.labels = labels; self.classes = classes; self.mean = mean; self.std = std
    }

    /// The first `n` samples (`--limit`).
    public func prefix(_ n: Int) -> ImageDataset {
        guard n < count else { return self }
        return ImageDataset(name: name, channels: channels, height: height, width: width,
                            pixels: Array(pixels[0..<(n * sampleSize)]), labels: Array(labels[0..<n]),
                            classes: classes, mean: mean, std: std)
    }

    /// Copies samples `indices` into `x[n, C, H, W]` (normalised) and `y[n]`.
    public func fill<C: Collection>(indices: C, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>)
    where C.Element == Int {
        let size = sampleSize
        let scale = 1 / (255 * std), shift = -mean / std
        pixels.withUnsafeBufferPointer { px in
            for (row, index) in indices.enumerated() {
                let src = px.baseAddress! + index * size, dst = x + row * size
                for i in 0..<size { dst[i] = Float(src[i]) * scale + shift }
                y[row] = Int32(labels[index])
            }
        }
    }

}

/// A training and a test split of one dataset.
public struct DatasetSplits: Sendable {
    public var train: ImageDataset
    public var test: ImageDataset
    public init(train: ImageDataset, test: ImageDataset) { self.train = train; self.test = test }
}
