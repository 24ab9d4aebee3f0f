import CohortBase
import CohortData
import CohortNN
import CohortOptim
import CohortTensor
import Foundation

/// Every setting of a training run, defined once: `cohort train`'s flags are these fields
/// (a flag `--batch-size` is the key `batch_size`), `config.json` records them, a resumed
/// run is checked against them, and worker processes receive them.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// A built-in model (`ModelKind`: cnn, rnn, lstm, gru, resnet20) or the path of a model file.
    public var model = "cnn"
    /// Values of the model file's parameters (`--model-param n=5,filters=32`).
    public var modelParam: [String: Int]?
    /// The recurrent models' hidden size: the model file's parameter `hidden`, where it has one.
    public var hidden = 128
    /// Multiplier of the CNN's filters (1: the report's 32 and 64): the parameter `width`, where the file has one.
    public var width = 1
    public var dataset: DatasetKind = .synthetic
    public var dataDir: String?
    /// The text file of `--dataset text` (`TextCorpus`).
    public var dataFile: String?
    /// T, the tokens a text's window gives the model (its context).
    public var blockSize = 64
    /// The fixed validation windows of a text, evenly spaced through its last 10%.
    public var evalWindows = 500
    /// Your own images brought to this size, `HxW` or `S` (`ImageTransform`); nil: the one size they have.
    public var imageSize: String?
    /// Without a test split: the fraction of the training samples held out as one (drawn from the seed).
    public var valSplit: Double?
    /// `MEAN/STD` of the inputs (`InputNormalization`); nil: the data set's own (measured on your own data).
    public var normalize: String?
    /// Leave unreadable image files out (counted) instead of refusing the data set.
    public var skipBadFiles = false
    /// Threads that prepare the next batches while a step computes (0: none, the step fills its batch).
    public var loaderThreads = 1
    /// Random crops and flips of the training images (`Augmentation.standard`).
    public var augment = false
    /// Use only the first N training samples.
    public var limit: Int?
    /// Evaluate on only the first N test samples.
    public var testLimit: Int?
    public var optimizer: OptimizerKind = .adagrad
    /// The learning rate for `baseBatch` samples per step (see `lrScaling`), the schedule's peak.
    public var lr = 0.01
    /// After the warmup: constant, step decay or cosine to 0 (`LearningRateSchedule`).
    public var lrSchedule: LearningRateDecay = .constant
    /// Epochs (fractions allowed) of linear warmup from 0 to the peak.
    public var warmupEpochs = 0.0
    /// With `lrSchedule` step: epochs between cuts by `gamma`.
    public var stepEpochs: Double?
    public var gamma = 0.1
    /// How the peak follows the global batch B: lr·(B/baseBatch), lr·sqrt(B/baseBatch), or lr.
    public var lrScaling: LearningRateScaling = .none
    public var baseBatch = 64
    public var momentum = 0.0
    public var nesterov = false
    /// nil: the optimizer's own default (0; 0.01 for AdamW).
    public var weightDecay: Double?
    /// Which tensors weight decay applies to: all, or those of two or more dimensions (`WeightDecayScope`).
    public var decayOn: WeightDecayScope = .all
    /// Adam's and AdamW's `β₁,β₂` (nil: PyTorch's 0.9,0.999).
    public var betas: String?
    /// Scale the reduced gradients so that their one L2 norm is at most this (`GradientClipping`).
    public var clipGradNorm: Double?
    /// The floor the cosine schedule ends at (PyTorch's `eta_min`).
    public var minLr = 0.0
    /// Linear warmup over this many global steps instead of `warmupEpochs`.
    public var warmupSteps: Int?
    public var epochs = 1
    /// Train this many global steps: the epochs they need, the last one stopping part way (nil: `epochs`).
    public var steps: Int?
    /// Global batch B, cut into equal slices over the ranks.
    public var batchSize = 64
    /// Samples per rank instead of `batchSize`: a new run's global batch is this times its
    /// rank count (and a resumed run keeps that global batch).
    public var batchPerRank: Int?
    /// Seed of initialisation, shuffling, dropout and synthetic data.
    public var seed: UInt64 = 0
    /// Initial weights from a safetensors file instead of the seeded initialisation (`--init`).
    public var initWeights: String?
    /// Batch norm with the global batch's statistics (`BatchNorm.statisticsSum` over every replica and rank).
    public var syncBatchnorm = false
    /// What a non-finite loss or gradient does: stop the run, or skip that step.
    public var onNan: NonFinitePolicy = .stop
    /// Micro-batches per optimizer step: each rank's slice of the global batch is cut into K
    /// parts whose gradients add up before the reduction (the loss still divided by the
    /// global batch), so 1 rank with K = 4 makes the updates of 4 ranks.
    public var accumulate = 1
    /// Threads per rank (nil: the node's cores / ranks on the node).
    public var threads: Int?
    /// Replicas of the model per rank, one thread each, splitting the rank's batch
    /// (nil: one per thread of the rank, when they can share its batch equally).
    public var replicas: Int?
    /// Gradient bucket size for the allreduce, in MiB (PyTorch DDP's default: 25).
    public var bucketMb = 25.0
    /// Reduce gradients after backward instead of overlapping each bucket with it.
    public var noOverlap = false
    /// What the gradients are sent as: floats, or bfloat16 summed in float (half the bytes).
    public var allreduceDtype: FloatFormat = .fp32
    /// What the CNN's convolutions multiply: floats, or bfloat16 with float accumulation (the
    /// parameters, optimizer state, loss and checkpoints stay float).
    public var precision: FloatFormat = .fp32
    /// Directory of the Chrome trace of every step (`StepTimeline`), if any.
    public var trace: String?
    public var out = "runs/latest"
    /// Also checkpoint every K global steps (a checkpoint ends every epoch regardless).
    public var checkpointSteps: Int?
    /// Compare a checksum of the parameters across ranks every K steps (0: only at the end).
    public var checkEvery = 100
    /// Also write the parameters as initialised, before the first step (`initial.safetensors`).
    public var saveInitial = false
    /// Seconds a collective may wait for the other ranks before the job ends (0: forever).
    public var timeout = 300.0
    /// ε of label smoothing: training's target is `(1 - ε)·onehot + ε/K` (`SoftmaxCrossEntropy`).
    public var labelSmoothing = 0.0
    /// The views of each test image whose probabilities evaluation averages.
    public var tta: TestTimeAugmentation = .none
    /// Stop at the first evaluation whose test accuracy reaches this (a fraction in (0, 1]).
    public var targetAccuracy: Double?
    /// Stop at the first evaluation whose test loss is at or below this.
    public var targetLoss: Double?
    /// Evaluate also every K steps or every fraction of an epoch (nil: at epochs' ends only).
    public var evalEvery: EvaluationInterval?
    /// Which ranks evaluate.
    public var evalOn: EvaluationRanks = .rank0

    public enum CodingKeys: String, CodingKey, CaseIterable, Sendable {
        case model, modelParam = "model_param", hidden, width, dataset, dataDir = "data_dir", dataFile = "data_file"
        case blockSize = "block_size", evalWindows = "eval_windows", imageSize = "image_size"
        case valSplit = "val_split", normalize, skipBadFiles = "skip_bad_files", loaderThreads = "loader_threads"
        case augment, limit, testLimit = "test_limit", optimizer, lr
        case lrSchedule = "lr_schedule", warmupEpochs = "warmup_epochs", stepEpochs = "step_epochs", gamma
        case lrScaling = "lr_scaling", baseBatch = "base_batch", momentum
        case nesterov, weightDecay = "weight_decay", decayOn = "decay_on", betas, clipGradNorm = "clip_grad_norm"
        case minLr = "min_lr", warmupSteps = "warmup_steps", epochs, steps
        case batchSize = "batch_size", batchPerRank = "batch_per_rank"
        case seed, initWeights = "init", syncBatchnorm = "sync_batchnorm", onNan = "on_nan"
        case accumulate, threads, replicas, bucketMb = "bucket_mb", noOverlap = "no_overlap", allreduceDtype = "allreduce_dtype", precision, trace, out
        case checkpointSteps = "checkpoint_steps", checkEvery = "check_every", saveInitial = "save_initial", timeout
        case labelSmoothing = "label_smoothing", tta, targetAccuracy = "target_accuracy", targetLoss = "target_loss"
        case evalEvery = "eval_every"
        case evalOn = "eval_on"
    }

    /// The settings that decide what the run computes (the model, the data, the optimizer,
    /// the global batch, the seed): two runs that agree on them take the same steps, and a
    /// resumed run must keep them. The rest says how the run is carried out and may change
    /// on resume (epochs only grow: a checkpoint past them is refused).
    static let definingKeys: [CodingKeys] = [.model, .modelParam, .hidden, .width, .dataset, .blockSize, .evalWindows,
                                             .imageSize, .valSplit,
                                             .normalize, .skipBadFiles, .augment, .limit, .testLimit,
                                             .optimizer, .lr, .lrSchedule, .warmupEpochs, .stepEpochs, .gamma,
                                             .lrScaling, .baseBatch, .momentum, .nesterov, .weightDecay, .decayOn, .betas,
                                             .clipGradNorm, .minLr, .warmupSteps, .batchSize,
                                             .seed, .initWeights, .syncBatchnorm, .onNan, .labelSmoothing, .tta]

    public init() {}

    /// The defining settings as JSON (what checkpoints record and a reused directory must match).
    public var definingSettings: JSONValue {
        let all = JSONValue(self).objectValue ?? [:]
        return .object(all.filter { key, _ in Self.definingKeys.contains { $0.rawValue == key } })
    }

    /// Settings as a checkpoint or config.json recorded them, completed with today's defaults:
    /// a setting added since was, in effect, at its default in a run that predates it.
    public static func completing(_ recorded: [String: JSONValue]) throws -> TrainingConfig {
        try JSONValue.merging(recorded, over: TrainingConfig())
    }

    /// The defining settings a checkpoint recorded, completed with today's defaults.
    public static func definingSettings(recorded: JSONValue) -> JSONValue {
        guard let object = recorded.objectValue, let config = try? completing(object) else { return recorded }
        return config.definingSettings
    }

    /// The defaults with `given` (settings by key, e.g. from command-line flags) on top.
    public static func from(given: [String: JSONValue]) throws -> TrainingConfig {
        try checkKeys(given)
        if given[CodingKeys.batchSize.rawValue] != nil && given[CodingKeys.batchPerRank.rawValue] != nil {
            throw CohortError.settings("give --batch-size (the global batch) or --batch-per-rank, not both")
        }
        if given[CodingKeys.steps.rawValue] != nil && given[CodingKeys.epochs.rawValue] != nil {
            throw CohortError.settings("give --epochs or --steps (which sets the epochs it needs), not both")
        }
        return try JSONValue.merging(given, over: TrainingConfig())
    }

    /// A new run's global batch for `worldSize` ranks: `batchPerRank` of each, if given.
    public mutating func resolveBatch(worldSize: Int) {
        if let perRank = batchPerRank { batchSize = perRank * worldSize }
    }

    /// The run recorded in `directory`/config.json, continued with `given` on top: a defining
    /// setting may only repeat the recorded value.
    public static func resuming(_ directory: String, given: [String: JSONValue]) throws -> TrainingConfig {
        try checkKeys(given)
        let recorded = try RunRecord.read(directory: directory).config
        let settings = JSONValue(recorded).objectValue ?? [:]
        for key in definingKeys.map(\.rawValue) {
            if let value = given[key], value != settings[key] {
                throw CohortError.settings("--\(flagName(key)) \(value): the run in \(directory) has "
                                           + "\(settings[key].map { "\($0)" } ?? "none"), and a resumed run keeps its settings")
            }
        }
        let perRank = CodingKeys.batchPerRank.rawValue
        if let value = given[perRank], value != settings[perRank] {
            throw CohortError.settings("--batch-per-rank \(value): the run in \(directory) has a global batch of "
                                       + "\(recorded.batchSize), which a resumed run keeps on any number of ranks")
        }
        if let out = given[CodingKeys.out.rawValue], out != .string(directory) {
            throw CohortError.settings("--out \(out) and --resume \(directory) name different runs")
        }
        // The run continues where --resume names it, however config.json spelled the path.
        var config: TrainingConfig = try JSONValue.merging(given, over: recorded)
        config.out = directory
        return config
    }

    static func checkKeys(_ given: [String: JSONValue]) throws {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = given.keys.sorted().first(where: { !known.contains($0) }) {
            throw CohortError.settings("\(unknown) is not a training setting")
        }
    }

    /// `batch_size` -> `batch-size`.
    public static func flagName(_ key: String) -> String { key.replacingOccurrences(of: "_", with: "-") }

    /// Checks every setting, naming the flag at fault.
    public func validate(worldSize: Int = 1) throws {
        func fail(_ message: String) -> CohortError { .settings(message) }
        guard lr.isFinite, lr > 0 else { throw fail("--lr must be a positive number, got \(lr)") }
        guard epochs > 0 else { throw fail("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0, batchSize <= 1 << 30 else {
            throw fail("--batch-size must be positive (at most 2^30), got \(batchSize)")
        }
        if let b = batchPerRank, !(1...(1 << 30)).contains(b) { throw fail("--batch-per-rank must be in 1...2^30, got \(b)") }
        guard (1...(1 << 30)).contains(baseBatch) else { throw fail("--base-batch must be in 1...2^30, got \(baseBatch)") }
        guard warmupEpochs.isFinite, warmupEpochs >= 0, warmupEpochs <= Double(epochs) else {
            throw fail("--warmup-epochs must be in 0...--epochs (\(epochs)), got \(warmupEpochs)")
        }
        if lrSchedule == .step {
            guard let e = stepEpochs else { throw fail("--lr-schedule step needs --step-epochs E (epochs between cuts)") }
            guard e.isFinite, e > 0, e <= 1e6 else { throw fail("--step-epochs must be in (0, 1e6], got \(e)") }
        } else if stepEpochs != nil {
            throw fail("--step-epochs goes with --lr-schedule step")
        }
        guard gamma.isFinite, gamma > 0, gamma <= 1 else { throw fail("--gamma must be in (0, 1], got \(gamma)") }
        guard hidden > 0 else { throw fail("--hidden must be positive, got \(hidden)") }
        guard width > 0, width <= 64 else { throw fail("--width must be in 1...64, got \(width)") }
        guard seed < 1 << 53 else { throw fail("--seed must be below 2^53 (it is recorded in JSON), got \(seed)") }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else { throw fail("--momentum must be in [0, 1), got \(momentum)") }
        if nesterov && !(optimizer == .sgd && momentum > 0) { throw fail("--nesterov needs --optimizer sgd with --momentum > 0") }
        if let wd = weightDecay, !(wd.isFinite && wd >= 0) { throw fail("--weight-decay must be >= 0, got \(wd)") }
        if decayOn != .all && ![.adam, .adamw].contains(optimizer) {
            throw fail("--decay-on \(decayOn.rawValue) goes with --optimizer adam or adamw")
        }
        if let betas {
            guard [.adam, .adamw].contains(optimizer) else { throw fail("--betas goes with --optimizer adam or adamw") }
            guard let (b1, b2) = betaValues, (0..<1).contains(b1), (0..<1).contains(b2) else {
                throw fail("--betas must be two numbers in [0, 1) as B1,B2 (such as 0.9,0.99), got \(betas)")
            }
        }
        if let c = clipGradNorm, !(c.isFinite && c > 0) { throw fail("--clip-grad-norm must be positive, got \(c)") }
        guard minLr.isFinite, minLr >= 0, minLr <= lr else { throw fail("--min-lr must be in 0...--lr (\(lr)), got \(minLr)") }
        if minLr > 0 && lrSchedule != .cosine { throw fail("--min-lr is the floor of --lr-schedule cosine") }
        if let s = steps, !(1...(1 << 40)).contains(s) { throw fail("--steps must be positive, got \(s)") }
        if let w = warmupSteps {
            guard warmupEpochs == 0 else { throw fail("give --warmup-steps or --warmup-epochs, not both") }
            guard w >= 0, w <= (steps ?? Int.max) else {
                throw fail("--warmup-steps must be in 0...--steps\(steps.map { " (\($0))" } ?? ""), got \(w)")
            }
        }
        if let l = limit, l <= 0 { throw fail("--limit must be positive, got \(l)") }
        try validateDataSettings()
        if let l = testLimit, l <= 0 { throw fail("--test-limit must be positive, got \(l)") }
        if let t = threads, t <= 0 { throw fail("--threads must be positive, got \(t)") }
        // Bytes must fit an Int: a bucket larger than any model is as good as one bucket.
        guard bucketMb.isFinite, bucketMb > 0, bucketMb <= Double(1 << 30) else {
            throw fail("--bucket-mb must be positive and at most 2^30, got \(bucketMb)")
        }
        if let k = checkpointSteps, k <= 0 { throw fail("--checkpoint-steps must be positive, got \(k)") }
        guard checkEvery >= 0 else { throw fail("--check-every must be >= 0, got \(checkEvery)") }
        guard timeout.isFinite, timeout >= 0, timeout <= 1e6 else {
            throw fail("--timeout must be in 0...1e6 seconds (0: wait for ever), got \(timeout)")
        }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw fail("--label-smoothing must be in [0, 1), got \(labelSmoothing)")
        }
        if let l = targetLoss, !(l.isFinite && l > 0) { throw fail("--target-loss must be a positive number, got \(l)") }
        if let a = targetAccuracy, !(a.isFinite && a > 0 && a <= 1) {
            throw fail("--target-accuracy is a fraction of the test set in (0, 1] (0.717 for 71.7%), got \(a)")
        }
        guard (1...(1 << 20)).contains(accumulate) else { throw fail("--accumulate must be in 1...2^20, got \(accumulate)") }
        try Self.checkPrecision(precision)
        try BatchSplit.check(batchSize: batchSize, worldSize: worldSize, replicas: replicas, accumulate: accumulate)
    }

    /// `--precision bf16` needs a CPU on which oneDNN has bfloat16 kernels (AVX-512; AVX512_BF16 runs them
    /// in hardware).
    public static func checkPrecision(_ precision: FloatFormat) throws {
        guard precision == .bf16 else { return }
        if let missing = BF16Support.missing {
            throw CohortError.settings("--precision bf16: \(missing); use --precision fp32")
        }
    }

}

