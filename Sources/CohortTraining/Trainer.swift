import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortTensor
import Foundation

/// The data-parallel training loop. One batch flows one way:
/// sampler -> bytes normalised into `x` -> forward -> softmax cross-entropy (÷ global B)
/// -> backward -> allreduce of the gradients -> optimizer step -> metrics.
/// Rank 0 evaluates on the test set and writes the run directory.
public final class Trainer {
    public let config: TrainingConfig
    let communicator: Communicator
    /// Print progress (rank 0 only).
    let showProgress: Bool

    public init(config: TrainingConfig, communicator: Communicator, showProgress: Bool = true) {
        self.config = config
        self.communicator = communicator
        self.showProgress = showProgress
    }

    /// Loads the data and checks that the model fits it, before anything is written.
    func loadData() throws -> DatasetSplits {
        var data = try DatasetSource.load(config.dataset, dataDirectory: config.dataDirectory, seed: config.seed,
                                          syntheticShape: config.syntheticShape,
                                          syntheticCounts: (config.limit ?? 10_000, config.testLimit ?? 2_000))
        if let l = config.limit { data.train = data.train.prefix(l) }
        if let l = config.testLimit { data.test = data.test.prefix(l) }
        let train = data.train
        if config.model.isRecurrent && train.channels != 1 {
            throw RunError("--model \(config.model.rawValue) reads the rows of one-channel images; "
                           + "\(config.dataset.rawValue) has \(train.channels) channels")
        }
        if config.model == .cnn && (train.height < 4 || train.width < 4 || train.height != train.width) {
            throw RunError("--model cnn needs square images of at least 4x4; \(config.dataset.rawValue) has "
                           + "\(train.height)x\(train.width)")
        }
        guard train.count >= config.batchSize else {
            throw RunError("--batch-size \(config.batchSize) is larger than the \(train.count) training samples")
        }
        return data
    }

