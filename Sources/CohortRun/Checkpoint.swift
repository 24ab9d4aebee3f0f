import CohortBase
import CohortNN
import CohortOptim
import CohortTensor
import Foundation

/// Where a run stands at a step boundary: everything needed to continue it as if it had
/// never stopped. The sampler needs no state of its own: epoch e's order is drawn from
/// (seed, e), so (epoch, step) is its position.
public struct TrainingPosition: Codable, Sendable {
    /// The epoch in progress (0-based) and the next step in it.
    public var epoch: Int, step: Int
    /// Optimizer steps taken (Adam's bias correction depends on it).
    public var optimizerSteps: Int
    /// Steps skipped for non-finite values (`--on-nan skip`): in the whole run, and in the
    /// epoch in progress (whose figures leave them out).
    public var skippedSteps: Int
    public var skippedInEpoch = 0
    /// Steps in an epoch of the run (a resumed run must have the same).
    public var stepsPerEpoch = 0
    /// Each rank's running training-loss sum and correct count in the epoch in progress,
    /// `[loss_0, correct_0, loss_1, correct_1, ...]`, so a resumed epoch reports the same figures.
    public var partialSums: [Double]
    /// Figures of the epochs already finished.
    public var history: [EpochMetrics]
    /// Every evaluation so far, and the run's clocks at this position: wall-clock seconds from
    /// the first step, and the part of them spent evaluating (nil in checkpoints of versions
    /// before time to accuracy).
    public var evaluations: [EvaluationRecord]?
    public var elapsedSeconds: Double?, evalSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, step, optimizerSteps = "optimizer_steps", skippedSteps = "skipped_steps"
        case skippedInEpoch = "skipped_in_epoch", stepsPerEpoch = "steps_per_epoch", partialSums = "partial_sums", history
        case evaluations, elapsedSeconds = "elapsed_seconds", evalSeconds = "eval_seconds"
    }

    /// Where a fresh run starts.
    public static let start = TrainingPosition(epoch: 0, step: 0, optimizerSteps: 0, skippedSteps: 0, partialSums: [],
                                               history: [])

    public init(epoch: Int, step: Int, optimizerSteps: Int, skippedSteps: Int, skippedInEpoch: Int = 0,
                stepsPerEpoch: Int = 0, partialSums: [Double], history: [EpochMetrics]) {
        self.epoch = epoch; self.step = step; self.optimizerSteps = optimizerSteps; self.skippedSteps = skippedSteps
        self.skippedInEpoch = skippedInEpoch; self.stepsPerEpoch = stepsPerEpoch; self.partialSums = partialSums
        self.history = history
    }

    /// Global steps since the start of the run.
    public var globalStep: Int { epoch * stepsPerEpoch + step }
}

/// How a run was carried out: what decides the order of float sums besides the settings
/// (ranks, each rank's threads and replicas, the gradient buckets, the micro-batches of a
/// step). A resumed run with other values equals an uninterrupted one up to rounding, not bit
/// for bit.
public struct Execution: Codable, Equatable, Sendable {
    public var worldSize: Int, threadsPerRank: Int, replicasPerRank: Int, bucketMb: Double
    /// nil in checkpoints of versions before gradient accumulation: 1.
    public var accumulate: Int?

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size", threadsPerRank = "threads_per_rank", replicasPerRank = "replicas_per_rank"
        case bucketMb = "bucket_mb", accumulate
    }

    public init(worldSize: Int, threadsPerRank: Int, replicasPerRank: Int, bucketMb: Double, accumulate: Int) {
        self.worldSize = worldSize; self.threadsPerRank = threadsPerRank; self.replicasPerRank = replicasPerRank
        self.bucketMb = bucketMb; self.accumulate = accumulate
    }

    public static func == (a: Execution, b: Execution) -> Bool {
        a.worldSize == b.worldSize && a.threadsPerRank == b.threadsPerRank && a.replicasPerRank == b.replicasPerRank
            && a.bucketMb == b.bucketMb && (a.accumulate ?? 1) == (b.accumulate ?? 1)
    }

    /// Whether a run carried out as `other` computes the same bits as one carried out as this:
    /// the global batch cut into the same slices (ranks x replicas x micro-batches), each slice
    /// with the same threads, and the slices' gradients added in the same pairwise tree
    /// (`ReplicaGroup.step`, and Open MPI's binomial allreduce across ranks): when the runs cut
    /// their ranks alike, or when both sum in the tree of the whole batch's slices. Buckets
    /// change which values travel together, not any value's sum.
    public func givesTheSameBits(as other: Execution) -> Bool {
        let sameCut = worldSize == other.worldSize && replicasPerRank == other.replicasPerRank
            && (accumulate ?? 1) == (other.accumulate ?? 1)
        return slices == other.slices && threadsPerRank / replicasPerRank == other.threadsPerRank / other.replicasPerRank
            && (sameCut || sumsInTheWholeBatchTree && other.sumsInTheWholeBatchTree)
    }

    /// The slices a global batch is cut into.
    var slices: Int { worldSize * replicasPerRank * (accumulate ?? 1) }

    /// Whether the slices add up in the pairwise tree of the whole batch's slices: the replicas'
    /// subtrees lie whole in each micro-batch's (a power of two of replicas, or one micro-batch),
    /// and each rank's in the ranks' tree (a power of two of slices per rank, or one rank).
    var sumsInTheWholeBatchTree: Bool {
        let powerOfTwo = { (n: Int) in n > 0 && n & (n - 1) == 0 }
        let micro = accumulate ?? 1
        return (powerOfTwo(replicasPerRank) || micro == 1) && (powerOfTwo(replicasPerRank * micro) || worldSize == 1)
    }

    public var description: String {
        "\(worldSize) rank(s) x \(threadsPerRank) thread(s) in \(replicasPerRank) replica(s), \(Format.figure(bucketMb)) MiB buckets"
            + ((accumulate ?? 1) > 1 ? ", \(accumulate ?? 1) micro-batches" : "")
    }
}

