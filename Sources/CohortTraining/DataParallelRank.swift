import CohortBase
import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortRun
import CohortTensor

/// What one rank needs to take data-parallel steps, set up the same way for `cohort train`
/// and `cohort bench`: its thread plan, the model replicas that share its slice of the global
/// batch, the optimizer, the sampler and the gradient reducer.
public final class DataParallelRank {
    /// The model, the batch and how it is split over ranks, threads and gradient buckets.
    public struct Shape: Sendable {
        public var model: ModelSpec
        /// What the data gives the model per sample and asks of it.
        public var sample: SampleFormat
        public var globalBatch: Int
        public var threads: Int?, replicas: Int?
        public var bucketMb: Double, overlap: Bool
        /// What the gradients are sent as in the reduction.
        public var allreduceFormat: FloatFormat
        /// What the CNN's convolutions multiply.
        public var precision: FloatFormat
        /// Micro-batches per step, whose gradients add up before the reduction.
        public var accumulate: Int
        /// ε of the training loss's label smoothing.
        public var labelSmoothing: Float
        /// Batch norm with the statistics of the whole global batch (`BatchStatisticsSync`).
        public var syncBatchNorm: Bool

        public init(model: ModelSpec, sample: SampleFormat, globalBatch: Int,
                    threads: Int?, replicas: Int?, bucketMb: Double, overlap: Bool, allreduceFormat: FloatFormat = .fp32,
                    precision: FloatFormat = .fp32, accumulate: Int = 1, labelSmoothing: Float = 0,
                    syncBatchNorm: Bool = false) {
            self.model = model; self.sample = sample
            self.globalBatch = globalBatch; self.threads = threads; self.replicas = replicas
            self.bucketMb = bucketMb; self.overlap = overlap; self.allreduceFormat = allreduceFormat
            self.precision = precision; self.accumulate = accumulate; self.labelSmoothing = labelSmoothing
            self.syncBatchNorm = syncBatchNorm
        }

        /// The shape `config`'s settings give `model` on samples of `sample`: what a training
        /// run and a benchmark of the same flags both build.
        public init(config: TrainingConfig, model: ModelSpec, sample: SampleFormat) {
            self.init(model: model, sample: sample, globalBatch: config.batchSize,
                      threads: config.threads, replicas: config.replicas, bucketMb: config.bucketMb,
                      overlap: !config.noOverlap, allreduceFormat: config.allreduceDtype, precision: config.precision,
                      accumulate: config.accumulate, labelSmoothing: Float(config.labelSmoothing),
                      syncBatchNorm: config.syncBatchnorm)
        }
    }

    public let communicator: Communicator
    public let shape: Shape
    public let globalBatch: Int, localBatch: Int
    let plan: ThreadPlan
    let replicas: ReplicaGroup
    public let network: Network
    public let optimizer: Optimizer
    public private(set) var sampler: EpochSampler
    /// Random crops and flips of the training images (`--augment`), none by default.
    public var augmentation: Augmentation?
    /// The epoch in progress (`startEpoch`), which the augmentation's choices depend on.
    private var epoch = 0
    /// The training batches, prepared ahead (`BatchLoader`), for the data set of `startEpoch`.
    private var loader: BatchLoader?
    /// The loader's threads (`--loader-threads`; 0: each batch filled when its step starts).
    public var loaderThreads = 1
    let reducer: GradientReducer
    /// The reducer's per-layer callback, made once: a step allocates nothing.
    private let layerFinished: (Int) throws -> Void
    /// The loss at each target is divided by the global batch's targets (samples, or windows x
    /// positions), so the summed gradients are the mean's.
    private let scale: Float
    /// This rank's compute and wait since it started.
    public private(set) var times = StepTimes()
    private let slowFault = SlowRankFault.fromEnvironment
    /// `--trace`: every step's phases and bucket reductions (see `StepTimeline`).
    public var timeline: StepTimeline? {
        didSet { replicas.timeline = timeline; reducer.timeline = timeline }
    }

