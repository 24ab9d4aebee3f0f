import CohortBase
import CohortTensor
import Foundation

/// How a user's own data set is read (`--image-size`, `--val-split`, `--normalize`,
/// `--skip-bad-files`, `--seed`).
public struct DataOptions: Sendable {
    /// Images brought to `[height, width]` (`ImageTransform`); nil: the size they all have.
    public var imageSize: [Int]?
    /// Without a test split: this fraction of the training samples held out as one.
    public var valSplit: Double?
    /// nil: each channel's mean and std measured on the training split.
    public var normalize: InputNormalization?
    /// Unreadable images are left out (and counted) instead of ending the run.
    public var skipBadFiles = false
    /// Draws the held-out samples of `valSplit`.
    public var seed: UInt64 = 0
    /// A text's windows: T tokens of context, and the validation windows (`TextCorpus`).
    public var blockSize = 64, evalWindows = 500

    public init(imageSize: [Int]? = nil, valSplit: Double? = nil, normalize: InputNormalization? = nil,
                skipBadFiles: Bool = false, seed: UInt64 = 0) {
        self.imageSize = imageSize; self.valSplit = valSplit; self.normalize = normalize
        self.skipBadFiles = skipBadFiles; self.seed = seed
    }

    /// The train and test split of `all` (whose test split is missing): `valSplit` of its
    /// samples, drawn by a permutation from `seed` (the same on every rank), become the test
    /// split; both keep the original order of their samples.
    func heldOut(_ all: ImageDataset, source: String) throws -> DatasetSplits {
        guard let fraction = valSplit else {
            throw CohortError.settings("\(source) has no test split; pass --val-split F to hold out a fraction F of the training samples")
        }
        let testCount = Int((fraction * Double(all.count)).rounded())
        guard testCount >= 1, testCount < all.count else {
            throw CohortError.settings("--val-split \(fraction) of \(all.count) samples leaves no \(testCount < 1 ? "test" : "training") sample")
        }
        var rng = SplitMix64(seed: seed, stream: 6)
        let order = rng.permutation(of: all.count)
        let test = order[0..<testCount].sorted(), train = order[testCount...].sorted()
        return DatasetSplits(train: all.selecting(train), test: all.selecting(test))
    }

    /// `splits` normalised as `normalize` says, or per channel as measured on the training split.
    func normalized(_ splits: DatasetSplits, source: String) throws -> DatasetSplits {
        let train = splits.train
        let normalization: InputNormalization
        if let given = normalize {
            try given.check(channels: train.channels, source: source)
            normalization = given
        } else {
            normalization = try InputNormalization.measure(train.samples, count: train.count, channels: train.channels)
        }
        var out = DatasetSplits(train: train.with(normalization: normalization),
                                test: splits.test.with(normalization: normalization))
        out.skippedFiles = splits.skippedFiles
        return out
    }
}

extension ImageDataset {
    /// The samples `indices` of this set, in that order.
    func selecting(_ indices: [Int]) -> ImageDataset {
        ImageDataset(name: name, shape: imageShape, samples: SelectedSamples(samples, indices: indices),
                     labels: indices.map { labels[$0] }, classes: classes, classNames: classNames,
                     normalization: normalization)
    }
}

/// Some samples of another store, renumbered from 0.
final class SelectedSamples: SampleStore, @unchecked Sendable {
    let base: SampleStore, indices: [Int]
    var count: Int { indices.count }
    var sampleSize: Int { base.sampleSize }
    var element: SampleElement { base.element }
    var isDecoded: Bool { base.isDecoded }

    init(_ base: SampleStore, indices: [Int]) { self.base = base; self.indices = indices }

    func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer {
        try base.sample(indices[index], scratch: scratch)
    }
}

/// A data set as NumPy arrays (`--dataset arrays`): `x_train`, `y_train`, `x_test`, `y_test` as
/// `.npy` files in a directory, or as the members of one `.npz` archive (the directory's only
/// one, or the file `--data-dir` names). `x` is uint8 or float32 of shape `[N, C, H, W]`
/// (images), `[N, T, F]` (sequences: samples of `[1, T, F]`) or `[N, F]` (features: `[1, 1, F]`);
/// `y` holds integer labels `0..<K`, K one more than the largest training label. `x` is mapped,
/// never read whole; without `x_test`, `--val-split` holds out a part of the training set.
public enum ArrayDataset {
    public static let names = ["x_train", "y_train", "x_test", "y_test"]

