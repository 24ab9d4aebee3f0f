import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortTensor
import Foundation

/// What `cohort bench` measures: timed training steps of a model on synthetic data of
/// its input shape, the same loop as `cohort train` split into its phases.
public struct BenchSettings: Sendable {
    public var model: ModelKind = .cnn
    public var hidden = 128
    /// Multiplier of the CNN's filters (see `Models.make`).
    public var width = 1
    /// Global batch, split over the ranks as in training.
    public var batchSize = 64
    public var steps = 30
    public var warmupSteps = 5
    public var threads: Int?
    public var bucketMB: Double = 25
    public var overlap = true
    /// Replicas per rank (default: one per thread when they divide the rank's batch).
    public var replicas: Int?
    public var imageShape: [Int] { model.standardImageShape }

    public init() {}

    public func validate(worldSize: Int = 1) throws {
        guard batchSize > 0, hidden > 0, width > 0, steps > 0, warmupSteps >= 0 else {
            throw SettingsError("--batch-size, --hidden, --width and --steps must be positive, --warmup not negative")
        }
        if let t = threads, t <= 0 { throw SettingsError("--threads must be positive, got \(t)") }
        guard bucketMB.isFinite, bucketMB > 0 else { throw SettingsError("--bucket-mb must be positive, got \(bucketMB)") }
        try ThreadPlan.checkBatchSplit(batchSize: batchSize, worldSize: worldSize, replicas: replicas)
    }
}

/// One configuration's figures (rank 0 holds them after `BenchmarkRunner.run`).
public struct BenchMeasurement: Sendable {
    public var ranks: Int
    public var threadsPerRank: Int
    public var globalBatch: Int
    public var steps: Int
    public var seconds: Double
    /// Mean seconds per rank in each phase over the timed steps.
    public var phases: [(name: String, seconds: Double)]
    public var trainingFLOPsPerSample: Int
    /// Bytes of each gradient bucket (one allreduce each per step).
    public var bucketBytes: [Int] = []

    public var samplesPerSecond: Double { Double(steps * globalBatch) / seconds }
    public var effectiveGFLOPs: Double { Double(trainingFLOPsPerSample) * samplesPerSecond / 1e9 }

    /// Seconds per rank in the phase `name` over the timed steps (0 for a phase not measured).
    public func phaseSeconds(_ name: String) -> Double { phases.first { $0.name == name }?.seconds ?? 0 }

    /// Seconds per step of everything a rank does but wait for the allreduce: what the
    /// scaling model keeps and adds its predicted reduction to.
    public var computeSecondsPerStep: Double { (seconds - phaseSeconds("allreduce_wait")) / Double(steps) }

    public var json: JSON {
        let total = phases.reduce(0) { $0 + $1.seconds }
        return .object([
            ("ranks", .number(Double(ranks))), ("threads_per_rank", .number(Double(threadsPerRank))),
            ("global_batch", .number(Double(globalBatch))), ("steps", .number(Double(steps))),
            ("seconds", .number(seconds)), ("samples_per_s", .number(samplesPerSecond)),
            ("phase_seconds", .object(phases.map { ($0.name, .number($0.seconds)) })),
            ("phase_share", .object(phases.map { ($0.name, .number(total > 0 ? $0.seconds / total : 0)) })),
            ("model_gflop_per_sample", .number(Double(trainingFLOPsPerSample) / 1e9)),
            ("effective_gflops", .number(effectiveGFLOPs)),
            ("bucket_bytes", .array(bucketBytes.map { .number(Double($0)) })),
        ])
    }

    /// Reads what `json` wrote (a worker's result, or a configuration of bench.json).
    public init(json: JSON) throws {
        func count(_ key: String) -> Int? { json[key]?.number.flatMap { Int(exactly: $0) } }
        guard let ranks = count("ranks"), let threads = count("threads_per_rank"), let batch = count("global_batch"),
              let steps = count("steps"), let seconds = json["seconds"]?.number, let phases = json["phase_seconds"],
              let gflop = json["model_gflop_per_sample"]?.number else {
            throw RunError("benchmark result is missing fields")
        }
        self.ranks = ranks; threadsPerRank = threads; globalBatch = batch; self.steps = steps; self.seconds = seconds
        self.phases = BenchmarkRunner.phaseNames.map { ($0, phases[$0]?.number ?? 0) }
        trainingFLOPsPerSample = Int((gflop * 1e9).rounded())
        bucketBytes = json["bucket_bytes"]?.array?.compactMap { $0.number.flatMap { Int(exactly: $0) } } ?? []
    }

    init(ranks: Int, threadsPerRank: Int, globalBatch: Int, steps: Int, seconds: Double,
         phases: [(name: String, seconds: Double)], trainingFLOPsPerSample: Int) {
        self.ranks = ranks; self.threadsPerRank = threadsPerRank; self.globalBatch = globalBatch; self.steps = steps
        self.seconds = seconds; self.phases = phases; self.trainingFLOPsPerSample = trainingFLOPsPerSample
    }
}

/// Runs the timed steps on every rank of `communicator`.
public final class BenchmarkRunner {
    static let phaseNames = ["data", "forward", "backward", "allreduce_wait", "optimizer"]
    let settings: BenchSettings
    let communicator: Communicator

    public init(settings: BenchSettings, communicator: Communicator) {
        self.settings = settings
        self.communicator = communicator
    }