    /// Builds the replicas with `seed`'s initial parameters, which every rank then takes from rank 0
    /// (and `seed`'s dropout masks). The model must build on `shape.sample` (checked before).
    /// `drawsSamples`: each step draws its samples (a text's windows) instead of taking the
    /// epoch's permutation (`EpochSampler`).
    public init(shape: Shape, datasetSize: Int, drawsSamples: Bool = false, seed: UInt64, communicator: Communicator,
                makeOptimizer: (Network) -> Optimizer) throws {
        self.communicator = communicator
        self.shape = shape
        globalBatch = shape.globalBatch
        localBatch = shape.globalBatch / communicator.size
        let microBatch = localBatch / shape.accumulate
        // Replicas each run on one of the rank's threads; their kernels get what is left per replica.
        plan = ThreadPlan(threads: shape.threads, replicas: shape.replicas, localBatch: microBatch,
                          ranksOnNode: communicator.localSize)
        if let cpus = plan.oversubscribed {
            sayError("cohort: \(communicator.size > 1 ? "rank \(communicator.rank): " : "")\(plan.threads) threads on "
                     + "\(cpus) CPU(s) this process may run on: they will take turns (see --threads)")
        }
        KernelThreads.set(plan.threadsPerReplica)
        replicas = try ReplicaGroup(model: shape.model, sample: shape.sample,
                                    localBatch: microBatch, replicas: plan.replicas, precision: shape.precision,
                                    seed: seed, labelSmoothing: shape.labelSmoothing)
        if shape.syncBatchNorm { replicas.synchronizeBatchNorm(communicator: communicator) }
        network = replicas.primary
        network.initializeParameters(seed: seed)
        optimizer = makeOptimizer(network)
        (optimizer as? Adam)?.threads = plan.threads
        sampler = EpochSampler(datasetSize: datasetSize, globalBatch: shape.globalBatch, rank: communicator.rank,
                               worldSize: communicator.size, seed: seed, draws: drawsSamples)
        reducer = GradientReducer(network: network, communicator: communicator,
                                  bucketBytes: Int(shape.bucketMb * 1_048_576), overlap: shape.overlap,
                                  format: shape.allreduceFormat)
        layerFinished = reducer.layerFinished
        scale = 1 / Float(shape.globalBatch * shape.sample.targetsPerSample)
    }

    public var threads: Int { plan.threads }
    public var replicaCount: Int { plan.replicas }
    public var bucketBytes: [Int] { reducer.bucketBytes }
    /// How this rank carries the run out, as checkpoints record it.
    public var execution: Execution {
        Execution(worldSize: communicator.size, threadsPerRank: plan.threads, replicasPerRank: plan.replicas,
                  bucketMb: shape.bucketMb, accumulate: shape.accumulate)
    }

    /// Draws epoch `epoch`'s order of the training set (the same on every rank), sets the
    /// epoch its augmentation draws from, and starts preparing the batches of `data` for
    /// `steps` (nil: from step `firstStep` to the epoch's end).
    public func startEpoch(_ epoch: Int, data: ImageDataset, firstStep: Int = 0, steps: Range<Int>? = nil) {
        sampler.startEpoch(epoch)
        self.epoch = epoch
        if loader == nil || loader!.threads != loaderThreads || loader!.dataID != ObjectIdentifier(data.samples) {
            loader?.stop()
            loader = BatchLoader(data: data, localBatch: localBatch, threads: loaderThreads)
        }
        let sampler = self.sampler
        loader!.start(BatchLoader.Plan(epoch: epoch, steps: steps ?? firstStep..<sampler.stepsPerEpoch,
                                       indices: { sampler.indices(step: $0) }, augmentation: augmentation))
    }

    /// Stops preparing batches (the run stops before the epoch's end).
    public func stopLoading() { loader?.stop() }