    public static func load(_ path: String, options: DataOptions) throws -> DatasetSplits {
        let arrays = try find(path)
        guard let xTrain = arrays["x_train"], let yTrain = arrays["y_train"] else {
            throw CohortError.failure("\(path): no x_train and y_train arrays (expected \(names.map { "\($0).npy" }.joined(separator: ", ")) or one .npz holding them)")
        }
        let train = try dataset(x: xTrain, y: yTrain, name: "train", classes: nil)
        var splits: DatasetSplits
        switch (arrays["x_test"], arrays["y_test"]) {
        case let (x?, y?):
            let test = try dataset(x: x, y: y, name: "test", classes: train.classes)
            guard test.imageShape == train.imageShape else {
                throw CohortError.failure("\(x.name): samples of \(test.imageShape), the training samples are \(train.imageShape)")
            }
            guard x.dtype == xTrain.dtype else {
                throw CohortError.failure("\(x.name): dtype \(x.dtype), x_train's is \(xTrain.dtype)")
            }
            splits = DatasetSplits(train: train, test: test)
        case (nil, nil):
            splits = try options.heldOut(train, source: path)
        default:
            throw CohortError.failure("\(path): x_test and y_test go together (one of them is missing)")
        }
        return try options.normalized(splits, source: path)
    }

    /// The arrays at `path`: a `.npz` file, or a directory of `.npy` files or with one `.npz`.
    static func find(_ path: String) throws -> [String: NumPyArray] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CohortError.failure("\(path): no such file or directory")
        }
        guard isDirectory.boolValue else { return try NumPyArchive.arrays(path) }
        let npy = names.map { "\(path)/\($0).npy" }.filter { FileManager.default.fileExists(atPath: $0) }
        if !npy.isEmpty {
            return try Dictionary(uniqueKeysWithValues: npy.map { p in
                (String(URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent), try NumPyArray(npy: p))
            })
        }
        let archives = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".npz") }.sorted()
        guard archives.count == 1 else {
            throw CohortError.failure("\(path): " + (archives.isEmpty ? "no x_train.npy and no .npz archive"
                : "\(archives.count) .npz archives (\(archives.joined(separator: ", "))); name one with --data-dir FILE"))
        }
        return try NumPyArchive.arrays("\(path)/\(archives[0])")
    }

    /// One split: `x` as samples, `y` as labels checked against them.
    static func dataset(x: NumPyArray, y: NumPyArray, name: String, classes: Int?) throws -> ImageDataset {
        let element: SampleElement
        switch x.dtype {
        case .uint8: element = .uint8
        case .float32: element = .float32
        default: throw CohortError.failure("\(x.name): dtype \(x.dtype) (x must be uint8 or float32)")
        }
        let shape: [Int]
        switch x.shape.count {
        case 4: shape = Array(x.shape[1...])
        case 3: shape = [1, x.shape[1], x.shape[2]]
        case 2: shape = [1, 1, x.shape[1]]
        default: throw CohortError.failure("\(x.name): shape \(x.shape); expected [N, C, H, W], [N, T, F] or [N, F]")
        }
        let n = x.shape[0]
        guard n > 0, shape.allSatisfy({ $0 > 0 }) else { throw CohortError.failure("\(x.name): shape \(x.shape) holds no samples") }
        guard y.shape.count == 1 || (y.shape.count == 2 && y.shape[1] == 1) else {
            throw CohortError.failure("\(y.name): shape \(y.shape); labels are one integer per sample, [N]")
        }
        guard y.shape[0] == n else { throw CohortError.failure("\(y.name): \(y.shape[0]) labels for the \(n) samples of \(x.name)") }
        let labels = try y.integers()
        if let (i, bad) = labels.enumerated().first(where: { $0.element < 0 }) {
            throw CohortError.failure("\(y.name): label \(bad) of sample \(i) is negative (labels are 0..<classes)")
        }
        let largest = labels.max() ?? 0
        if let classes, largest >= classes {
            let i = labels.firstIndex(of: largest)!
            throw CohortError.failure("\(y.name): label \(largest) of sample \(i) is beyond the training labels 0..<\(classes)")
        }
        guard largest < 1 << 24 else { throw CohortError.failure("\(y.name): label \(largest) (at most 2^24 classes)") }
        let samples = MappedSamples(runs: [.init(file: x.file, offset: x.offset, count: n)], sampleSize: shape.reduce(1, *),
                                    element: element)
        return ImageDataset(name: "arrays", shape: shape, samples: samples, labels: labels.map { Int32($0) },
                            classes: classes ?? largest + 1, normalization: .identity)
    }
}
