import CohortBase
import CohortNN
import CohortRun
import CohortTensor

/// What `cohort bench` measures: timed training steps of a model on synthetic data of its
/// input shape, the same data-parallel step as `cohort train`, split into its phases. A
/// worker process receives these settings as JSON.
public struct BenchSettings: Codable, Equatable, Sendable {
    /// A built-in model or a model file's path, as `cohort train --model`.
    public var model = "cnn"
    /// Values of the model file's parameters (`--model-param`).
    public var modelParam: [String: Int]?
    public var hidden = 128
    /// Multiplier of the CNN's filters: the model file's parameter `width` (`TrainingConfig.width`).
    public var width = 1
    /// Global batch, split over the ranks as in training.
    public var batchSize = 64
    public var steps = 30
    public var warmup = 5
    public var threads: Int?
    /// Replicas per rank (nil: one per thread when they divide the rank's batch).
    public var replicas: Int?
    public var bucketMb = 25.0
    public var noOverlap = false
    public var allreduceDtype: FloatFormat = .fp32
    public var precision: FloatFormat = .fp32
    /// Directory of the Chrome traces of the timed steps: `ranks-N/` for each rank count.
    public var trace: String?

    enum CodingKeys: String, CodingKey {
        case model, modelParam = "model_param", hidden, width, batchSize = "batch_size", steps, warmup, threads, replicas, bucketMb = "bucket_mb"
        case noOverlap = "no_overlap", allreduceDtype = "allreduce_dtype", precision, trace
    }

    public init() {}

    /// The model measured, as `TrainingConfig.modelSpec` resolves it.
    public func modelSpec() throws -> ModelSpec {
        var config = TrainingConfig()
        (config.model, config.modelParam, config.hidden, config.width) = (model, modelParam, hidden, width)
        return try config.modelSpec()
    }

    /// The defaults with `given` (settings by key, e.g. from command-line flags) on top.
    public static func from(given: [String: JSONValue]) throws -> BenchSettings {
        try JSONValue.merging(given, over: BenchSettings())
    }

    public func validate(worldSize: Int = 1) throws {
        guard batchSize > 0, hidden > 0, width > 0, width <= 64, steps > 0, warmup >= 0 else {
            throw CohortError.settings("--batch-size, --hidden and --steps must be positive, --width in 1...64, "
                                       + "--warmup not negative")
        }
        if let t = threads, t <= 0 { throw CohortError.settings("--threads must be positive, got \(t)") }
        guard bucketMb.isFinite, bucketMb > 0, bucketMb <= Double(1 << 30) else {
            throw CohortError.settings("--bucket-mb must be positive and at most 2^30, got \(bucketMb)")
        }
        try BatchSplit.check(batchSize: batchSize, worldSize: worldSize, replicas: replicas)
        try TrainingConfig.checkPrecision(precision)
    }
}
