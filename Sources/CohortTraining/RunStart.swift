import CohortBase
import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortReporting
import CohortRun
import Foundation

/// How a run starts on every rank. Rank 0 owns the run directory: it checks that the
/// directory may be (re)used and, resuming, reads the newest good checkpoint; every rank
/// then starts from rank 0's parameters, optimizer state and position.
struct RunStart {
    var directory: RunDirectory?
    var tensorBoard: TensorBoardWriter?
    var position: TrainingPosition
    /// The checkpoint the run continues, if any.
    var resumedFrom: String?

    /// Collective.
    init(config: TrainingConfig, resume: Bool, rank: DataParallelRank, data: DatasetSplits, progress: ProgressReporter) throws {
        let communicator = rank.communicator, network = rank.network, optimizer = rank.optimizer
        let steps = rank.sampler.stepsPerEpoch
        var loaded: Checkpoint.Loaded?
        if communicator.rank == 0 {
            do {
                let directory = try RunDirectory(path: config.out, settings: config.definingSettings, resume: resume)
                if resume {
                    loaded = try Checkpoint.latest(run: directory.path) { progress.notice("cohort: \($0)") }
                    try loaded.map { try Self.restore($0, config: config, network: network, optimizer: optimizer,
                                                      stepsPerEpoch: steps) }
                }
                self.directory = directory
            } catch let error as CohortError where error.kind == .failure {
                throw CohortError.refused(error.description)
            }
            try directory?.writeRecord(RunRecord(config: config, worldSize: communicator.size,
                                                 threadsPerRank: rank.threads, replicasPerRank: rank.replicaCount))
            try directory?.writeModelFile(rank.shape.model.file)
            if !resume { try directory?.writeData(DataRecord(dataset: config.dataset, data: data)) }
        }
        try rank.broadcastParameters()
        position = try Self.sharePosition(loaded, resume: resume, communicator: communicator)
        position.stepsPerEpoch = steps  // a resumed checkpoint's equals it (`restore` checked)
        if resume {
            for (_, buffer) in optimizer.stateTensors {
                try communicator.broadcast(buffer.pointer, count: network.parameterCount, root: 0)
            }
            optimizer.stepCount = position.optimizerSteps
        }
        resumedFrom = loaded?.path
        if let loaded, !loaded.execution.givesTheSameBits(as: rank.execution) {
            progress.notice("cohort: \(loaded.path) was made with \(loaded.execution.description), this run has "
                            + "\(rank.execution.description): it continues the same training up to float rounding, "
                            + "not bit for bit")
        }
        let schedule = config.schedule(stepsPerEpoch: steps)
        tensorBoard = try directory.map { try Self.eventFile(in: $0, history: position.history, schedule: schedule) }
    }

    /// TensorBoard scalars per epoch, beside metrics.csv, and the learning rate per step: a new
    /// event file holding the epochs the run has finished, in place of the files of earlier
    /// starts, so that a step written before a crash and written again after the resume
    /// appears once.
    static func eventFile(in directory: RunDirectory, history: [EpochMetrics], schedule: LearningRateSchedule) throws
        -> TensorBoardWriter {
        let files = FileManager.default
        for name in (try? files.contentsOfDirectory(atPath: directory.path)) ?? []
            where name.hasPrefix(TensorBoardWriter.filePrefix) {
            try? files.removeItem(atPath: directory.file(name))
        }
        do {
            let writer = try TensorBoardWriter(directory: directory.path)
            for metrics in history {
                try writer.add(events: learningRateEvents(epoch: metrics.epoch - 1, schedule: schedule))
                try writer.add(step: metrics.epoch, scalars: metrics.tensorBoardScalars)
            }
            return writer
        } catch {
            throw CohortError.failure("\(directory.path): cannot write the TensorBoard event file (\(error.localizedDescription))")
        }
    }

    /// TensorBoard's `lr/step` for every step of `epoch` (0-based), at global steps counted from 1.
    static func learningRateEvents(epoch: Int, schedule: LearningRateSchedule) -> [(step: Int, scalars: [(String, Double)])] {
        let first = epoch * schedule.stepsPerEpoch
        return (first..<min(first + schedule.stepsPerEpoch, schedule.totalSteps)).map { (step: $0 + 1, scalars: [("lr/step", schedule.rate(atStep: $0))]) }
    }

