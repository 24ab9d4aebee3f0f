import CohortBase
import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortReporting
import CohortRun
import CohortTensor
import Foundation

/// The data-parallel training loop. One batch flows one way:
/// sampler -> bytes normalised into `x` -> forward -> softmax cross-entropy (÷ global B)
/// -> backward -> allreduce of the gradients -> optimizer step -> metrics.
/// Rank 0 evaluates on the test set and writes the run directory.
///
/// `init` sets the run up (data, replicas, the run directory, a resumed checkpoint); `run`
/// trains epoch by epoch (`runEpoch`, step by step in `takeStep`) and `finish` writes the end.
public final class Trainer {
    /// The run's settings; with `steps`, `epochs` is the epochs those steps need.
    public private(set) var config: TrainingConfig
    let communicator: Communicator
    let rank: DataParallelRank
    let data: DatasetSplits
    /// The model file and parameter values the run trains.
    let model: ModelSpec
    let progress: ProgressReporter
    /// The learning rate of every step.
    let schedule: LearningRateSchedule
    /// A signal came at an epoch's last step: the run stops once that epoch has ended.
    var stopAtEpochEnd = false
    /// Rank 0's run directory and TensorBoard file (nil on other ranks).
    let runDirectory: RunDirectory?
    let tensorBoard: TensorBoardWriter?
    /// Where the run stands; checkpoints record it.
    var position: TrainingPosition
    /// Where this process started (a resumed run starts inside an epoch).
    let startEpoch: Int, startStep: Int
    /// Installed once the run is set up: a signal before that ends the process as usual.
    let stop: StopRequest
    let drift = DriftFault.fromEnvironment
    /// Per step, every rank adds [stop requested, non-finite values seen] to this and acts on the sums.
    let stepFlags = FloatBuffer(count: 2)
    /// When this process took its first step, and the run's wall-clock seconds before it (a
    /// resumed run's earlier processes, up to their last checkpoint).
    let runStart: Double
    let elapsedBefore: Double
    /// Seconds spent evaluating on the test set: in the whole run, and in the latest evaluation.
    var evaluationSeconds: Double
    var lastEvaluationSeconds = 0.0
    /// Every evaluation of the run so far (rank 0 writes them to evaluations.jsonl).
    var evaluations: [EvaluationRecord]
    /// This rank's step times at the last straggler check, and the ranks already reported.
    var timesAtLastCheck = StepTimes()
    var reportedStragglers = Set<Int>()
    /// Global steps between straggler checks (one small allreduce each).
    static let stragglerInterval = 50

    var isRoot: Bool { communicator.rank == 0 }
    var stepsPerEpoch: Int { rank.sampler.stepsPerEpoch }
    /// The run's global steps (`--steps`, or every step of its epochs).
    var totalSteps: Int { config.totalSteps(stepsPerEpoch: stepsPerEpoch) }

