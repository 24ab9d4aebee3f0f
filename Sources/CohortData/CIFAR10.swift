import CohortBase
import Foundation

/// CIFAR-10's official binary layout (`cifar-10-batches-bin/`): `data_batch_1.bin` …
/// `data_batch_5.bin` and `test_batch.bin`, each a run of 3073-byte records: one label
/// byte, then 1024 red, 1024 green and 1024 blue bytes of a 32×32 image (row-major),
/// which is exactly `[C, H, W]`. Normalised as `(x/255 - 0.5) / 0.5`.
public enum CIFAR10 {
    public static let recordSize = 1 + 3 * 32 * 32
    public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFiles = ["test_batch.bin"]

    /// Reads records from the given files into one dataset.
    public static func load(files: [String], name: String = "cifar10") throws -> ImageDataset {
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for path in files {
            let data = try readPossiblyCompressed(path)
            guard !data.isEmpty else { throw CohortError.failure("\(path): empty file") }
            guard data.count % recordSize == 0 else {
                throw CohortError.failure("\(path): \(data.count) bytes is not a whole number of \(recordSize)-byte "
                                + "CIFAR-10 records (truncated or not a CIFAR-10 batch)")
            }
            let records = data.count / recordSize
            pixels.reserveCapacity(pixels.count + records * (recordSize - 1))
            for r in 0..<records {
                let o = r * recordSize
                guard data[o] < 10 else { throw CohortError.failure("\(path): record \(r) has label \(data[o]), not below 10") }
                labels.append(data[o])
                pixels.append(contentsOf: data[(o + 1)..<(o + recordSize)])
            }
        }
        return ImageDataset(name: name, channels: 3, height: 32, width: 32, pixels: pixels, labels: labels,
                            mean: 0.5, std: 0.5)
    }

    /// Loads both splits from `directory` or from its `cifar-10-batches-bin/` subfolder.
    public static func loadSplits(directory: String) throws -> DatasetSplits {
        let nested = "\(directory)/cifar-10-batches-bin"
        let base = FileManager.default.fileExists(atPath: "\(nested)/test_batch.bin") ? nested : directory
        let missing = (trainFiles + testFiles).filter { !FileManager.default.fileExists(atPath: "\(base)/\($0)") }
        guard missing.isEmpty else {
            throw CohortError.failure("\(base): missing \(missing.joined(separator: ", ")) (expected CIFAR-10's binary "
                            + "layout, cifar-10-batches-bin/)")
        }
        return DatasetSplits(train: try load(files: trainFiles.map { "\(base)/\($0)" }),
                             test: try load(files: testFiles.map { "\(base)/\($0)" }))
    }
}
