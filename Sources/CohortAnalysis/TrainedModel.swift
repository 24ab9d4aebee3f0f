import CohortData
import CohortNN
import CohortTraining
import Foundation

/// A trained model read back from a run directory (or a `.safetensors` file beside its
/// `config.json`), with the test split it was evaluated on.
public struct TrainedModel {
    public let model: ModelKind
    public let network: Network
    public let test: ImageDataset
    /// The run directory the model came from.
    public let runDirectory: String

    /// `path`: a run directory, or a `.safetensors` file whose directory holds `config.json`.
    /// `dataDirectory` overrides the run's recorded `data_dir`; `maxBatch` sizes the buffers.
    public init(path: String, dataDirectory: String? = nil, testLimit: Int? = nil, maxBatch: Int = 256) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RunError("\(path): no such run directory or checkpoint")
        }
        let directory = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let weights = isDirectory.boolValue ? "\(path)/model.safetensors" : path
        let configPath = "\(directory.isEmpty ? "." : directory)/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw RunError("\(configPath): missing; the model's settings come from its run's config.json")
        }
        let config = try JSON(contentsOfFile: configPath)
        guard let modelName = config["model"]?.string, let model = ModelKind(rawValue: modelName),
              let datasetName = config["dataset"]?.string, let dataset = DatasetKind(rawValue: datasetName),
              let hidden = config["hidden"]?.number else {
            throw RunError("\(configPath): not a Cohort run configuration (model, dataset, hidden)")
        }
        let seed = UInt64(config["seed"]?.number ?? 0)
        var splits = try DatasetSource.load(dataset, dataDirectory: dataDirectory ?? config["data_dir"]?.string, seed: seed,
                                            syntheticShape: model.standardImageShape,
                                            syntheticCounts: (Int(config["limit"]?.number ?? 10_000),
                                                              Int(config["test_limit"]?.number ?? 2_000)))
        if let limit = testLimit ?? config["test_limit"]?.number.map(Int.init) { splits.test = splits.test.prefix(limit) }
        let network = Models.make(model, imageShape: splits.test.imageShape, hidden: Int(hidden),
                                  width: Int(config["width"]?.number ?? 1),
                                  classes: splits.test.classes, maxBatch: maxBatch)
        try SafeTensors.load(weights, into: network)
        self.model = model; self.network = network; self.test = splits.test; self.runDirectory = directory
    }

    public init(model: ModelKind, network: Network, test: ImageDataset, runDirectory: String = ".") {
        self.model = model; self.network = network; self.test = test; self.runDirectory = runDirectory
    }
}

extension Network {
    /// Runs `batch` samples through layers `0...last`, calling `visit(i, output)` after each.
    func forward(_ x: UnsafePointer<Float>, batch: Int, through last: Int,
                 visit: (Int, UnsafePointer<Float>) -> Void = { _, _ in }) -> UnsafePointer<Float> {
        var a = x
        for i in 0...last {
            a = layers[i].forward(a, batch: batch)
            visit(i, a)
        }
        return a
    }
}

/// Walks a dataset in batches of at most `network.maxBatch`, normalised as in training.
func forEachBatch(of data: ImageDataset, network: Network,
                  _ body: (_ start: Int, _ count: Int, _ x: UnsafePointer<Float>, _ labels: [Int32]) -> Void) {
    let batch = network.maxBatch
    let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * data.sampleSize)
    defer { x.deallocate() }
    var labels = [Int32](repeating: 0, count: batch)
    var start = 0
    while start < data.count {
        let n = min(batch, data.count - start)
        labels.withUnsafeMutableBufferPointer { data.fill(indices: start..<(start + n), x: x, y: $0.baseAddress!) }
        body(start, n, UnsafePointer(x), Array(labels[0..<n]))
        start += n
    }
}