    /// Ranks start identical whatever they computed: rank 0's parameters win, and its buffers
    /// (running statistics).
    public func broadcastParameters() throws {
        try communicator.broadcast(network.parameters.pointer, count: network.parameterCount, root: 0)
        try broadcastBuffers()
    }

    /// Rank 0's first replica's buffers to every rank, as DDP's `broadcast_buffers`: each
    /// replica's running statistics follow its own micro-batches, and those of rank 0's first
    /// replica are the model's (what evaluation uses and checkpoints keep).
    func broadcastBuffers() throws {
        guard network.buffers.count > 0 else { return }
        try communicator.broadcast(network.buffers.pointer, count: network.buffers.count, root: 0)
    }

    /// One step's gradients, summed over every rank: forward and backward of this rank's slice
    /// of global step `step` (in `accumulate` micro-batches, each split over the replicas),
    /// each gradient bucket's allreduce
    /// started as soon as backward has produced it, then waited for. Returns this rank's
    /// loss sum, correct count and phase times (`data`: the wait for the batch), and the seconds
    /// spent waiting for the reduction. The step's batch comes from the epoch's loader (`startEpoch`).
    public func reduceGradients(step: Int) throws -> (outcome: StepOutcome, waitSeconds: Double) {
        timeline?.beginStep(epoch: epoch + 1, step: step + 1)
        let (batch, dataWait) = try loader!.next(step: step)
        timeline?.mark("data")
        defer { loader!.recycle(batch) }
        let start = monotonicSeconds()
        slowFault?.apply(rank: communicator.rank)
        var outcome = try replicas.step(batch: batch, indices: sampler.indices(step: step), microBatches: shape.accumulate,
                                        scale: scale, epoch: epoch, gradientsReady: layerFinished)
        outcome.data = dataWait
        let wait = try reducer.finish()
        if communicator.size > 1 { timeline?.mark("allreduce wait") }
        times.steps += 1
        times.compute += monotonicSeconds() - start - wait
        times.wait += wait
        return (outcome, wait)
    }

    /// `--clip-grad-norm`: the largest L2 norm the reduced gradients may have (`GradientClipping`).
    public var clipGradNorm: Float?

    /// The optimizer's update of the parameters with the reduced gradients, clipped first where
    /// `clipGradNorm` says.
    public func applyGradients() {
        let start = monotonicSeconds()
        if let clipGradNorm {
            GradientClipping.clip(network.gradients.pointer, count: network.parameterCount, maxNorm: clipGradNorm)
        }
        optimizer.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
        times.compute += monotonicSeconds() - start
        timeline?.mark("optimizer")
    }

    /// Every rank's `times` since `since` (this rank's earlier `times`), in rank order (collective).
    public func gatherTimes(since: StepTimes = StepTimes()) throws -> [StepTimes] {
        try StepTimes.gather(times - since, communicator: communicator)
    }

    /// Mean loss and accuracy over `data` through the replicas, the same on every rank
    /// (collective): rank 0 evaluates all of it, or with `.all` every rank a contiguous slice;
    /// the loss sums and correct counts are then added over the ranks (a rank that evaluated
    /// nothing adds zeros, exactly, so rank 0's figures are its own).
    public func evaluate(on data: ImageDataset, ranks: EvaluationRanks, augmentation: TestTimeAugmentation) throws
        -> (loss: Double, accuracy: Double) {
        let range = switch ranks {
        case .rank0: communicator.rank == 0 ? 0..<data.count : 0..<0
        case .all: ReplicaGroup.stretch(communicator.rank, of: data.count, parts: communicator.size)
        }
        if ranks == .all { try broadcastBuffers() }
        let local = range.isEmpty ? (lossSum: 0, correct: 0)
            : try replicas.evaluationSums(on: data, range: range, augmentation: augmentation)
        let sums = try communicator.allreduceSum([local.lossSum, Double(local.correct)])
        let targets = Double(data.count * data.targetsPerSample)
        return (sums[0] / targets, sums[1] / targets)
    }
}
