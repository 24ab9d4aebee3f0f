import ArgumentParser
import Foundation
import CohortData
import CohortDistributed
import CohortNN
import CohortOptim
import CohortTraining

/// `cohort`: the command line. It only parses flags and calls the layers below.
@main
struct Cohort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Data-parallel neural-network training over MPI.",
        version: cohortVersion,
        subcommands: [Train.self])
}

extension ModelKind: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model and write a run directory (metrics, curves, model.safetensors).",
        discussion: """
        Without mpirun this is one process; under `mpirun -np N` every rank trains on 1/N of \
        each global batch. Data is read from --data-dir, else $COHORT_DATA/NAME, else ./data/NAME, \
        else /usr/share/datasets/NAME.
        """)

    @Option(help: "Model to train.")
    var model: ModelKind = .cnn
    @Option(help: "Dataset to train and test on.")
    var dataset: DatasetKind = .synthetic
    @Option(help: "Directory with the dataset's files.")
    var dataDir: String?
    @Option(help: "Optimizer, with PyTorch's defaults.")
    var optimizer: OptimizerKind = .adagrad
    @Option(help: "Learning rate.")
    var lr: Double = 0.01
    @Option(help: "Momentum (sgd, rmsprop).")
    var momentum: Double = 0
    @Flag(help: "Nesterov momentum (sgd).")
    var nesterov = false
    @Option(help: "Weight decay (default 0; 0.01 for adamw).")
    var weightDecay: Double?
    @Option(help: "Epochs.")
    var epochs: Int = 1
    @Option(help: "Global batch size, split evenly over the ranks.")
    var batchSize: Int = 64
    @Option(help: "Hidden size of rnn, lstm and gru.")
    var hidden: Int = 128
    @Option(help: "Seed for initialisation, shuffling and synthetic data.")
    var seed: UInt64 = 0
    @Option(help: "Use only the first N training samples.")
    var limit: Int?
    @Option(help: "Evaluate on only the first N test samples.")
    var testLimit: Int?
    @Option(help: "BLAS threads per rank (default: cores / ranks on the node).")
    var threads: Int?
    @Option(help: "Run directory to write.")
    var out: String
    @Option(help: "Gradient bucket size in MiB for the allreduce.")
    var bucketMb: Double = 25
    @Flag(help: "Reduce gradients after backward instead of overlapping with it.")
    var noOverlap = false
    @Flag(help: "Print nothing but errors.")
    var quiet = false

    var trainingConfig: TrainingConfig {
        var c = TrainingConfig()
        c.model = model; c.dataset = dataset; c.dataDirectory = dataDir; c.optimizer = optimizer
        c.learningRate = lr; c.momentum = momentum; c.nesterov = nesterov; c.weightDecay = weightDecay; c.epochs = epochs
        c.batchSize = batchSize; c.hidden = hidden; c.seed = seed; c.limit = limit; c.testLimit = testLimit
        c.threads = threads; c.outputDirectory = out; c.bucketMB = bucketMb; c.overlap = !noOverlap
        return c
    }

    /// Runs on every rank before MPI starts; the world size comes from the launcher's
    /// environment, so a batch that does not divide fails on every rank alike.
    func validate() throws {
        do {
            try trainingConfig.validate(worldSize: MPILaunch.worldSize ?? 1)
        } catch let error as RunError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let communicator = try makeCommunicator()
        do {
            try Trainer(config: trainingConfig, communicator: communicator, showProgress: !quiet).run()
        } catch {
            guard communicator.size > 1 else { throw error }
            // Other ranks may be waiting in a collective: end the whole job, not just this rank.
            FileHandle.standardError.write(Data("Error: rank \(communicator.rank): \(error)\n".utf8))
            communicator.abort(code: 1)
        }
        communicator.finalize()
    }
}
