import CohortBase
import CohortData
import CohortDistributed
import CohortRun
import CohortTraining

/// Every setting of a run, the type `cohort train`'s flags fill (docs/training.md): a field
/// per flag, `batchSize` for `--batch-size`.
public typealias TrainingSettings = TrainingConfig
/// One epoch's figures (a line of the run's metrics.csv).
public typealias EpochMetrics = CohortRun.EpochMetrics
/// A finished run's best and final figures (its summary.json).
public typealias RunSummary = CohortRun.RunSummary

/// The processes of a job: the ranks that mpirun (or srun) started, each running the same
/// program, or this process alone when no launcher started it. One per process; `finish()`
/// (or `abort(code:)`) ends it.
public final class World {
    let communicator: Communicator

    /// Joins the job (MPI_Init under a launcher).
    public init() throws { communicator = try makeCommunicator() }

    /// This process's rank, 0 to `size - 1`; rank 0 writes the run directory and reports.
    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Every rank, at the end: leaves the job together.
    public func finish() { communicator.finalize() }

    /// One rank that cannot go on ends the whole job (the other ranks would wait for it).
    public func abort(code: Int32 = 1) -> Never { communicator.abort(code: code) }
}

/// Data-parallel training of `model` on `train` by every rank of `world`: each takes its slice
/// of every global batch and the gradients are averaged, so N ranks compute what one process
/// computes with the same global batch. Rank 0 evaluates on `test` after each epoch and writes
/// the run directory (`settings.out`).
///
///     let world = try World()
///     var settings = TrainingSettings()
///     settings.optimizer = .sgd; settings.lr = 0.05; settings.epochs = 3; settings.out = "runs/mine"
///     let training = try Training(model: model, train: train, test: test, settings: settings, world: world)
///     let summary = try training.run { epoch in print(epoch.epoch, epoch.testAccuracy) }
///     world.finish()
public final class Training {
    let trainer: Trainer

    /// Collective: every rank sets up the same run. `resume`: continue the run in
    /// `settings.out` from its newest checkpoint. `showsProgress`: rank 0's epoch and progress
    /// lines on standard output, as `cohort train` prints them.
    public init(model: Model, train: Dataset, test: Dataset, settings: TrainingSettings, world: World,
                resume: Bool = false, showsProgress: Bool = false) throws {
        var settings = settings
        settings.model = model.name
        trainer = try Trainer(config: settings, resume: resume, communicator: world.communicator,
                              display: .standard(quiet: !showsProgress), model: model.spec,
                              data: DatasetSplits(train: train.images, test: test.images))
    }

    /// The settings as the run uses them (the global batch resolved).
    public var settings: TrainingSettings { trainer.config }

    /// Trains to the last epoch (or the target accuracy, or a stop by SIGINT or SIGTERM, with
    /// a checkpoint) and returns the run's summary. `epochEnded` is called on rank 0.
    @discardableResult
    public func run(epochEnded: ((EpochMetrics) -> Void)? = nil) throws -> RunSummary {
        trainer.epochEnded = epochEnded
        return try trainer.run()
    }

    /// Rank 0 (or any rank): the weights and batch norm's running statistics as safetensors,
    /// under PyTorch's names.
    public func saveWeights(to path: String) throws { try trainer.saveWeights(to: path) }

    /// Every rank: weights from a safetensors file, checked against the model's names and shapes.
    public func loadWeights(from path: String) throws { try trainer.loadWeights(from: path) }
}
