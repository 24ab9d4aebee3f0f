import CohortBase
import CohortData
import CohortNN
import CohortRun
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
            throw CohortError.failure("\(path): no such run directory or checkpoint")
        }
        let directory = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let weights = isDirectory.boolValue ? "\(path)/model.safetensors" : path
        let configPath = "\(directory.isEmpty ? "." : directory)/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw CohortError.failure("\(configPath): missing; the model's settings come from its run's config.json")
        }
        // The run's own settings and data, as training read them.
        var config = try RunRecord.read(directory: directory.isEmpty ? "." : directory).config
        if let dataDirectory { config.dataDir = dataDirectory }
        if let testLimit { config.testLimit = testLimit }
        let splits = try config.loadData()
        let network = Models.make(config.model, imageShape: splits.test.imageShape, hidden: config.hidden, width: config.width,
                                  classes: splits.test.classes, maxBatch: maxBatch)
        try SafeTensors.load(weights, into: network)
        self.model = config.model; self.network = network; self.test = splits.test; self.runDirectory = directory
    }

    public init(model: ModelKind, network: Network, test: ImageDataset, runDirectory: String = ".") {
        self.model = model; self.network = network; self.test = test; self.runDirectory = runDirectory
    }
}

/// Walks a dataset in batches of at most `network.maxBatch`, normalised as in training.
func forEachBatch(of data: ImageDataset, network: Network,
                  _ body: (_ start: Int, _ count: Int, _ x: UnsafePointer<Float>) -> Void) {
    let batch = network.maxBatch
    let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * data.sampleSize)
    defer { x.deallocate() }
    // `fill` writes the labels too; analyses do not read them.
    var labels = [Int32](repeating: 0, count: batch)
    var start = 0
    while start < data.count {
        let n = min(batch, data.count - start)
        labels.withUnsafeMutableBufferPointer { data.fill(indices: start..<(start + n), x: x, y: $0.baseAddress!) }
        body(start, n, UnsafePointer(x))
        start += n
    }
}