    @discardableResult
    public func run() throws -> RunSummary {
        let comm = communicator
        let world = comm.size, isRoot = comm.rank == 0
        try config.validate(worldSize: world)
        let globalBatch = config.batchSize, localBatch = globalBatch / world
        // Replicas each run on one of the rank's threads; BLAS gets what is left per replica.
        let plan = ThreadPlan(threads: config.threads, replicas: config.replicas, localBatch: localBatch,
                              ranksOnNode: comm.localSize)
        BLASThreads.set(plan.blasThreads)

        let data = try loadData()
        let train = data.train, test = data.test
        let replicas = ReplicaGroup(model: config.model, imageShape: train.imageShape, hidden: config.hidden,
                                    classes: train.classes, localBatch: localBatch, replicas: plan.replicas)
        let network = replicas.primary
        network.initializeParameters(seed: config.seed)
        // Ranks start identical whatever they computed: rank 0's parameters win.
        try comm.broadcast(network.parameters.pointer, count: network.parameterCount, root: 0)
        let optimizer = config.optimizer.make(count: network.parameterCount, learningRate: Float(config.learningRate),
                                              momentum: Float(config.momentum), nesterov: config.nesterov,
                                              weightDecay: config.weightDecay.map(Float.init))
        var sampler = EpochSampler(datasetSize: train.count, globalBatch: globalBatch, rank: comm.rank,
                                   worldSize: world, seed: config.seed)
        let steps = sampler.stepsPerEpoch
        let reducer = GradientReducer(network: network, communicator: comm,
                                      bucketBytes: Int(config.bucketMB * 1_048_576), overlap: config.overlap)
        let layerFinished = reducer.layerFinished  // made once: a step allocates nothing

        let runDirectory = isRoot ? try RunDirectory(path: config.outputDirectory) : nil
        try runDirectory?.writeConfig(config.json(worldSize: world, plan: plan))
        let modelMetadata = [("format", "pt"), ("model", config.model.rawValue), ("dataset", config.dataset.rawValue)]
        if config.saveInitial { try runDirectory?.writeModel(network, metadata: modelMetadata, name: "initial.safetensors") }
        let progress = ProgressReporter(epochs: config.epochs, enabled: showProgress && isRoot)
        progress.line("cohort: \(config.model.rawValue) on \(config.dataset.rawValue) (\(train.count) train, "
                      + "\(test.count) test), \(world) rank(s) x \(plan.threads) thread(s)"
                      + (plan.replicas > 1 ? " in \(plan.replicas) replicas" : "") + ", batch \(globalBatch), "
                      + "\(config.optimizer.rawValue) lr \(config.learningRate), \(config.epochs) epoch(s), "
                      + "\(network.parameterCount) parameters -> \(config.outputDirectory)")

        var history: [EpochMetrics] = []
        let runStart = monotonicSeconds()
        let scale = 1 / Float(globalBatch)
        for epoch in 1...config.epochs {
            sampler.startEpoch(epoch - 1)
            var lossSum = 0.0, correct = 0, commSeconds = 0.0
            let start = monotonicSeconds()
            for step in 0..<steps {
                let result = try replicas.step(data: train, indices: sampler.indices(step: step), scale: scale,
                                               gradientsReady: layerFinished)
                commSeconds += try reducer.finish()
                optimizer.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
                lossSum += result.lossSum
                correct += result.correct
                if isRoot {
                    let elapsed = monotonicSeconds() - start
                    progress.step(epoch: epoch, step: step + 1, of: steps,
                                  samplesPerSecond: Double((step + 1) * globalBatch) / max(elapsed, 1e-9),
                                  loss: lossSum / Double((step + 1) * localBatch),
                                  elapsedInRun: monotonicSeconds() - runStart,
                                  totalSteps: steps * config.epochs, stepsDone: (epoch - 1) * steps + step + 1)
                }
            }
            let seconds = monotonicSeconds() - start
            let totals = try comm.allreduceSum([lossSum, Double(correct)])
            let samples = Double(steps * globalBatch)
            guard isRoot, let runDirectory else { continue }

            let evalStart = monotonicSeconds()
            let (testLoss, testAccuracy) = replicas.evaluate(on: test)
            let metrics = EpochMetrics(epoch: epoch, trainLoss: totals[0] / samples, trainAccuracy: totals[1] / samples,
                                       testLoss: testLoss, testAccuracy: testAccuracy, seconds: seconds,
                                       samplesPerSecond: samples / seconds, commSeconds: commSeconds,
                                       evalSeconds: monotonicSeconds() - evalStart, worldSize: world)
            history.append(metrics)
            try runDirectory.writeEpochs(history, title: "\(config.model.rawValue) on \(config.dataset.rawValue)")
            progress.line(String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  "
                                 + "%.1f s  %.0f samples/s", epoch, config.epochs, metrics.trainLoss,
                                 100 * metrics.trainAccuracy, testLoss, 100 * testAccuracy, seconds,
                                 metrics.samplesPerSecond))
        }
        let checksums = try parameterChecksums(network)
        guard Set(checksums).count == 1 else {
            throw RunError("ranks ended with different parameters (checksums \(checksums.map { String($0, radix: 16) }))")
        }
        var summary = RunSummary(epochs: history, worldSize: world)
        summary.parameterChecksum = checksums[0]
        if isRoot, let runDirectory {
            try runDirectory.writeModel(network, metadata: modelMetadata)
            try runDirectory.writeSummary(summary)
            progress.line(String(format: "best test accuracy %.2f%%, %.0f samples/s; run directory: %@",
                                 100 * summary.bestTestAccuracy, summary.samplesPerSecond, runDirectory.path))
        }
        return summary
    }

    /// Every rank's checksum of its parameters, in rank order, known to all ranks.
    func parameterChecksums(_ network: Network) throws -> [UInt64] {
        let mine = fnv1a(UnsafeRawBufferPointer(start: network.parameters.pointer, count: network.parameterCount * 4))
        // Each rank fills its own slot with the two 32-bit halves (exact in a double); the sum gathers them.
        var slots = [Double](repeating: 0, count: 2 * communicator.size)
        slots[2 * communicator.rank] = Double(mine >> 32)
        slots[2 * communicator.rank + 1] = Double(mine & 0xFFFF_FFFF)
        let all = try communicator.allreduceSum(slots)
        return (0..<communicator.size).map { UInt64(all[2 * $0]) << 32 | UInt64(all[2 * $0 + 1]) }
    }
}
