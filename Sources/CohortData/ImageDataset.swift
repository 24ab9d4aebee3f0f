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

    /// Copies samples `indices` into `x[n, C, H, W]` (normalised) and `y[n]`; with
    /// `augmentation`, each image as epoch `epoch`'s crop and flip of it (the padding is pixel 0).
    public func fill<C: Collection>(indices: C, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>,
                                    augmentation: Augmentation? = nil, epoch: Int = 0) where C.Element == Int {
        let size = sampleSize, plane = height * width
        let scale = 1 / (255 * std), shift = -mean / std
        pixels.withUnsafeBufferPointer { px in
            for (row, index) in indices.enumerated() {
                let src = px.baseAddress! + index * size, dst = x + row * size
                y[row] = Int32(labels[index])
                guard let augmentation else {
                    for i in 0..<size { dst[i] = Float(src[i]) * scale + shift }
                    continue
                }
                let choice = augmentation.choice(epoch: epoch, sample: index)
                for r in 0..<height {
                    for c in 0..<width {
                        let at = Augmentation.source(y: r, x: c, height: height, width: width, pad: augmentation.pad,
                                                     choice: choice)
                        for channel in 0..<channels {
                            let value = at.map { src[channel * plane + $0.y * width + $0.x] } ?? 0
                            dst[channel * plane + r * width + c] = Float(value) * scale + shift
                        }
                    }
                }
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
