import ArgumentParser
import CohortBase
import CohortNN
import CohortRun
import CohortTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model and write a run directory (metrics, curves, checkpoints, model.safetensors).",
        discussion: """
        Without mpirun this is one process; under `mpirun -np N` every rank trains on 1/N of \
        each global batch. Data is read from --data-dir, else $COHORT_DATA/NAME, else ./data/NAME, \
        else /usr/share/datasets/NAME. A checkpoint is written at the end of every epoch (and \
        every --checkpoint-steps steps); SIGINT or SIGTERM stops the run at the next step with a \
        checkpoint, and `cohort train --resume DIR` continues it with the settings in DIR/config.json.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var parallel: ParallelOptions
    @OptionGroup var data: DataFlags
    @OptionGroup var options: TrainOptions
    @Option(help: "Continue the run in this directory from its newest good checkpoint.")
    var resume: String?
    @Flag(help: "Print nothing but errors.")
    var quiet = false
    @Option(help: ArgumentHelp("Without a terminal (a log file, Slurm's output): a progress line every this many "
                               + "seconds during each epoch; 0: epoch lines only. On a terminal a live line is "
                               + "redrawn instead.", valueName: "seconds"))
    var progressEvery = ProgressDisplay.defaultPeriod

    /// The settings given as flags, by key.
    var given: [String: JSONValue] {
        modelOptions.givenSettings.merging(parallel.givenSettings) { $1 }.merging(data.givenSettings) { $1 }
            .merging(options.givenSettings) { $1 }
    }

    /// The run's settings: the flags over the defaults, or with --resume the run's
    /// config.json, which flags may then only repeat (or, for --epochs, extend).
    func trainingConfig() throws -> TrainingConfig {
        if let resume { return try TrainingConfig.resuming(resume, given: given) }
        guard options.out != nil else {
            throw CohortError.settings("--out DIR is required (or --resume DIR to continue a run)")
        }
        return try TrainingConfig.from(given: given)
    }

    /// Flags alone, and the model on the data set's image shape; whether the batch divides over
    /// the ranks is checked once MPI has started (`Trainer.init`), so that every rank can report it.
    func validate() throws {
        guard progressEvery.isFinite, progressEvery >= 0 else {
            throw ValidationError("--progress-every must be a number of seconds >= 0, got \(progressEvery)")
        }
        do {
            let config = try trainingConfig()
            try config.validate()
            let model = try config.modelSpec(resumed: resume != nil)
            // The user's own data (and a text) gives its shape and classes when it is read (`TrainingConfig.check`).
            guard !config.dataset.isUserData && config.dataset != .text else { return }
            let network: Network
            do {
                network = try model.build(inputShape: config.dataset.imageShape ?? model.syntheticShape,
                                          classes: config.dataset.classes ?? 10, maxBatch: 1)
            } catch {
                throw CohortError.settings(error.description)
            }
            if let path = config.initWeights, resume == nil {
                do { try SafeTensors.load(path, into: network) } catch let error as CohortError {
                    throw CohortError.settings("--init \(error.description)")
                }
            }
        } catch let error as CohortError where error.kind == .settings {
            throw ValidationError(error.description)
        } catch let error as CohortError {
            throw ValidationError("--resume: \(error.description)")
        }
    }

    func run() throws {
        let config = try trainingConfig()
        try runOnEveryRank { communicator in
            try Trainer(config: config, resume: resume != nil, communicator: communicator,
                        display: .standard(quiet: quiet, every: progressEvery)).run()
        }
    }
}
