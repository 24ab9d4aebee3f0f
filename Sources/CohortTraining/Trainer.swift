import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortReporting
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

    @discardableResult
    public func run() throws -> RunSummary {
        let comm = communicator
        let world = comm.size, isRoot = comm.rank == 0
        try config.validate(worldSize: world)
        let globalBatch = config.batchSize, localBatch = globalBatch / world
        // Replicas each run on one of the rank's threads; their kernels get what is left per replica.
        let plan = ThreadPlan(threads: config.threads, replicas: config.replicas, localBatch: localBatch,
                              ranksOnNode: comm.localSize)
        KernelThreads.set(plan.threadsPerReplica)

        let data = try config.loadData()
        let train = data.train, test = data.test
        let replicas = ReplicaGroup(model: config.model, imageShape: train.imageShape, hidden: config.hidden, width: config.width,
                                    classes: train.classes, localBatch: localBatch, replicas: plan.replicas)
        let network = replicas.primary
        network.initializeParameters(seed: config.seed)
        let optimizer = config.optimizer.make(count: network.parameterCount, learningRate: Float(config.learningRate),
                                              momentum: Float(config.momentum), nesterov: config.nesterov,
                                              weightDecay: config.weightDecay.map(Float.init))
        var sampler = EpochSampler(datasetSize: train.count, globalBatch: globalBatch, rank: comm.rank,
                                   worldSize: world, seed: config.seed)
        let steps = sampler.stepsPerEpoch
        let reducer = GradientReducer(network: network, communicator: comm,
                                      bucketBytes: Int(config.bucketMB * 1_048_576), overlap: config.overlap)
        let layerFinished = reducer.layerFinished  // made once: a step allocates nothing
        let progress = ProgressReporter(epochs: config.epochs, enabled: showProgress, isRoot: isRoot)

        // Rank 0 owns the run directory: it checks that the directory may be (re)used and,
        // with --resume, reads the newest good checkpoint. Every rank then starts from rank 0's state.
        var runDirectory: RunDirectory?
        var loaded: Checkpoint.Loaded?
        if isRoot {
            let directory: RunDirectory
            do {
                directory = try RunDirectory(path: config.outputDirectory, settings: config.settingsJSON, resume: config.resume)
                if config.resume {
                    loaded = try Checkpoint.latest(run: directory.path) { progress.notice("cohort: \($0)") }
                    try loaded.map { try restore($0, network: network, optimizer: optimizer, stepsPerEpoch: steps) }
                }
            } catch let error as RunError {
                throw RunRefused(error.description)
            }
            try directory.writeConfig(config.json(worldSize: world, plan: plan))
            runDirectory = directory
        }
        // Ranks start identical whatever they computed: rank 0's parameters (and optimizer state) win.
        try comm.broadcast(network.parameters.pointer, count: network.parameterCount, root: 0)
        var position = try shareResumePosition(loaded)
        position.stepsPerEpoch = steps  // a resumed checkpoint's equals it (`restore` checked)
        if config.resume {
            for (_, buffer) in optimizer.stateTensors { try comm.broadcast(buffer.pointer, count: network.parameterCount, root: 0) }
            optimizer.stepCount = position.optimizerSteps
        }
        let modelMetadata = [("format", "pt"), ("model", config.model.rawValue), ("dataset", config.dataset.rawValue)]
        if config.saveInitial && !config.resume {
            try runDirectory?.writeModel(network, metadata: modelMetadata, name: "initial.safetensors")
        }
        progress.line("cohort: \(config.model.rawValue) on \(config.dataset.rawValue) (\(train.count) train, "
                      + "\(test.count) test), \(world) rank(s) x \(plan.threads) thread(s)"
                      + (plan.replicas > 1 ? " in \(plan.replicas) replicas" : "") + ", batch \(globalBatch), "
                      + "\(config.optimizer.rawValue) lr \(config.learningRate), \(config.epochs) epoch(s), "
                      + "\(network.parameterCount) parameters -> \(config.outputDirectory)")
        if let loaded {
            progress.line("cohort: resumed from \(loaded.path) (epoch \(position.epoch + 1), step \(position.step) of \(steps))")
        }

        // TensorBoard scalars per epoch, beside metrics.csv (a resumed run adds its own file).
        let tensorBoard = try runDirectory.map { directory -> TensorBoardWriter in
            do { return try TensorBoardWriter(directory: directory.path) } catch {
                throw RunError("\(directory.path): cannot create the TensorBoard event file (\(error.localizedDescription))")
            }
        }
        let stop = StopRequest.install()
        // Fault injection for the tests of the drift check: COHORT_FAULT_DRIFT=RANK:STEP makes
        // rank RANK nudge one parameter after global step STEP, as a bit flip would.
        let drift = ProcessInfo.processInfo.environment["COHORT_FAULT_DRIFT"].flatMap { spec -> (rank: Int, step: Int)? in
            let parts = spec.split(separator: ":").compactMap { Int($0) }
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        // Per step, every rank adds [stop requested, non-finite values seen] to this and acts on the sums.
        let stepFlags = FloatBuffer(count: 2)
        let runStart = monotonicSeconds()
        let scale = 1 / Float(globalBatch)
        /// Rank 0 writes where the run stands (collective: every rank's partial sums are gathered).
        func checkpoint(epoch: Int, step: Int, lossSum: Double, correct: Int, skipped: Int) throws -> String? {
            var slots = [Double](repeating: 0, count: 2 * world)
            slots[2 * comm.rank] = lossSum
            slots[2 * comm.rank + 1] = Double(correct)
            position.partialSums = try comm.allreduceSum(slots)
            position.epoch = epoch; position.step = step; position.optimizerSteps = optimizer.stepCount
            position.skippedInEpoch = skipped
            guard let runDirectory else { return nil }
            return try Checkpoint.write(run: runDirectory.path, network: network, optimizer: optimizer, position: position,
                                        settings: config.settingsJSON)
        }

        // Where this process starts (checkpoints move `position` on as the run goes).
        let (startEpoch, startStep) = (position.epoch, position.step)
        let startGlobalStep = startEpoch * steps + startStep
        for epoch in startEpoch..<config.epochs {
            sampler.startEpoch(epoch)
            let firstStep = epoch == startEpoch ? startStep : 0
            // A resumed epoch continues this rank's sums (or, on another world size, rank 0 carries the total).
            var lossSum = 0.0, correct = 0, commSeconds = 0.0, skippedInEpoch = 0
            if firstStep > 0 {
                (lossSum, correct) = resumedSums(position.partialSums, rank: comm.rank, world: world)
                skippedInEpoch = position.skippedInEpoch
            }
            let start = monotonicSeconds()
            for step in firstStep..<steps {
                let result = try replicas.step(data: train, indices: sampler.indices(step: step), scale: scale,
                                               gradientsReady: layerFinished)
                commSeconds += try reducer.finish()
                stepFlags.pointer[0] = stop.isRequested ? 1 : 0
                stepFlags.pointer[1] = result.lossSum.isFinite && allFinite(network.gradients) ? 0 : 1
                try comm.allreduceSum(stepFlags.pointer, count: 2)
                if stepFlags.pointer[1] > 0 {
                    guard config.onNonFinite == .skip else {
                        // Only rank 0 holds the run directory (other nodes may not see it).
                        let lastGood = runDirectory.map { run in
                            Checkpoint.list(run: run.path).first.map { "its last good checkpoint is \(Checkpoint.directory(run: run.path))/\($0)" }
                                ?? "before its first checkpoint"
                        } ?? "rank 0 names its last good checkpoint"
                        throw TrainingStopped("non-finite loss or gradients at epoch \(epoch + 1), step \(step + 1) "
                                              + "(lr \(config.learningRate)); the run stops here, \(lastGood)"
                                              + " (--on-nan skip would skip such steps)")
                    }
                    position.skippedSteps += 1
                    skippedInEpoch += 1
                    progress.notice("cohort: skipped epoch \(epoch + 1), step \(step + 1): non-finite loss or gradients")
                } else {
                    optimizer.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
                    lossSum += result.lossSum
                    correct += result.correct
                }
                let globalStep = epoch * steps + step + 1
                if let drift, drift.rank == comm.rank, drift.step == globalStep { network.parameters.pointer[0] += 1e-3 }
                if config.checkEvery > 0 && globalStep % config.checkEvery == 0 {
                    _ = try checkRanksAgree(network, at: "epoch \(epoch + 1), step \(step + 1)")
                }
                if stepFlags.pointer[0] > 0 {
                    let path = try checkpoint(epoch: epoch, step: step + 1, lossSum: lossSum, correct: correct,
                                              skipped: skippedInEpoch)
                    progress.notice("cohort: stopped by a signal at epoch \(epoch + 1), step \(step + 1); checkpoint "
                                  + "\(path ?? "written by rank 0"); continue with --resume \(config.outputDirectory)")
                    return RunSummary(epochs: position.history, worldSize: world)
                }
                if let k = config.checkpointSteps, globalStep % k == 0, step + 1 < steps {
                    _ = try checkpoint(epoch: epoch, step: step + 1, lossSum: lossSum, correct: correct, skipped: skippedInEpoch)
                }
                if isRoot {
                    let elapsed = monotonicSeconds() - start, done = step + 1 - firstStep
                    progress.step(epoch: epoch + 1, step: step + 1, of: steps,
                                  samplesPerSecond: Double(done * globalBatch) / max(elapsed, 1e-9),
                                  loss: lossSum / Double(max(1, step + 1 - skippedInEpoch) * localBatch),
                                  elapsedInRun: monotonicSeconds() - runStart,
                                  totalSteps: steps * config.epochs - startGlobalStep, stepsDone: globalStep - startGlobalStep)
                }
            }
            let seconds = monotonicSeconds() - start
            let totals = try comm.allreduceSum([lossSum, Double(correct)])
            let samples = Double((steps - skippedInEpoch) * globalBatch)
            if isRoot, let runDirectory {
                let evalStart = monotonicSeconds()
                let (testLoss, testAccuracy) = replicas.evaluate(on: test)
                let timed = Double((steps - firstStep) * globalBatch)
                let metrics = EpochMetrics(epoch: epoch + 1, trainLoss: totals[0] / samples, trainAccuracy: totals[1] / samples,
                                           testLoss: testLoss, testAccuracy: testAccuracy, seconds: seconds,
                                           samplesPerSecond: timed / seconds, commSeconds: commSeconds,
                                           evalSeconds: monotonicSeconds() - evalStart, worldSize: world)
                position.history.append(metrics)
                try tensorBoard?.add(step: epoch + 1, scalars: [
                    ("loss/train", metrics.trainLoss), ("loss/test", metrics.testLoss),
                    ("accuracy/train", metrics.trainAccuracy), ("accuracy/test", metrics.testAccuracy),
                    ("throughput/samples_per_s", metrics.samplesPerSecond), ("lr", config.learningRate),
                ])
                try runDirectory.writeEpochs(position.history, title: "\(config.model.rawValue) on \(config.dataset.rawValue)")
                progress.line(String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  "
                                     + "%.1f s  %.0f samples/s", epoch + 1, config.epochs, metrics.trainLoss,
                                     100 * metrics.trainAccuracy, testLoss, 100 * testAccuracy, seconds,
                                     metrics.samplesPerSecond))
            }
            _ = try checkpoint(epoch: epoch + 1, step: 0, lossSum: 0, correct: 0, skipped: 0)
        }
        var summary = RunSummary(epochs: position.history, worldSize: world)
        summary.parameterChecksum = try checkRanksAgree(network, at: "the end of the run")
        summary.skippedSteps = position.skippedSteps
        if isRoot, let runDirectory {
            try runDirectory.writeModel(network, metadata: modelMetadata)
            try runDirectory.writeSummary(summary)
            progress.line(String(format: "best test accuracy %.2f%%, %.0f samples/s; run directory: %@",
                                 100 * summary.bestTestAccuracy, summary.samplesPerSecond, runDirectory.path))
        }
        return summary
    }

    /// A checkpoint continues this run only if it was made with the same settings, and
    /// holds every tensor of this model and optimizer in its shape; rank 0 then takes its
    /// parameters and optimizer state (every rank gets them by broadcast).
    func restore(_ loaded: Checkpoint.Loaded, network: Network, optimizer: Optimizer, stepsPerEpoch: Int) throws {
        guard loaded.position.stepsPerEpoch == stepsPerEpoch else {
            throw RunError("\(loaded.path) has \(loaded.position.stepsPerEpoch) steps per epoch, this run's data gives "
                           + "\(stepsPerEpoch): not the same training set")
        }
        guard loaded.settings == config.settingsJSON else {
            throw RunError("\(loaded.path) was made with other settings (\(loaded.settings.serialized())) than this run "
                           + "(\(config.settingsJSON.serialized()))")
        }
        let p = loaded.position
        guard p.epoch < config.epochs || (p.epoch == config.epochs && p.step == 0) else {
            throw RunError("\(loaded.path) is at epoch \(p.epoch + 1), step \(p.step): past --epochs \(config.epochs)")
        }
        for (name, _) in optimizer.stateTensors where loaded.optimizerState[name]?.values.count != network.parameterCount {
            throw RunError("\(loaded.path): no optimizer state \(name) for \(network.parameterCount) parameters")
        }
        // Checked: now the copies (`assign` still refuses a tensor of another name or shape).
        try SafeTensors.assign(loaded.parameters, to: network, source: loaded.path)
        for (name, buffer) in optimizer.stateTensors {
            buffer.pointer.update(from: loaded.optimizerState[name]!.values, count: network.parameterCount)
        }
    }

    /// Rank 0's resume position, given to every rank (a fresh run starts at epoch 0, step 0).
    /// Doubles travel through a sum to which the other ranks add zeros: exact.
    func shareResumePosition(_ loaded: Checkpoint.Loaded?) throws -> TrainingPosition {
        let comm = communicator
        guard config.resume else {
            return TrainingPosition(epoch: 0, step: 0, optimizerSteps: 0, skippedSteps: 0, partialSums: [], history: [])
        }
        // [epoch, step, optimizer steps, skipped steps, skipped in epoch, partial sums...]
        let length = try comm.allreduceSum([Double(loaded?.position.partialSums.count ?? 0)])[0]
        var values = [Double](repeating: 0, count: 5 + Int(length))
        if let p = loaded?.position {
            values[0] = Double(p.epoch); values[1] = Double(p.step)
            values[2] = Double(p.optimizerSteps); values[3] = Double(p.skippedSteps)
            values[4] = Double(p.skippedInEpoch)
            for (i, v) in p.partialSums.enumerated() { values[5 + i] = v }
        }
        let shared = try comm.allreduceSum(values)
        var position = TrainingPosition(epoch: Int(shared[0]), step: Int(shared[1]), optimizerSteps: Int(shared[2]),
                                        skippedSteps: Int(shared[3]), partialSums: Array(shared[5...]),
                                        history: loaded?.position.history ?? [])
        position.skippedInEpoch = Int(shared[4])
        return position
    }

    /// This rank's share of a resumed epoch's sums: its own on the same world size, else
    /// rank 0 carries the total (the figures then differ only in float rounding).
    func resumedSums(_ sums: [Double], rank: Int, world: Int) -> (Double, Int) {
        if sums.count == 2 * world { return (sums[2 * rank], Int(sums[2 * rank + 1])) }
        guard rank == 0 else { return (0, 0) }
        let loss = stride(from: 0, to: sums.count, by: 2).map { sums[$0] }.reduce(0, +)
        let correct = stride(from: 1, to: sums.count, by: 2).map { sums[$0] }.reduce(0, +)
        return (loss, Int(correct))
    }

    /// Ranks that hold different parameters have drifted apart (a bug, or a bit flip).
    /// Returns the checksum they agree on.
    func checkRanksAgree(_ network: Network, at moment: String) throws -> UInt64 {
        let checksums = try parameterChecksums(network)
        guard Set(checksums).count == 1 else {
            let odd = checksums.indices.filter { checksums[$0] != checksums[0] }
            throw TrainingStopped("ranks drifted apart at \(moment): the parameters of rank(s) "
                                  + "\(odd.map(String.init).joined(separator: ", ")) differ from rank 0's "
                                  + "(checksums \(checksums.map { String($0, radix: 16) }.joined(separator: " ")))")
        }
        return checksums[0]
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

/// Whether every value of `buffer` is finite: no exponent field of all ones (NaN, infinity).
/// Integer tests, so the loop vectorises.
func allFinite(_ buffer: FloatBuffer) -> Bool {
    let bits = UnsafeRawPointer(buffer.pointer).assumingMemoryBound(to: UInt32.self)
    var bad: UInt32 = 0
    for i in 0..<buffer.count { bad |= (bits[i] & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
    return bad == 0
}

/// SIGINT and SIGTERM turned into a request to stop at the next step boundary (a second
/// signal of the same kind then ends the process at once, as usual).
struct StopRequest {
    var isRequested: Bool { stopSignalFlag.pointee != 0 }

    static func install() -> StopRequest {
        stopSignalFlag.pointee = 0  // touches the global before any handler may read it
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                stopSignalFlag.pointee = 1
                signal(received, SIG_DFL)
            }
        }
        return StopRequest()
    }
}

/// Written only by the signal handler (one aligned word); read at step boundaries.
nonisolated(unsafe) let stopSignalFlag: UnsafeMutablePointer<sig_atomic_t> = {
    let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// A run that rank 0 will not start: its directory holds another run, or its checkpoints do
/// not fit. Nothing a restart would change.
public struct RunRefused: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A run ended on purpose by a condition every rank sees at the same step (non-finite
/// values, drifted ranks): each rank reports it and they exit together.
public struct TrainingStopped: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
