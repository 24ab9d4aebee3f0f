import CohortBase
import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortTensor
import CohortTraining
import Foundation

/// Runs the timed steps of one configuration on every rank of `communicator`.
public enum BenchmarkRunner {
    /// The training split the steps read: `--dataset`'s, or synthetic images of the model's
    /// input shape (4 global batches of them).
    static func trainingData(settings: BenchSettings, model: ModelSpec) throws -> ImageDataset {
        guard settings.training.dataset != .synthetic else {
            return Synthetic.make(shape: model.syntheticShape, count: settings.training.batchSize * 4, seed: 0, split: 0)
        }
        return try settings.training.loadData(for: model).train
    }

    /// `--data-only`: samples/s of the loader alone over the timed steps of global batches,
    /// after the warm-up steps, with the settings' loader threads and augmentation.
    public static func loaderRate(settings: BenchSettings) throws -> Double {
        let data = try trainingData(settings: settings, model: try settings.modelSpec())
        let augmentation = settings.training.augment ? Augmentation.standard(channels: data.channels, seed: 0) : nil
        return try BatchLoader.samplesPerSecond(data: data, batch: settings.training.batchSize,
                                                threads: settings.training.loaderThreads, warmup: settings.warmup,
                                                steps: settings.steps, augmentation: augmentation)
    }

    /// Collective: every rank runs the same steps; the result is meaningful on rank 0.
    public static func run(settings: BenchSettings, communicator comm: Communicator) throws -> BenchMeasurement {
        let world = comm.size
        try settings.validate(worldSize: world)
        let model = try settings.modelSpec()
        let data = try trainingData(settings: settings, model: model)
        let shape = DataParallelRank.Shape(config: settings.training, model: model, sample: data.sampleFormat)
        let rank = try DataParallelRank(shape: shape, datasetSize: data.count, drawsSamples: data.windows != nil, seed: 0,
                                        communicator: comm) { network in
            OptimizerKind.adagrad.make(count: network.parameterCount, learningRate: 0.01)
        }
        rank.loaderThreads = settings.training.loaderThreads
        rank.clipGradNorm = settings.training.clipGradNorm.map(Float.init)
        if settings.training.augment { rank.augmentation = .standard(channels: data.channels, seed: 0) }
        try rank.broadcastParameters()
        let names = BenchMeasurement.phaseNames
        var phase = [Double](repeating: 0, count: names.count)
        var start = 0.0, timesBefore = rank.times
        let stepsPerEpoch = rank.sampler.stepsPerEpoch
        for step in 0..<(settings.warmup + settings.steps) {
            if step == settings.warmup {
                if let trace = settings.training.trace {
                    rank.timeline = try StepTimeline(directory: "\(trace)/ranks-\(world)", communicator: comm)
                }
                try comm.barrier()
                phase = phase.map { _ in 0 }
                timesBefore = rank.times
                start = monotonicSeconds()
            }
            if step % stepsPerEpoch == 0 { rank.startEpoch(step / stepsPerEpoch, data: data) }
            let t0 = monotonicSeconds()
            let (outcome, wait) = try rank.reduceGradients(step: step % stepsPerEpoch)
            let t2 = monotonicSeconds()
            rank.applyGradients()
            rank.timeline?.endStep()
            let t3 = monotonicSeconds()
            // Wall time of data, forward and backward, shared out in the proportions the first
            // replica's thread measured (all replicas run at once).
            let measured = outcome.data + outcome.forward + outcome.backward, wall = t2 - t0 - wait
            let share = measured > 0 ? wall / measured : 0
            phase[0] += outcome.data * share
            phase[1] += outcome.forward * share
            phase[2] += outcome.backward * share
            phase[3] += wait
            phase[4] += t3 - t2
        }
        let seconds = monotonicSeconds() - start
        try rank.timeline?.finish(communicator: comm)
        let meanPhases = try comm.allreduceSum(phase + [seconds]).map { $0 / Double(world) }
        let rankTimes = try rank.gatherTimes(since: timesBefore).enumerated().map { $0.element.timing(rank: $0.offset) }
        var measurement = BenchMeasurement(ranks: world, threadsPerRank: rank.threads, globalBatch: settings.training.batchSize,
                                steps: settings.steps, seconds: seconds,
                                phaseSeconds: Dictionary(uniqueKeysWithValues: zip(names, meanPhases)),
                                modelGflopPerSample: Double(rank.network.trainingFLOPsPerSample) / 1e9,
                                bucketBytes: rank.bucketBytes)
        measurement.rankTimes = rankTimes
        return measurement
    }

    /// Times allreduces on every rank and has rank 0 write them to `path`.
    public static func timeAllreduce(communicator: Communicator, writingTo path: String) throws {
        let timings = try timeAllreduce(communicator: communicator)
        guard communicator.rank == 0 else { return }
        try JSONFile.write(AllreduceTimings(ranks: communicator.size, timings: timings), to: path)
    }

    /// Times in-place allreduces of several sizes (the median of `repeats` after a warm-up),
    /// on every rank; the alpha-beta model is fitted to them.
    static func timeAllreduce(communicator comm: Communicator, sizes: [Int] = [4, 65_536, 1 << 20, 4 << 20],
                              repeats: Int = 15) throws -> [AllreduceTimings.Timing] {
        let buffer = FloatBuffer(count: (sizes.max() ?? 4) / 4)
        var result: [AllreduceTimings.Timing] = []
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
            result.append(.init(bytes: Double(count * 4), seconds: slowest))
        }
        return result
    }
}
