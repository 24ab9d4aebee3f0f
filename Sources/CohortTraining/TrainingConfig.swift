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
    /// Multiplier of the CNN's filters (1: the report's 32 and 64).
    public var width = 1
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
    /// Continue the run in `outputDirectory` from its newest good checkpoint.
    public var resume = false
    /// Also checkpoint every K global steps (a checkpoint ends every epoch regardless).
    public var checkpointSteps: Int?
    /// What a non-finite loss or gradient does: stop the run, or skip that step.
    public var onNonFinite: NonFinitePolicy = .stop
    /// Compare a checksum of the parameters across ranks every K steps (0: only at the end).
    public var checkEvery = 100

    public init() {}

    /// Checks every setting, naming the flag at fault.
    public func validate(worldSize: Int = 1) throws {
        guard learningRate.isFinite, learningRate > 0 else { throw SettingsError("--lr must be a positive number, got \(learningRate)") }
        guard epochs > 0 else { throw SettingsError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw SettingsError("--batch-size must be positive, got \(batchSize)") }
        guard hidden > 0 else { throw SettingsError("--hidden must be positive, got \(hidden)") }
        guard width > 0, width <= 64 else { throw SettingsError("--width must be in 1...64, got \(width)") }
        guard seed < 1 << 53 else { throw SettingsError("--seed must be below 2^53 (it is recorded in JSON), got \(seed)") }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else { throw SettingsError("--momentum must be in [0, 1), got \(momentum)") }
        if nesterov && !(optimizer == .sgd && momentum > 0) {
            throw SettingsError("--nesterov needs --optimizer sgd with --momentum > 0")
        }
        if let wd = weightDecay, !(wd.isFinite && wd >= 0) { throw SettingsError("--weight-decay must be >= 0, got \(wd)") }
        if let l = limit, l <= 0 { throw SettingsError("--limit must be positive, got \(l)") }
        if let l = testLimit, l <= 0 { throw SettingsError("--test-limit must be positive, got \(l)") }
        if let t = threads, t <= 0 { throw SettingsError("--threads must be positive, got \(t)") }
        guard bucketMB.isFinite, bucketMB > 0 else { throw SettingsError("--bucket-mb must be positive, got \(bucketMB)") }
        if let k = checkpointSteps, k <= 0 { throw SettingsError("--checkpoint-steps must be positive, got \(k)") }
        guard checkEvery >= 0 else { throw SettingsError("--check-every must be >= 0, got \(checkEvery)") }
        try ThreadPlan.checkBatchSplit(batchSize: batchSize, worldSize: worldSize, replicas: replicas)
    }

    /// The shape synthetic images take for this model: CIFAR-like for the CNN, MNIST-like for recurrent models.
    public var syntheticShape: [Int] { model.standardImageShape }

    /// Loads the data and checks that the model fits it, before anything is written.
    public func loadData() throws -> DatasetSplits {
        var data = try DatasetSource.load(dataset, dataDirectory: dataDirectory, seed: seed,
                                          syntheticShape: syntheticShape,
                                          syntheticCounts: (limit ?? 10_000, testLimit ?? 2_000))
        if let l = limit { data.train = data.train.prefix(l) }
        if let l = testLimit { data.test = data.test.prefix(l) }
        let train = data.train
        if model.isRecurrent && train.channels != 1 {
            throw RunError("--model \(model.rawValue) reads the rows of one-channel images; "
                           + "\(dataset.rawValue) has \(train.channels) channels")
        }
        if model == .cnn && (train.height < 4 || train.width < 4 || train.height != train.width) {
            throw RunError("--model cnn needs square images of at least 4x4; \(dataset.rawValue) has "
                           + "\(train.height)x\(train.width)")
        }
        guard train.count >= batchSize else {
            throw RunError("--batch-size \(batchSize) is larger than the \(train.count) training samples")
        }
        return data
    }

    /// The settings that decide what the run computes (the model, the data, the optimizer,
    /// the global batch, the seed), without how it is run (ranks, threads, buckets, where
    /// it writes) and without the number of epochs (which a resumed run may extend).
    /// Two runs with the same settings take the same steps.
    public var settingsJSON: JSON {
        func optional(_ v: Int?) -> JSON { v.map { .number(Double($0)) } ?? .null }
        return .object([
            ("model", .string(model.rawValue)), ("dataset", .string(dataset.rawValue)),
            ("optimizer", .string(optimizer.rawValue)), ("lr", .number(learningRate)), ("momentum", .number(momentum)),
            ("nesterov", .bool(nesterov)), ("weight_decay", weightDecay.map { .number($0) } ?? .null),
            ("batch_size", .number(Double(batchSize))), ("hidden", .number(Double(hidden))),
            ("width", .number(Double(width))), ("seed", .number(Double(seed))), ("limit", optional(limit)), ("test_limit", optional(testLimit)),
            ("on_nan", .string(onNonFinite.rawValue)),
        ])
    }

    /// The settings of a run directory's `config.json` (what `--resume` continues).
    public init(runConfig json: JSON) throws {
        func number(_ key: String) throws -> Double {
            guard let v = json[key]?.number else { throw RunError("config.json: no \(key)") }
            return v
        }
        /// A whole number in a sane range (a hand-edited file must not trap a conversion).
        func whole(_ v: Double, _ key: String) throws -> Int {
            guard v == v.rounded(), abs(v) < 1e15 else { throw RunError("config.json: \(key) \(v) is not a whole number") }
            return Int(v)
        }
        func int(_ key: String) throws -> Int { try whole(try number(key), key) }
        func optionalInt(_ key: String) throws -> Int? { try json[key]?.number.map { try whole($0, key) } }
        guard let model = json["model"]?.string.flatMap(ModelKind.init(rawValue:)),
              let dataset = json["dataset"]?.string.flatMap(DatasetKind.init(rawValue:)),
              let optimizer = json["optimizer"]?.string.flatMap(OptimizerKind.init(rawValue:)) else {
            throw RunError("config.json: model, dataset or optimizer missing or unknown")
        }
        self.init()
        self.model = model; self.dataset = dataset; self.optimizer = optimizer
        dataDirectory = json["data_dir"]?.string
        learningRate = try number("lr"); momentum = try number("momentum"); nesterov = json["nesterov"]?.bool ?? false
        weightDecay = json["weight_decay"]?.number
        epochs = try int("epochs"); batchSize = try int("batch_size"); hidden = try int("hidden")
        width = try optionalInt("width") ?? width
        let seed = try int("seed")
        guard seed >= 0 else { throw RunError("config.json: seed \(seed) is negative") }
        self.seed = UInt64(seed); limit = try optionalInt("limit"); testLimit = try optionalInt("test_limit")
        onNonFinite = json["on_nan"]?.string.flatMap(NonFinitePolicy.init(rawValue:)) ?? onNonFinite
        checkpointSteps = try optionalInt("checkpoint_steps")
        checkEvery = try optionalInt("check_every") ?? checkEvery
    }

    /// `config.json`: the settings, then how this run is carried out.
    func json(worldSize: Int, plan: ThreadPlan) -> JSON {
        guard case .object(let settings) = settingsJSON else { preconditionFailure("settings are an object") }
        return .object(settings + [
            ("data_dir", dataDirectory.map { .string($0) } ?? .null),
            ("epochs", .number(Double(epochs))),
            ("threads_per_rank", .number(Double(plan.threads))),
            ("replicas", .number(Double(plan.replicas))),
            ("world_size", .number(Double(worldSize))),
            ("out", .string(outputDirectory)),
            ("bucket_mb", .number(bucketMB)),
            ("overlap", .bool(overlap)),
            ("save_initial", .bool(saveInitial)),
            ("checkpoint_steps", checkpointSteps.map { .number(Double($0)) } ?? .null),
            ("check_every", .number(Double(checkEvery))),
            ("versions", .object([("cohort", .string(cohortVersion)), ("format", 1)])),
        ])
    }
}

public let cohortVersion = "0.1.0"

/// What a step with a non-finite loss or gradient does (`--on-nan`).
public enum NonFinitePolicy: String, CaseIterable, Sendable {
    /// End the run with a message naming the epoch and step; the last checkpoint stays.
    case stop
    /// Leave the parameters and optimizer state as they were and go on with the next step.
    case skip
}
