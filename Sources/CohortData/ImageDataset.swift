import CohortBase
import CohortTensor

/// A labelled set of samples of shape `[C, H, W]` (sequences `[T, F]` as `[1, T, F]`, feature
/// vectors `[F]` as `[1, 1, F]`), kept as stored (`SampleStore`: bytes or floats, in memory, in a
/// memory map or as encoded images) and normalised per batch as it is copied out
/// (`InputNormalization`).
public struct ImageDataset: Sendable {
    public let name: String
    public let channels: Int, height: Int, width: Int
    public let samples: SampleStore
    public let labels: [Int32]
    public let classes: Int
    /// The name of each class, by label.
    public let classNames: [String]
    public let normalization: InputNormalization
    /// Windows of a text (`TextCorpus`), where the samples are tokens with a target at every
    /// position instead of images with a label.
    public let windows: TokenWindows?

    public var count: Int { windows?.count ?? labels.count }
    public var imageShape: Shape { [channels, height, width] }
    public var sampleSize: Int { channels * height * width }
    /// What a model reads per sample: the image `[C, H, W]`, or a window's T tokens `[T]`.
    public var inputShape: Shape { windows.map { [$0.length] } ?? imageShape }
    /// Targets per sample: 1 label, or one at each of a window's T positions.
    public var targetsPerSample: Int { windows?.length ?? 1 }
    /// The values tokens take (`0..<vocabulary`), where samples are tokens.
    public var vocabulary: Int? { windows.map { $0.vocabulary.count } }

    public init(name: String, shape: Shape, samples: SampleStore, labels: [Int32], classes: Int,
                classNames: [String]? = nil, normalization: InputNormalization) {
        precondition(shape.count == 3 && samples.sampleSize == shape.elementCount, "samples do not match the shape")
        precondition(labels.count <= samples.count, "more labels than samples")
        self.name = name; (channels, height, width) = (shape[0], shape[1], shape[2])
        self.samples = samples; self.labels = labels; self.classes = classes
        self.classNames = classNames ?? (0..<classes).map { "class \($0)" }
        self.normalization = normalization
        windows = samples as? TokenWindows
    }

    /// Windows of a text: `[1, 1, T]` tokens each, one class per token value.
    public init(name: String, windows: TokenWindows, classNames: [String]) {
        self.init(name: name, shape: [1, 1, windows.length], samples: windows, labels: [], classes: windows.vocabulary.count,
                  classNames: classNames, normalization: InputNormalization(mean: 0, std: 1))
    }

    /// Bytes in memory (`[count, C, H, W]`, 0...255), one mean and std for every channel.
    public init(name: String, channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [UInt8],
                classes: Int = 10, classNames: [String]? = nil, mean: Float = 0, std: Float = 1) {
        precondition(pixels.count == labels.count * channels * height * width, "pixels do not match labels")
        self.init(name: name, shape: [channels, height, width],
                  samples: MemorySamples(bytes: pixels, sampleSize: max(1, channels * height * width)),
                  labels: labels.map { Int32($0) }, classes: classes, classNames: classNames,
                  normalization: InputNormalization(mean: mean, std: std))
    }

    /// The first `n` samples (`--limit`).
    public func prefix(_ n: Int) -> ImageDataset {
        guard n < count, windows == nil else { return self }
        return with(labels: Array(labels[0..<n]))
    }

    /// The same samples with other labels (a prefix of them), class names or normalisation.
    public func with(labels: [Int32]? = nil, classNames: [String]? = nil, normalization: InputNormalization? = nil)
        -> ImageDataset {
        ImageDataset(name: name, shape: imageShape, samples: samples, labels: labels ?? self.labels, classes: classes,
                     classNames: classNames ?? self.classNames, normalization: normalization ?? self.normalization)
    }

    /// Sample `index`'s values as stored (pixels 0...255), for pictures and predictions.
    public func values(_ index: Int) throws -> [Float] { try samples.values(index) }

