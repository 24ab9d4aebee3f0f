import CohortNN
import CohortOptim
import CohortTensor
import Foundation

/// Where a run stands at a step boundary: everything needed to continue it as if it had
/// never stopped. The sampler needs no state of its own: epoch e's order is drawn from
/// (seed, e), so (epoch, step) is its position.
public struct TrainingPosition: Sendable {
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
                             settings: JSON) throws -> String {
        let root = directory(run: run)
        let globalStep = position.epoch * position.stepsPerEpoch + position.step
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
            throw RunError("\(root): cannot create a checkpoint directory (\(error.localizedDescription))")
        }
        let model = SafeTensors.encode(tensors: network.tensors, storage: network.parameters.pointer)
        let optimizerData = encodeOptimizer(optimizer, count: network.parameterCount)
        // Plain durable writes: the directory is what gets renamed into place.
        try writeDurably(model, to: "\(temporary)/model.safetensors")
        try writeDurably(optimizerData, to: "\(temporary)/optimizer.safetensors")
        var state = stateJSON(position: position, settings: settings, globalStep: globalStep,
                              modelHash: hash(model), optimizerHash: hash(optimizerData))
        state = appendingChecksum(state)
        try writeDurably(Data((state.serialized(pretty: true) + "\n").utf8), to: "\(temporary)/state.json")
        syncDirectory(temporary)
        // A checkpoint of the same step (a run resumed from before it) is replaced whole.
        try? files.removeItem(atPath: final)
        guard rename(temporary, final) == 0 else {
            throw RunError("\(final): cannot move the checkpoint into place (\(String(cString: strerror(errno))))")
        }
        syncDirectory(root)
        for old in list(run: run).dropFirst(keep) { try? files.removeItem(atPath: "\(root)/\(old)") }
        return final
    }

    /// Checkpoint directory names of `run`, newest first (none when it has no checkpoint directory).
    static func list(run: String) -> [String] {
        let root = directory(run: run)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return names.filter { $0.hasPrefix("step-") }.sorted(by: >)
    }

    /// A checkpoint read back and verified.
    public struct Loaded {
        public let path: String
        public let position: TrainingPosition
        public let settings: JSON
        public let parameters: [String: SafeTensors.Tensor]
        public let optimizerState: [String: SafeTensors.Tensor]
    }

    /// The newest checkpoint of `run` that verifies; damaged ones are reported through
    /// `warn` and passed over. Throws if there is none.
    public static func latest(run: String, warn: (String) -> Void) throws -> Loaded {
        let names = list(run: run)
        guard !names.isEmpty else { throw RunError("\(directory(run: run)): no checkpoint to resume from") }
        for name in names {
            let path = "\(directory(run: run))/\(name)"
            do { return try load(path) } catch {
                // Moved aside (kept for a look, no longer counted among the newest two).
                let aside = "\(directory(run: run))/damaged-\(name)"
                let moved = rename(path, aside) == 0
                warn("checkpoint \(path) is unusable (\(error))\(moved ? ", moved to \(aside)" : ""); trying the one before it")
            }
        }
        throw RunError("\(directory(run: run)): every checkpoint is damaged (\(names.joined(separator: ", ")))")
    }

    /// Reads and verifies one checkpoint directory.
    public static func load(_ path: String) throws -> Loaded {
        guard let modelData = FileManager.default.contents(atPath: "\(path)/model.safetensors"),
              let optimizerData = FileManager.default.contents(atPath: "\(path)/optimizer.safetensors"),
              let stateData = FileManager.default.contents(atPath: "\(path)/state.json") else {
            throw RunError("a file is missing")
        }
        let state: JSON
        do { state = try JSON(parsing: stateData) } catch { throw RunError("state.json is not valid JSON") }
        guard let recorded = state["checksum"]?.string, recorded == checksum(of: state) else {
            throw RunError("state.json does not match its checksum")
        }
        guard state["model_hash"]?.string == hash(modelData) else { throw RunError("model.safetensors does not match its checksum") }
        guard state["optimizer_hash"]?.string == hash(optimizerData) else {
            throw RunError("optimizer.safetensors does not match its checksum")
        }
        guard let epoch = state["epoch"]?.number, let step = state["step"]?.number,
              let optimizerSteps = state["optimizer_steps"]?.number, state["world_size"]?.number != nil,
              let partial = state["partial_sums"]?.array?.compactMap(\.number), let settings = state["settings"],
              let history = state["history"]?.array else {
            throw RunError("state.json lacks the run's position")
        }
        var position = TrainingPosition(epoch: Int(epoch), step: Int(step), optimizerSteps: Int(optimizerSteps),
                                        skippedSteps: Int(state["skipped_steps"]?.number ?? 0), partialSums: partial,
                                        history: try history.map(EpochMetrics.init(json:)))
        position.skippedInEpoch = Int(state["skipped_in_epoch"]?.number ?? 0)
        position.stepsPerEpoch = Int(state["steps_per_epoch"]?.number ?? 0)
        return Loaded(path: path, position: position, settings: settings,
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

    static func stateJSON(position: TrainingPosition, settings: JSON, globalStep: Int, modelHash: String,
                          optimizerHash: String) -> JSON {
        .object([("format", 1), ("epoch", .number(Double(position.epoch))), ("step", .number(Double(position.step))),
                 ("global_step", .number(Double(globalStep))),
                 ("optimizer_steps", .number(Double(position.optimizerSteps))),
                 ("skipped_steps", .number(Double(position.skippedSteps))),
                 ("skipped_in_epoch", .number(Double(position.skippedInEpoch))),
                 ("steps_per_epoch", .number(Double(position.stepsPerEpoch))),
                 ("world_size", .number(Double(position.partialSums.count / 2))),
                 ("partial_sums", .array(position.partialSums.map { .number($0) })),
                 ("settings", settings),
                 ("history", .array(position.history.map(\.json))),
                 ("model_hash", .string(modelHash)), ("optimizer_hash", .string(optimizerHash))])
    }

    /// FNV-1a over the compact serialisation of everything but the checksum itself, keys
    /// sorted, so that the checksum does not depend on how a writer orders them.
    static func checksum(of state: JSON) -> String {
        func canonical(_ v: JSON) -> JSON {
            switch v {
            case .object(let pairs): return .object(pairs.filter { $0.0 != "checksum" }.sorted { $0.0 < $1.0 }.map { ($0.0, canonical($0.1)) })
            case .array(let items): return .array(items.map(canonical))
            default: return v
            }
        }
        return hash(Data(canonical(state).serialized().utf8))
    }

    static func appendingChecksum(_ state: JSON) -> JSON {
        guard case .object(let pairs) = state else { return state }
        return .object(pairs + [("checksum", .string(checksum(of: state)))])
    }

    static func hash(_ data: Data) -> String {
        String(format: "%016llx", data.withUnsafeBytes { fnv1a($0) })
    }

    /// Flushes a directory's entries (a rename is durable only once its directory is).
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