    /// Collective: every rank runs the same steps; the result is meaningful on rank 0.
    public func run() throws -> BenchMeasurement {
        let comm = communicator, world = comm.size
        try settings.validate(worldSize: world)
        let localBatch = settings.batchSize / world
        let plan = ThreadPlan(threads: settings.threads, replicas: settings.replicas, localBatch: localBatch,
                              ranksOnNode: comm.localSize)
        KernelThreads.set(plan.threadsPerReplica)
        let data = Synthetic.make(shape: settings.imageShape, count: settings.batchSize * 4, seed: 0, split: 0)
        let replicas = ReplicaGroup(model: settings.model, imageShape: settings.imageShape, hidden: settings.hidden,
                                    width: settings.width,
                                    classes: 10, localBatch: localBatch, replicas: plan.replicas)
        let network = replicas.primary
        network.initializeParameters(seed: 0)
        try comm.broadcast(network.parameters.pointer, count: network.parameterCount, root: 0)
        let optimizer = OptimizerKind.adagrad.make(count: network.parameterCount, learningRate: 0.01)
        var sampler = EpochSampler(datasetSize: data.count, globalBatch: settings.batchSize, rank: comm.rank,
                                   worldSize: world, seed: 0)
        let reducer = GradientReducer(network: network, communicator: comm,
                                      bucketBytes: Int(settings.bucketMB * 1_048_576), overlap: settings.overlap)
        let layerFinished = reducer.layerFinished
        var phase = [Double](repeating: 0, count: Self.phaseNames.count)
        var start = 0.0
        for step in 0..<(settings.warmupSteps + settings.steps) {
            if step == settings.warmupSteps {
                try comm.barrier()
                phase = phase.map { _ in 0 }
                start = monotonicSeconds()
            }
            if step % sampler.stepsPerEpoch == 0 { sampler.startEpoch(step / sampler.stepsPerEpoch) }
            // Data, forward and backward as the first replica's thread saw them (all replicas run at once).
            let t0 = monotonicSeconds()
            let result = try replicas.step(data: data, indices: sampler.indices(step: step % sampler.stepsPerEpoch),
                                           scale: 1 / Float(settings.batchSize), gradientsReady: layerFinished)
            let t1 = monotonicSeconds()
            _ = try reducer.finish()
            let t2 = monotonicSeconds()
            optimizer.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
            let t3 = monotonicSeconds()
            // Wall time of the step, shared out over data/forward/backward in the proportions measured.
            let measured = result.data + result.forward + result.backward, wall = t1 - t0
            let share = measured > 0 ? wall / measured : 0
            phase[0] += result.data * share
            phase[1] += result.forward * share
            phase[2] += result.backward * share
            phase[3] += t2 - t1
            phase[4] += t3 - t2
        }
        let seconds = monotonicSeconds() - start
        let meanPhases = try comm.allreduceSum(phase + [seconds]).map { $0 / Double(world) }
        var measurement = BenchMeasurement(ranks: world, threadsPerRank: plan.threads, globalBatch: settings.batchSize,
                                           steps: settings.steps, seconds: seconds,
                                           phases: zip(Self.phaseNames, meanPhases).map { ($0, $1) },
                                           trainingFLOPsPerSample: network.trainingFLOPsPerSample)
        measurement.bucketBytes = reducer.bucketBytes
        return measurement
    }

    /// Times allreduces on every rank and has rank 0 write them to `path`, as `readAllreduceTimings` reads them.
    public static func timeAllreduce(communicator: Communicator, writingTo path: String) throws {
        let timings = try timeAllreduce(communicator: communicator)
        guard communicator.rank == 0 else { return }
        let json: JSON = .object([("ranks", .number(Double(communicator.size))), ("timings", .array(timings.map {
            .object([("bytes", .number($0.bytes)), ("seconds", .number($0.seconds))])
        }))])
        try writeAtomically(json.serialized(pretty: true) + "\n", to: path)
    }

    static func readAllreduceTimings(_ path: String) throws -> [(bytes: Double, seconds: Double)] {
        guard let json = try? JSON(contentsOfFile: path), let items = json["timings"]?.array else {
            throw RunError("\(path): no allreduce timings")
        }
        return items.compactMap { item in
            guard let b = item["bytes"]?.number, let s = item["seconds"]?.number else { return nil }
            return (b, s)
        }
    }

    /// Times in-place allreduces of several sizes (the median of `repeats` after a warm-up),
    /// on every rank; the alpha-beta model is fitted to them.
    static func timeAllreduce(communicator comm: Communicator, sizes: [Int] = [4, 65_536, 1 << 20, 4 << 20],
                              repeats: Int = 15) throws -> [(bytes: Double, seconds: Double)] {
        let buffer = FloatBuffer(count: (sizes.max() ?? 4) / 4)
        var result: [(Double, Double)] = []
        for bytes in sizes {
            let count = max(1, bytes / 4)
            var times: [Double] = []
            for i in 0..<(repeats + 3) {
                try comm.barrier()
                let t0 = monotonicSeconds()
                try comm.allreduceSum(buffer.pointer, count: count)
                if i >= 3 { times.append(monotonicSeconds() - t0) }
            }
            // Rank 0's view, agreed on: the slowest rank's median (every rank waits for it).
            let median = times.sorted()[times.count / 2]
            let slowest = try comm.allreduceSum((0..<comm.size).map { $0 == comm.rank ? median : 0 }).max() ?? median
            result.append((Double(count * 4), slowest))
        }
        return result
    }
}
