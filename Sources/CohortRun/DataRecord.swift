import CohortBase
import CohortData
import Foundation

/// What a run's data was (`data.json` in the run directory, written when the run starts): the
/// sample shape, the classes and their names, the normalisation the inputs had (measured on
/// your own data) and the files left out. `evaluate`, `predict`, `visualize` and `--resume`
/// take the class names and the normalisation from it, so they see the inputs training saw.
public struct DataRecord: Codable, Equatable, Sendable {
    public var dataset: DatasetKind
    public var shape: [Int]
    public var classes: Int
    public var classNames: [String]
    public var normalization: InputNormalization
    public var trainSamples: Int, testSamples: Int
    /// The image files `--skip-bad-files` left out, each with its reason.
    public var skippedFiles: [String]
    /// A text's vocabulary: the byte value of each token, ascending (nil for images).
    public var vocabulary: [UInt8]?

    enum CodingKeys: String, CodingKey {
        case dataset, shape, classes, classNames = "class_names", normalization, trainSamples = "train_samples"
        case testSamples = "test_samples", skippedFiles = "skipped_files", vocabulary
    }

    public init(dataset: DatasetKind, data: DatasetSplits) {
        self.dataset = dataset
        shape = data.train.imageShape; classes = data.train.classes; classNames = data.train.classNames
        normalization = data.train.normalization
        trainSamples = data.train.count; testSamples = data.test.count
        skippedFiles = data.skippedFiles
        vocabulary = data.train.windows?.vocabulary
    }

    public static func path(directory: String) -> String { "\(directory)/data.json" }

    /// The record of the run in `directory`, nil for a run that has none (it predates them).
    public static func read(directory: String) throws -> DataRecord? {
        let path = path(directory: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONFile.read(DataRecord.self, path: path)
    }

    /// `data` with this record's class names and normalisation, checked to be the same shape and classes.
    public func applied(to data: DatasetSplits, source: String) throws -> DatasetSplits {
        guard data.train.imageShape == shape, data.train.classes == classes else {
            throw CohortError.refused("\(source): the data now has \(data.train.classes) classes of samples "
                                      + "\(data.train.imageShape); the run trained on \(classes) of \(shape)")
        }
        var out = data
        out.train = data.train.with(classNames: classNames, normalization: normalization)
        out.test = data.test.with(classNames: classNames, normalization: normalization)
        return out
    }
}