/// How a global batch splits: into equal slices over the ranks, each into `accumulate`
/// micro-batches and, if given, each of those over the replicas of the rank.
public enum BatchSplit {
    public static func check(batchSize: Int, worldSize: Int, replicas: Int?, accumulate: Int = 1) throws {
        guard batchSize % worldSize == 0 else {
            throw CohortError.settings("--batch-size \(batchSize) is not divisible by the \(worldSize) ranks; "
                                       + "use a multiple of \(worldSize)")
        }
        let perRank = batchSize / worldSize
        guard perRank % accumulate == 0 else {
            throw CohortError.settings("--batch-size \(batchSize) gives \(perRank) samples per rank, which --accumulate "
                                       + "\(accumulate) cannot cut into equal micro-batches")
        }
        if let r = replicas {
            guard r > 0 else { throw CohortError.settings("--replicas must be positive, got \(r)") }
            guard (perRank / accumulate) % r == 0 else {
                throw CohortError.settings("--batch-size \(batchSize) gives \(perRank / accumulate) samples per rank"
                                           + (accumulate > 1 ? " and micro-batch" : "") + ", which \(r) replicas cannot share equally")
            }
        }
    }
}

/// What a step with a non-finite loss or gradient does (`--on-nan`).
public enum NonFinitePolicy: String, CaseIterable, Codable, Sendable {
    /// End the run with a message naming the epoch and step; the last checkpoint stays.
    case stop
    /// Leave the parameters and optimizer state as they were and go on with the next step.
    case skip
}