    /// Copies samples `indices` into `x[n, C, H, W]` (normalised) and `y[n]` (windows of a text:
    /// `x[n, T]` tokens and `y[n, T]` targets); with
    /// `augmentation`, each image as epoch `epoch`'s crop and flip of it (the padding is value 0,
    /// before normalisation).
    public func fill<C: Collection>(indices: C, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>,
                                    augmentation: Augmentation? = nil, epoch: Int = 0) throws where C.Element == Int {
        if let windows {
            for (row, index) in indices.enumerated() {
                windows.fill(index, x: x + row * windows.length, y: y + row * windows.length)
            }
            return
        }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, samples.sampleBytes), alignment: 64)
        defer { scratch.deallocate() }
        let affine = (0..<channels).map { normalization.affine(channel: $0, element: samples.element) }
        for (row, index) in indices.enumerated() {
            let source = try samples.sample(index, scratch: scratch)
            y[row] = labels[index]
            let dst = x + row * sampleSize
            let choice = augmentation.map { $0.choice(epoch: epoch, sample: index) }
            switch samples.element {
            case .uint8:
                copy(source.assumingMemoryBound(to: UInt8.self), to: dst, affine: affine, augmentation: augmentation,
                     choice: choice)
            case .float32:
                copy(source.assumingMemoryBound(to: Float.self), to: dst, affine: affine, augmentation: augmentation,
                     choice: choice)
            }
        }
    }

    /// `fill` for a set whose samples are in memory or mapped (`SampleStore.isDecoded`), which
    /// cannot fail: the analyses of a trained model read such sets (`decoded()`).
    public func fillDecoded<C: Collection>(indices: C, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>)
        where C.Element == Int {
        precondition(samples.isDecoded, "fillDecoded on samples decoded as they are read")
        try! fill(indices: indices, x: x, y: y)
    }

    /// The same set with every sample decoded into memory, if they are decoded as they are read.
    public func decoded() throws -> ImageDataset {
        guard !samples.isDecoded else { return self }
        var bytes = [UInt8](repeating: 0, count: count * samples.sampleBytes)
        try bytes.withUnsafeMutableBytes { out in
            for i in 0..<count {
                let at = out.baseAddress! + i * samples.sampleBytes
                let p = try samples.sample(i, scratch: at)
                if p != UnsafeRawPointer(at) { at.copyMemory(from: p, byteCount: samples.sampleBytes) }
            }
        }
        return ImageDataset(name: name, shape: imageShape,
                            samples: MemorySamples(bytes: bytes, sampleSize: sampleSize, element: samples.element),
                            labels: labels, classes: classes, classNames: classNames, normalization: normalization)
    }

    /// One sample normalised, through `choice`'s crop and flip if given.
    @inline(__always)
    private func copy<V: StoredValue>(_ src: UnsafePointer<V>, to dst: UnsafeMutablePointer<Float>,
                                      affine: [(scale: Float, shift: Float)], augmentation: Augmentation?,
                                      choice: (top: Int, left: Int, flip: Bool)?) {
        let plane = height * width
        guard let augmentation, let choice else {
            for c in 0..<channels {
                let (scale, shift) = affine[c], s = src + c * plane, d = dst + c * plane
                for i in 0..<plane { d[i] = s[i].float * scale + shift }
            }
            return
        }
        for r in 0..<height {
            for col in 0..<width {
                let at = Augmentation.source(y: r, x: col, height: height, width: width, pad: augmentation.pad,
                                             choice: choice)
                for channel in 0..<channels {
                    let value = at.map { src[channel * plane + $0.y * width + $0.x].float } ?? 0
                    dst[channel * plane + r * width + col] = value * affine[channel].scale + affine[channel].shift
                }
            }
        }
    }
}

/// A value type samples are stored in.
protocol StoredValue { var float: Float { get } }
extension UInt8: StoredValue { var float: Float { Float(self) } }
extension Float: StoredValue { var float: Float { self } }

/// A training and a test split of one dataset.
public struct DatasetSplits: Sendable {
    public var train: ImageDataset
    public var test: ImageDataset
    /// The image files `--skip-bad-files` left out, each with its reason.
    public var skippedFiles: [String] = []
    public init(train: ImageDataset, test: ImageDataset) { self.train = train; self.test = test }
}
