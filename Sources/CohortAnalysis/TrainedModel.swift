import CohortBase
import CohortData
import CohortNN
import CohortRun
import Foundation

/// A trained model read back from a run directory, one of its checkpoints, or a
/// `.safetensors` file beside its `config.json`, with the test split it was evaluated on.
public struct TrainedModel {
    /// The model file and parameters the run trained.
    public let model: ModelSpec
    public let network: Network
    public let test: ImageDataset
    /// The data set the test split comes from (the run's, unless another was asked for).
    public let dataset: DatasetKind
    /// The run directory the model came from.
    public let runDirectory: String
    /// The test-time augmentation the run evaluated with (`--tta`).
    public let augmentation: TestTimeAugmentation

    /// `path`: a run directory, a checkpoint of one (`RUN/checkpoints/step-N`), or a
    /// `.safetensors` file in either. `dataset` and `dataDirectory` override the run's
    /// recorded data; `maxBatch` sizes the buffers.
    public init(path: String, dataset: DatasetKind? = nil, dataDirectory: String? = nil, testLimit: Int? = nil,
                maxBatch: Int = 256) throws {
        let (directory, weights) = try Self.locate(path)
        // The run's own settings and data, as training read them.
        var config = try RunRecord.read(directory: directory).config
        let recordedDataset = config.dataset
        if let dataset, dataset != config.dataset {
            config.dataset = dataset
            config.dataDir = nil
        }
        if let dataDirectory { config.dataDir = dataDirectory }
        if let testLimit { config.testLimit = testLimit }
        // The model as the run kept it (its copy of the model file).
        config.out = directory
        let model = try config.modelSpec(resumed: true)
        var splits = try config.loadData(for: model)
        if config.dataset == recordedDataset, let record = try DataRecord.read(directory: directory) {
            splits = try record.applied(to: splits, source: directory)
        }
        let network: Network
        do {
            network = try model.build(on: splits.test.sampleFormat, maxBatch: maxBatch)
        } catch { throw CohortError.settings(error.description) }
        network.training = false
        try SafeTensors.load(weights, into: network)
        // The analyses read every test sample, often many times: decoded once, here.
        self.model = model; self.network = network; self.test = try splits.test.decoded(); self.runDirectory = directory
        self.dataset = config.dataset; self.augmentation = config.tta
    }

    /// The run directory (holding config.json) and the parameters' file that `path` names.
    static func locate(_ path: String) throws -> (directory: String, weights: String) {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CohortError.failure("\(path): no such run directory, checkpoint or .safetensors file")
        }
        let weights = isDirectory.boolValue ? "\(path)/model.safetensors" : path
        let holder = (weights as NSString).deletingLastPathComponent
        let parent = holder.isEmpty ? "." : holder
        // A checkpoint's run is two levels up: RUN/checkpoints/step-N/model.safetensors.
        let run = ((parent as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        for directory in [parent, run.isEmpty ? "." : run] where files.fileExists(atPath: RunRecord.path(directory: directory)) {
            guard files.fileExists(atPath: weights) else { throw CohortError.failure("\(weights): missing") }
            return (directory, weights)
        }
        throw CohortError.failure("\(parent)/config.json: missing; the model's settings come from its run's config.json")
    }

    public init(model: ModelSpec, network: Network, test: ImageDataset, dataset: DatasetKind = .synthetic,
                runDirectory: String = ".", augmentation: TestTimeAugmentation = .none) {
        network.training = false
        self.model = model; self.network = network; self.test = test; self.dataset = dataset
        self.runDirectory = runDirectory; self.augmentation = augmentation
    }
}

/// Walks a dataset in batches of at most `network.maxBatch`, normalised as in training, with
/// each batch's labels.
func forEachBatch(of data: ImageDataset, network: Network,
                  _ body: (_ start: Int, _ count: Int, _ x: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>) -> Void) {
    let batch = network.maxBatch
    let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * data.sampleSize)
    let labels = UnsafeMutablePointer<Int32>.allocate(capacity: batch * data.targetsPerSample)
    defer { x.deallocate(); labels.deallocate() }
    var start = 0
    while start < data.count {
        let n = min(batch, data.count - start)
        data.fillDecoded(indices: start..<(start + n), x: x, y: labels)
        body(start, n, UnsafePointer(x), UnsafePointer(labels))
        start += n
    }
}

/// `forEachBatch` for analyses that do not read the labels.
func forEachBatch(of data: ImageDataset, network: Network,
                  _ body: (_ start: Int, _ count: Int, _ x: UnsafePointer<Float>) -> Void) {
    forEachBatch(of: data, network: network) { start, n, x, _ in body(start, n, x) }
}