    /// The steps epoch `epoch` takes: all of them, but for a last epoch that `--steps` stops part way.
    func steps(inEpoch epoch: Int) -> Int { min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch) }
    var network: Network { rank.network }

    /// Called on rank 0 after each epoch's record is written.
    public var epochEnded: ((EpochMetrics) -> Void)?

    /// Collective: every rank sets up the same run and starts from rank 0's parameters (and,
    /// with `resume`, rank 0's newest good checkpoint). `display`: how rank 0 shows its progress.
    /// `model` and `data`, where given, instead of those `config` names (a program's own).
    public init(config: TrainingConfig, resume: Bool, communicator: Communicator, display: ProgressDisplay,
                model: ModelSpec? = nil, data: DatasetSplits? = nil) throws {
        var config = config
        // A resumed run keeps the global batch it recorded, on any number of ranks.
        if !resume { config.resolveBatch(worldSize: communicator.size) }
        self.config = config
        self.communicator = communicator
        communicator.timeout = config.timeout
        try config.validate(worldSize: communicator.size)
        self.model = try model ?? config.modelSpec(resumed: resume)
        if let data {
            try config.check(self.model, on: data)
            self.data = data
        } else {
            var loaded = try config.loadData(for: self.model)
            // A resumed run's inputs are normalised as its start recorded, whatever the data measures now.
            if resume, let record = try DataRecord.read(directory: config.out) {
                loaded = try record.applied(to: loaded, source: "--resume \(config.out)")
            }
            self.data = loaded
        }
        if let first = self.data.skippedFiles.first, communicator.rank == 0 {
            sayError("cohort: --skip-bad-files left out \(self.data.skippedFiles.count) unreadable file(s), the first: \(first)")
        }
        let (model, data) = (self.model, self.data)
        self.config.epochs = config.epochCount(stepsPerEpoch: data.train.count / config.batchSize)
        config = self.config
        let shape = DataParallelRank.Shape(config: config, model: model, sample: data.train.sampleFormat)
        rank = try DataParallelRank(shape: shape, datasetSize: data.train.count, drawsSamples: data.train.windows != nil,
                                    seed: config.seed,
                                    communicator: communicator) { network in
            config.makeOptimizer(for: network.tensors, count: network.parameterCount)
        }
        if config.augment { rank.augmentation = .standard(channels: data.train.channels, seed: config.seed) }
        rank.loaderThreads = config.loaderThreads
        rank.clipGradNorm = config.clipGradNorm.map(Float.init)
        if let path = config.initWeights, !resume {
            // Every rank reads it, as it reads the data; a resumed run has its checkpoint instead.
            try SafeTensors.load(path, into: rank.network)
        }
        schedule = config.schedule(stepsPerEpoch: rank.sampler.stepsPerEpoch)
        progress = ProgressReporter(epochs: config.epochs, display: display, isRoot: communicator.rank == 0)
        let start = try RunStart(config: config, resume: resume, rank: rank, data: data, progress: progress)
        runDirectory = start.directory
        tensorBoard = start.tensorBoard
        position = start.position
        (startEpoch, startStep) = (position.epoch, position.step)
        stop = StopRequest.install()
        evaluations = position.evaluations ?? []
        (elapsedBefore, evaluationSeconds) = (position.elapsedSeconds ?? 0, position.evalSeconds ?? 0)
        runStart = monotonicSeconds()
        if config.saveInitial && !resume {
            try runDirectory?.writeModel(network, metadata: modelMetadata, name: "initial.safetensors")
        }
        announce(resumedFrom: start.resumedFrom)
        if let trace = config.trace { rank.timeline = try StepTimeline(directory: trace, communicator: communicator) }
    }

    /// Trains to the last epoch (or to the target accuracy, or to a stop by a signal) and
    /// returns the run's summary.
    @discardableResult
    public func run() throws -> RunSummary {
        for epoch in startEpoch..<config.epochs {
            switch try runEpoch(epoch) {
            case .finished: continue
            case .reachedTarget: return try finish()
            case .stopped:
                try finishTrace()
                return RunSummary(epochs: position.history, worldSize: communicator.size, evaluations: evaluations)
            }
        }
        return try finish()
    }

    /// Writes the network's parameters and batch norm's running statistics to a safetensors
    /// file under PyTorch's names (what the run directory's model.safetensors holds).
    public func saveWeights(to path: String) throws {
        try SafeTensors.write(network, metadata: modelMetadata, to: path)
    }

    /// Every rank: takes the parameters and running statistics of a safetensors file, each
    /// tensor checked against the model's names and shapes.
    public func loadWeights(from path: String) throws {
        try SafeTensors.load(path, into: network)
    }

    /// Closes the trace; rank 0 merges the ranks' files.
    func finishTrace() throws {
        if let path = try rank.timeline?.finish(communicator: communicator) { progress.line("cohort: trace written to \(path)") }
    }

    /// `[("format", "pt"), ...]`: the metadata of the safetensors files, for PyTorch's loaders.
    var modelMetadata: [(String, String)] {
        [("format", "pt"), ("model", model.name), ("dataset", data.train.name)]
    }

    func announce(resumedFrom: String?) {
        progress.line("cohort: \(model.name) on \(data.train.name) (\(data.train.count) train, "
                      + "\(data.test.count) test), \(communicator.size) rank(s) x \(rank.threads) thread(s)"
                      + (rank.replicaCount > 1 ? " in \(rank.replicaCount) replicas" : "") + ", batch \(config.batchSize), "
                      + "\(config.optimizer.rawValue) lr \(schedule.description), \(config.epochs) epoch(s), "
                      + "\(network.parameterCount) parameters -> \(config.out)")
        if config.precision == .bf16 {
            let products = model.readsRows ? "input projection and step products"
                : "convolutions on \(Conv2D.bf16MinimumInputChannels) or more input channels"
            progress.line(BF16Support.current == .native
                ? "cohort: bf16 \(products) on AVX512_BF16, fp32 accumulation and master weights"
                : "cohort: bf16 \(products) emulated by oneDNN (this CPU has AVX-512 but not AVX512_BF16): "
                    + "expect them slower than fp32")
        }
        if let resumedFrom {
            progress.line("cohort: resumed from \(resumedFrom) (epoch \(position.epoch + 1), step \(position.step) "
                          + "of \(stepsPerEpoch))")
        }
    }

    /// Every `stragglerInterval` steps: each rank's compute per step since the last check, and
    /// a notice naming a rank much slower than the median (once per rank).
    func checkStragglers(through globalStep: Int) throws {
        let ranks = try rank.gatherTimes(since: timesAtLastCheck)
        timesAtLastCheck = rank.times
        let median = ranks.map(\.computePerStep).sorted()[(ranks.count - 1) / 2]
        for r in StepTimes.stragglers(ranks) where reportedStragglers.insert(r).inserted {
            progress.notice(String(format: "cohort: rank %d is a straggler: %.1f ms of compute per step against a median "
                                   + "of %.1f ms (steps %d-%d); every other rank waits for it", r,
                                   1e3 * ranks[r].computePerStep, 1e3 * median, globalStep - ranks[r].steps + 1, globalStep))
        }
    }

    /// The final parameter check, and rank 0's model and summary.
    func finish() throws -> RunSummary {
        let checksum = try RankAgreement.check(network, communicator: communicator, at: "the end of the run")
        let ranks = try rank.gatherTimes()
        try finishTrace()
        let target = TargetOutcome.of(accuracy: config.targetAccuracy, loss: config.targetLoss, in: evaluations,
                                      globalBatch: config.batchSize)
        let summary = RunSummary(epochs: position.history, worldSize: communicator.size, parameterChecksum: checksum,
                                 skippedSteps: position.skippedSteps,
                                 ranks: ranks.enumerated().map { $0.element.timing(rank: $0.offset) },
                                 evaluations: evaluations, target: target,
                                 skippedFiles: data.skippedFiles.isEmpty ? nil : data.skippedFiles.count)
        if let runDirectory {
            try runDirectory.writeModel(network, metadata: modelMetadata)
            try runDirectory.writeSummary(summary)
            if let target { progress.line("cohort: " + target.sentence) }
            // A run that reached its target inside its first epoch has no epoch's throughput.
            let throughput = summary.epochs > 0 ? String(format: ", %.0f samples/s", summary.samplesPerSecond) : ""
            progress.line(String(format: "best test accuracy %.2f%%%@; run directory: %@", 100 * summary.best.testAccuracy,
                                 throughput, runDirectory.path))
        }
        return summary
    }
}
