import CohortBase
import CohortData
import Foundation

/// Labelled images: the caller's own arrays, your own files (an image folder, NumPy arrays, a
/// pack), or a data set the command line reads. Samples are kept as stored and normalised per
/// batch, `x = (pixel / 255 - mean) / std`.
public struct Dataset: Sendable {
    let images: ImageDataset

    /// `pixels`: `count` images of `shape` = `[channels, height, width]` (row-major, 0...255),
    /// `labels`: one class in `0..<classes` each.
    public init(name: String = "arrays", pixels: [UInt8], shape: [Int], labels: [Int], classes: Int,
                mean: Float = 0, std: Float = 1) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw CohortError.settings("\(name): shape \(shape) is not [channels, height, width]")
        }
        guard (1...(1 << 24)).contains(classes) else {
            throw CohortError.settings("\(name): \(classes) classes; 1 to 2^24 are possible")
        }
        guard pixels.count == labels.count * shape.reduce(1, *) else {
            throw CohortError.settings("\(name): \(pixels.count) pixels for \(labels.count) images of \(shape)")
        }
        if let bad = labels.first(where: { !(0..<classes).contains($0) }) {
            throw CohortError.settings("\(name): label \(bad) is not in 0..<\(classes)")
        }
        guard std > 0, std.isFinite, mean.isFinite else { throw CohortError.settings("\(name): std must be > 0") }
        images = ImageDataset(name: name, shape: shape, samples: MemorySamples(bytes: pixels, sampleSize: shape.reduce(1, *)),
                              labels: labels.map { Int32($0) }, classes: classes,
                              normalization: InputNormalization(mean: mean, std: std))
    }

    init(_ images: ImageDataset) { self.images = images }

    /// A data set the command line trains on (`cifar10`, `mnist`, `fashion-mnist`), from
    /// `directory` (nil: `COHORT_DATA` or `data/`, as `cohort fetch` places them).
    public static func load(_ name: String, directory: String? = nil) throws -> (train: Dataset, test: Dataset) {
        guard let kind = DatasetKind(rawValue: name), kind != .synthetic else {
            throw CohortError.settings("no data set \(name) (cifar10, mnist, fashion-mnist)")
        }
        let splits = try DatasetSource.load(kind, dataDirectory: directory, seed: 0)
        return (Dataset(splits.train), Dataset(splits.test))
    }

    /// Your own data from the files at `path`, read as `cohort train --dataset folder|arrays|pack
    /// --data-dir PATH` reads them (docs/training.md#your-own-data): an image folder
    /// (`PATH/train/CLASS/IMAGE`, `PATH/test/...`), NumPy arrays (`x_train.npy` ... or one `.npz`)
    /// or a pack made by `cohort data pack`. `imageSize` (`[height, width]`) brings a folder's
    /// images to one size; `validationFraction` holds out a part of the training samples where
    /// there is no test split; the inputs are normalised per channel as measured on the training
    /// split (a pack: as packed).
    public static func files(_ kind: FileFormat, at path: String, imageSize: [Int]? = nil,
                             validationFraction: Double? = nil, seed: UInt64 = 0) throws -> (train: Dataset, test: Dataset) {
        let options = DataOptions(imageSize: imageSize, valSplit: validationFraction, seed: seed)
        let splits = try DatasetSource.loadUserData(kind.kind, path: path, options: options)
        return (Dataset(splits.train), Dataset(splits.test))
    }

    /// The bytes of a text file as windows of `blockSize` tokens, read as `cohort train --dataset
    /// text --data-file PATH` reads them (docs/training.md#text): the first 90% trains (windows
    /// drawn by each step), the last 10% validates on `validationWindows` fixed windows.
    public static func text(at path: String, blockSize: Int = 64, validationWindows: Int = 500) throws
        -> (train: Dataset, test: Dataset) {
        guard (1...(1 << 16)).contains(blockSize), (1...(1 << 20)).contains(validationWindows) else {
            throw CohortError.settings("\(path): block size \(blockSize) or validation windows \(validationWindows) out of range")
        }
        let splits = try TextCorpus(path: path, blockSize: blockSize)
            .splits(name: (path as NSString).lastPathComponent, blockSize: blockSize, validationWindows: validationWindows)
        return (Dataset(splits.train), Dataset(splits.test))
    }

    /// The formats of your own data (`files(_:at:)`).
    public enum FileFormat: Sendable {
        case folder, arrays, pack

        var kind: DatasetKind { self == .folder ? .folder : self == .arrays ? .arrays : .pack }
    }

    /// The name of each class, by label.
    public var classNames: [String] { images.classNames }

    public var name: String { images.name }
    public var count: Int { images.count }
    /// `[channels, height, width]`.
    public var shape: [Int] { images.imageShape }
    public var classes: Int { images.classes }
}
