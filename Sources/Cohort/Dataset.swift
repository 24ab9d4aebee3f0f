import CohortBase
import CohortData

/// Labelled images: the caller's own arrays, or a data set the command line reads. Images are
/// kept as bytes and normalised per batch, `x = (pixel / 255 - mean) / std`.
public struct Dataset: Sendable {
    let images: ImageDataset

    /// `pixels`: `count` images of `shape` = `[channels, height, width]` (row-major, 0...255),
    /// `labels`: one class in `0..<classes` each (at most 256 classes).
    public init(name: String = "arrays", pixels: [UInt8], shape: [Int], labels: [Int], classes: Int,
                mean: Float = 0, std: Float = 1) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw CohortError.settings("\(name): shape \(shape) is not [channels, height, width]")
        }
        guard (1...256).contains(classes) else { throw CohortError.settings("\(name): \(classes) classes; 1 to 256 are possible") }
        guard pixels.count == labels.count * shape.reduce(1, *) else {
            throw CohortError.settings("\(name): \(pixels.count) pixels for \(labels.count) images of \(shape)")
        }
        if let bad = labels.first(where: { !(0..<classes).contains($0) }) {
            throw CohortError.settings("\(name): label \(bad) is not in 0..<\(classes)")
        }
        guard std > 0, std.isFinite, mean.isFinite else { throw CohortError.settings("\(name): std must be > 0") }
        images = ImageDataset(name: name, channels: shape[0], height: shape[1], width: shape[2], pixels: pixels,
                              labels: labels.map { UInt8($0) }, classes: classes, mean: mean, std: std)
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

    public var name: String { images.name }
    public var count: Int { images.count }
    /// `[channels, height, width]`.
    public var shape: [Int] { images.imageShape }
    public var classes: Int { images.classes }
}
