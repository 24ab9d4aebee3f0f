import CohortBase
import CohortNN
import CohortRun

/// What `cohort bench` measures: timed training steps of a model on synthetic data of its
/// input shape, the same data-parallel step as `cohort train`, split into its phases. The model
/// and how a step is split are training settings (`TrainingConfig`, the flags `cohort train`
/// has for them); a worker process receives them as JSON, flat (`{"batch_size": 64, "steps": 30, ...}`).
public struct BenchSettings: Codable, Equatable, Sendable {
    /// The model and the step's split: the keys of `trainingKeys`; the others stay at their defaults.
    public var training = TrainingConfig()
    /// Timed steps per configuration, after `warmup` untimed ones.
    public var steps = 30
    public var warmup = 5

    /// The training settings a benchmark takes (`cohort bench`'s model and parallel flags).
    public static let trainingKeys: [TrainingConfig.Key] = [.model, .modelParam, .hidden, .width, .batchSize, .threads,
                                                            .replicas, .bucketMb, .noOverlap, .allreduceDtype, .precision,
                                                            .trace, .dataset, .dataDir, .imageSize, .valSplit, .normalize,
                                                            .skipBadFiles, .loaderThreads, .augment, .dataFile,
                                                            .blockSize, .evalWindows, .clipGradNorm]

    enum CodingKeys: String, CodingKey { case steps, warmup }

    public init() {}

    public init(from decoder: Decoder) throws {
        let object = try JSONValue(from: decoder).objectValue ?? [:]
        try self.init(given: object)
    }

    public func encode(to encoder: Encoder) throws {
        let all = JSONValue(training).objectValue ?? [:]
        var object = all.filter { key, _ in Self.trainingKeys.contains { $0.rawValue == key } }
        object[CodingKeys.steps.rawValue] = .int(Int64(steps))
        object[CodingKeys.warmup.rawValue] = .int(Int64(warmup))
        try JSONValue.object(object).encode(to: encoder)
    }

    /// The defaults with `given` (settings by key, e.g. from command-line flags) on top.
    public static func from(given: [String: JSONValue]) throws -> BenchSettings {
        try BenchSettings(given: given)
    }

    private init(given: [String: JSONValue]) throws {
        var rest = given
        let timing = [CodingKeys.steps, .warmup].map(\.rawValue)
        for key in timing { rest[key] = nil }
        if let unknown = rest.keys.sorted().first(where: { key in !Self.trainingKeys.contains { $0.rawValue == key } }) {
            throw CohortError.settings("\(unknown) is not a benchmark setting")
        }
        training = try TrainingConfig.from(given: rest)
        let values = try JSONValue.merging(given.filter { timing.contains($0.key) },
                                           over: Timing(steps: steps, warmup: warmup))
        (steps, warmup) = (values.steps, values.warmup)
    }

    /// `steps` and `warmup` as JSON merges them.
    private struct Timing: Codable { var steps: Int, warmup: Int }

    /// The model measured, as `TrainingConfig.modelSpec` resolves it.
    public func modelSpec() throws -> ModelSpec { try training.modelSpec() }

    /// The training settings' checks (the model's, the batch's split, the buckets, the
    /// precision), and the timing's.
    public func validate(worldSize: Int = 1) throws {
        guard steps > 0, warmup >= 0 else { throw CohortError.settings("--steps must be positive, --warmup not negative") }
        try training.validate(worldSize: worldSize)
    }
}