/// `state.json` of a checkpoint: the position, the settings it continues, the FNV-1a hashes
/// of both tensor files, and a checksum over all of it.
struct CheckpointState: Codable {
    var format = 2
    var position: TrainingPosition
    var globalStep: Int
    /// How the run that wrote it was carried out (its partial sums hold two figures per rank).
    var execution: Execution
    var settings: JSONValue
    var modelHash: String, optimizerHash: String
    var checksum: String?

    enum CodingKeys: String, CodingKey {
        case format, position, globalStep = "global_step", execution, settings
        case modelHash = "model_hash", optimizerHash = "optimizer_hash", checksum
    }

    /// FNV-1a of the compact, key-sorted encoding of everything but the checksum itself.
    var computedChecksum: String {
        var copy = self
        copy.checksum = nil
        return fnv1aHex(JSONFile.encode(copy, pretty: false))
    }
}

/// A checkpoint directory, `RUN/checkpoints/step-<global step>/`, written by rank 0:
/// `model.safetensors` (the parameters, loadable by PyTorch), `optimizer.safetensors`
/// (its state tensors, each as long as the parameters), and `state.json` (position,
/// settings, history, the FNV-1a hash of both tensor files, and a checksum over all of
/// it). It is built in a temporary directory, each file flushed to disk, then renamed
/// into place, so a checkpoint either exists whole or not at all; a damaged one is found
/// by its checksum and passed over for the one before it.
public enum Checkpoint {
    public static let keep = 2

    public static func directory(run: String) -> String { "\(run)/checkpoints" }

    static func name(globalStep: Int) -> String {
        let digits = String(globalStep)
        return "step-" + String(repeating: "0", count: max(0, 9 - digits.count)) + digits
    }

