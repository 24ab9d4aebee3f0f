import CohortData
import CohortNN
import CohortOptim
import Foundation

/// Every setting of a training run: what `cohort train` parses, what `config.json` records.
public struct TrainingConfig: Sendable {
    public var model: ModelKind = .cnn
    public var dataset: DatasetKind = .synthetic
    public var dataDirectory: String?
    public var optimizer: OptimizerKind = .adagrad
    public var learningRate: Double = 0.01
    public var momentum: Double = 0
    public var nesterov = false
    public var weightDecay: Double?
    public var epochs = 1
    /// Global batch B, cut into equal slices over the ranks.
    public var batchSize = 64
    public var hidden = 128
    public var seed: UInt64 = 0
    /// Use only the first N training samples.
    public var limit: Int?
    /// Evaluate on only the first N test samples.
    public var testLimit: Int?
    /// BLAS threads per rank (default: cores on the node / ranks on the node).
    public var threads: Int?
    public var outputDirectory = "runs/latest"
    /// Gradient bucket size for the allreduce, in MiB (PyTorch DDP's default: 25).
    public var bucketMB: Double = 25
    /// Overlap the allreduce of each bucket with the rest of backward.
    public var overlap = true
    /// Replicas of the model per rank, one thread each, splitting the rank's batch
    /// (default: one per thread of the rank, when they can share its batch equally).
    public var replicas: Int?
    /// Also write the parameters as initialised, before the first step (`initial.safetensors`).
    public var saveInitial = false

    public init() {}

    /// Checks every setting, naming the flag at fault.
    public func validate(worldSize: Int = 1) throws {
        guard learningRate.isFinite, learningRate > 0 else { throw SettingsError("--lr must be a positive number, got \(learningRate)") }
        guard epochs > 0 else { throw SettingsError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw SettingsError("--batch-size must be positive, got \(batchSize)") }
        guard hidden > 0 else { throw SettingsError("--hidden must be positive, got \(hidden)") }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else { throw SettingsError("--momentum must be in [0, 1), got \(momentum)") }
        if nesterov && !(optimizer == .sgd && momentum > 0) {
            throw SettingsError("--nesterov needs --optimizer sgd with --momentum > 0")
        }
        if let wd = weightDecay, !(wd.isFinite && wd >= 0) { throw SettingsError("--weight-decay must be >= 0, got \(wd)") }
        if let l = limit, l <= 0 { throw SettingsError("--limit must be positive, got \(l)") }
        if let l = testLimit, l <= 0 { throw SettingsError("--test-limit must be positive, got \(l)") }
        if let t = threads, t <= 0 { throw SettingsError("--threads must be positive, got \(t)") }
        guard bucketMB.isFinite, bucketMB > 0 else { throw SettingsError("--bucket-mb must be positive, got \(bucketMB)") }
        try ThreadPlan.checkBatchSplit(batchSize: batchSize, worldSize: worldSize, replicas: replicas)
    }

    /// The shape synthetic images take for this model: CIFAR-like for the CNN, MNIST-like for recurrent models.
    public var syntheticShape: [Int] { model.standardImageShape }

    func json(worldSize: Int, plan: ThreadPlan) -> JSON {
        func optional(_ v: Int?) -> JSON { v.map { .number(Double($0)) } ?? .null }
        return .object([
            ("model", .string(model.rawValue)),
            ("dataset", .string(dataset.rawValue)),
            ("data_dir", dataDirectory.map { .string($0) } ?? .null),
            ("optimizer", .string(optimizer.rawValue)),
            ("lr", .number(learningRate)),
            ("momentum", .number(momentum)),
            ("nesterov", .bool(nesterov)),
            ("weight_decay", weightDecay.map { .number($0) } ?? .null),
            ("epochs", .number(Double(epochs))),
            ("batch_size", .number(Double(batchSize))),
            ("hidden", .number(Double(hidden))),
            ("seed", .number(Double(seed))),
            ("limit", optional(limit)),
            ("test_limit", optional(testLimit)),
            ("threads_per_rank", .number(Double(plan.threads))),
            ("replicas", .number(Double(plan.replicas))),
            ("world_size", .number(Double(worldSize))),
            ("out", .string(outputDirectory)),
            ("bucket_mb", .number(bucketMB)),
            ("overlap", .bool(overlap)),
            ("save_initial", .bool(saveInitial)),

            ("versions", .object([("cohort", .string(cohortVersion)), ("format", 1)])),
        ])
    }
}

public let cohortVersion = "0.1.0"