    /// A checkpoint continues this run only if it was made with the same settings, and holds
    /// every tensor of this model and optimizer in its shape; rank 0 then takes its parameters
    /// and optimizer state (every rank gets them by broadcast).
    static func restore(_ loaded: Checkpoint.Loaded, config: TrainingConfig, network: Network, optimizer: Optimizer,
                        stepsPerEpoch: Int) throws {
        guard loaded.position.stepsPerEpoch == stepsPerEpoch else {
            throw CohortError.failure("\(loaded.path) has \(loaded.position.stepsPerEpoch) steps per epoch, this run's data "
                                      + "gives \(stepsPerEpoch): not the same training set")
        }
        guard TrainingConfig.definingSettings(recorded: loaded.settings) == config.definingSettings else {
            throw CohortError.failure("\(loaded.path) was made with other settings (\(loaded.settings)) than this run "
                                      + "(\(config.definingSettings))")
        }
        let p = loaded.position
        guard p.epoch >= 0, p.step >= 0, p.step < stepsPerEpoch,
              p.epoch < config.epochs || (p.epoch == config.epochs && p.step == 0) else {
            throw CohortError.failure("\(loaded.path) is at epoch \(p.epoch + 1), step \(p.step): past --epochs \(config.epochs)")
        }
        for (name, _) in optimizer.stateTensors where loaded.optimizerState[name]?.values.count != network.parameterCount {
            throw CohortError.failure("\(loaded.path): no optimizer state \(name) for \(network.parameterCount) parameters")
        }
        // Checked: now the copies (`assign` still refuses a tensor of another name or shape).
        try SafeTensors.assign(loaded.parameters, to: network, source: loaded.path)
        for (name, buffer) in optimizer.stateTensors {
            buffer.pointer.update(from: loaded.optimizerState[name]!.values, count: network.parameterCount)
        }
    }

    /// Rank 0's resume position, given to every rank (a fresh run starts at epoch 0, step 0).
    /// Doubles travel through a sum to which the other ranks add zeros: exact.
    static func sharePosition(_ loaded: Checkpoint.Loaded?, resume: Bool, communicator: Communicator) throws
        -> TrainingPosition {
        guard resume else { return .start }
        // [epoch, step, optimizer steps, skipped steps, skipped in epoch, partial sums...]
        let length = try communicator.allreduceSum([Double(loaded?.position.partialSums.count ?? 0)])[0]
        var values = [Double](repeating: 0, count: 5 + Int(length))
        if let p = loaded?.position {
            values[0] = Double(p.epoch); values[1] = Double(p.step)
            values[2] = Double(p.optimizerSteps); values[3] = Double(p.skippedSteps)
            values[4] = Double(p.skippedInEpoch)
            for (i, v) in p.partialSums.enumerated() { values[5 + i] = v }
        }
        let shared = try communicator.allreduceSum(values)
        var position = TrainingPosition(epoch: Int(shared[0]), step: Int(shared[1]), optimizerSteps: Int(shared[2]),
                                        skippedSteps: Int(shared[3]), skippedInEpoch: Int(shared[4]),
                                        partialSums: Array(shared[5...]), history: loaded?.position.history ?? [])
        // Rank 0's records, which only rank 0 writes.
        position.evaluations = loaded?.position.evaluations
        (position.elapsedSeconds, position.evalSeconds) = (loaded?.position.elapsedSeconds, loaded?.position.evalSeconds)
        return position
    }

    /// This rank's share of a resumed epoch's sums: its own on the same world size, else
    /// rank 0 carries the total (the figures then differ only in float rounding).
    static func resumedSums(_ sums: [Double], rank: Int, world: Int) -> (Double, Int) {
        if sums.count == 2 * world { return (sums[2 * rank], Int(sums[2 * rank + 1])) }
        guard rank == 0 else { return (0, 0) }
        let loss = stride(from: 0, to: sums.count, by: 2).map { sums[$0] }.reduce(0, +)
        let correct = stride(from: 0, to: sums.count, by: 2).map { sums[$0 + 1] }.reduce(0, +)
        return (loss, Int(correct))
    }
}