    /// Writes a checkpoint of `network`, `optimizer` and `position`, then keeps only the newest `keep`.
    public static func write(run: String, network: Network, optimizer: Optimizer, position: TrainingPosition,
                             settings: JSONValue, execution: Execution) throws -> String {
        let root = directory(run: run)
        let globalStep = position.globalStep
        // Temporary directories of a writer that died mid-way are of no use to anyone.
        for stale in ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []) where stale.hasPrefix(".step-") {
            try? FileManager.default.removeItem(atPath: "\(root)/\(stale)")
        }
        let final = "\(root)/\(name(globalStep: globalStep))"
        let temporary = "\(root)/.\(name(globalStep: globalStep)).tmp-\(getpid())"
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: root, withIntermediateDirectories: true)
            try files.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw CohortError.failure("\(root): cannot create a checkpoint directory (\(error.localizedDescription))")
        }
        let model = SafeTensors.encode(network)
        let optimizerData = encodeOptimizer(optimizer, count: network.parameterCount)
        // Plain durable writes: the directory is what gets renamed into place.
        try writeDurably(model, to: "\(temporary)/model.safetensors")
        try writeDurably(optimizerData, to: "\(temporary)/optimizer.safetensors")
        var state = CheckpointState(position: position, globalStep: globalStep, execution: execution,
                                    settings: settings, modelHash: fnv1aHex(model), optimizerHash: fnv1aHex(optimizerData))
        state.checksum = state.computedChecksum
        try writeDurably(JSONFile.encode(state) + Data("\n".utf8), to: "\(temporary)/state.json")
        syncDirectory(temporary)
        if files.fileExists(atPath: final) {
            // A checkpoint of the same step (a run resumed from before it): swapped in one step,
            // so the step's checkpoint exists whole at every moment; the old one is then removed.
            try exchangeAtomically(temporary, final)
            try? files.removeItem(atPath: temporary)
        } else {
            guard rename(temporary, final) == 0 else {
                throw CohortError.failure("\(final): cannot move the checkpoint into place (\(String(cString: strerror(errno))))")
            }
        }
        syncDirectory(root)
        for old in list(run: run).dropFirst(keep) { try? files.removeItem(atPath: "\(root)/\(old)") }
        return final
    }

    /// Checkpoint directory names of `run`, newest first (none when it has no checkpoint directory).
    public static func list(run: String) -> [String] {
        let root = directory(run: run)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return names.filter { $0.hasPrefix("step-") }.sorted(by: >)
    }

    /// A checkpoint read back and verified.
    public struct Loaded {
        public let path: String
        public let position: TrainingPosition
        public let settings: JSONValue
        public let execution: Execution
        public let parameters: [String: SafeTensors.Tensor]
        public let optimizerState: [String: SafeTensors.Tensor]
    }

    /// The newest checkpoint of `run` that verifies; damaged ones are reported through
    /// `warn` and passed over. Throws if there is none.
    public static func latest(run: String, warn: (String) -> Void) throws -> Loaded {
        let names = list(run: run)
        guard !names.isEmpty else { throw CohortError.failure("\(directory(run: run)): no checkpoint to resume from") }
        for name in names {
            let path = "\(directory(run: run))/\(name)"
            do { return try load(path) } catch {
                // Moved aside (kept for a look, no longer counted among the newest two).
                let aside = "\(directory(run: run))/damaged-\(name)"
                let moved = rename(path, aside) == 0
                warn("checkpoint \(path) is unusable (\(error))\(moved ? ", moved to \(aside)" : ""); trying the one before it")
            }
        }
        throw CohortError.failure("\(directory(run: run)): every checkpoint is damaged (\(names.joined(separator: ", ")))")
    }

    /// Reads and verifies one checkpoint directory.
    public static func load(_ path: String) throws -> Loaded {
        guard let modelData = FileManager.default.contents(atPath: "\(path)/model.safetensors"),
              let optimizerData = FileManager.default.contents(atPath: "\(path)/optimizer.safetensors"),
              let stateData = FileManager.default.contents(atPath: "\(path)/state.json") else {
            throw CohortError.failure("a file is missing")
        }
        let state = try JSONFile.decode(CheckpointState.self, from: stateData, source: "state.json")
        guard state.checksum == state.computedChecksum else { throw CohortError.failure("state.json does not match its checksum") }
        guard state.modelHash == fnv1aHex(modelData) else {
            throw CohortError.failure("model.safetensors does not match its checksum")
        }
        guard state.optimizerHash == fnv1aHex(optimizerData) else {
            throw CohortError.failure("optimizer.safetensors does not match its checksum")
        }
        let position = state.position, settings = state.settings
        return Loaded(path: path, position: position, settings: settings, execution: state.execution,
                      parameters: try SafeTensors.decode(modelData, path: "\(path)/model.safetensors"),
                      optimizerState: try SafeTensors.decode(optimizerData, path: "\(path)/optimizer.safetensors"))
    }

    static func encodeOptimizer(_ optimizer: Optimizer, count: Int) -> Data {
        let state = optimizer.stateTensors
        let storage = FloatBuffer(count: max(1, state.count * count))
        var tensors: [NamedTensor] = []
        for (i, (name, buffer)) in state.enumerated() {
            (storage.pointer + i * count).update(from: buffer.pointer, count: count)
            tensors.append(NamedTensor(name: name, shape: [count], offset: i * count))
        }
        return SafeTensors.encode(tensors: tensors, storage: storage.pointer)
    }

}
