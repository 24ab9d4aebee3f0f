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
        subcommands: [Train.self, Bench.self])
}

/// Runs `body` as one rank of the job (MPI when launched by mpirun, else alone). An
/// error on one rank ends the whole job: other ranks may be waiting in a collective.
///
/// A bad setting is found by every rank alike: each prints it, and they leave together
/// (barrier, finalize, exit 1), so the message comes from every rank and none is killed
/// before it has spoken.
func runOnEveryRank(_ body: (Communicator) throws -> Void) throws {
    let communicator = try makeCommunicator()
    do {
        try body(communicator)
    } catch let error as SettingsError where communicator.size > 1 {
        FileHandle.standardError.write(Data("Error: rank \(communicator.rank): \(error)\n".utf8))
        try? communicator.barrier()
        communicator.finalize()
        Foundation.exit(1)
    } catch {
        guard communicator.size > 1 else { throw error }
        FileHandle.standardError.write(Data("Error: rank \(communicator.rank): \(error)\n".utf8))
        communicator.abort(code: 1)
    }
    communicator.finalize()
}

extension ModelKind: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

/// The model flags shared by `train` and `bench`.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: the report's CNN, or one recurrent layer over the image rows.")
    var model: ModelKind = .cnn
    @Option(help: "Hidden size of rnn, lstm and gru.")
    var hidden: Int = 128

    /// The same options as command-line arguments (to start workers with them).
    var arguments: [String] { ["--model", model.rawValue, "--hidden", "\(hidden)"] }
}

/// How a step is split over ranks and threads, shared by `train` and `bench`.
struct ParallelOptions: ParsableArguments {
    @Option(help: "Global batch size, split evenly over the ranks.")
    var batchSize: Int = 64
    @Option(help: "Threads per rank, shared by its replicas (default: cores / ranks on the node).")
    var threads: Int?
    @Option(help: "Gradient bucket size in MiB for the allreduce.")
    var bucketMb: Double = 25
    @Flag(help: "Reduce gradients after backward instead of overlapping with it.")
    var noOverlap = false
    @Option(help: ArgumentHelp("Replicas of the model per rank, each on its own thread with a slice of the rank's batch "
                               + "(default: one per thread, when they can share the batch equally)."))
    var replicas: Int?

    /// The same options as command-line arguments (to start workers with them).
    var arguments: [String] {
        ["--batch-size", "\(batchSize)", "--bucket-mb", "\(bucketMb)"] + (threads.map { ["--threads", "\($0)"] } ?? [])
            + (replicas.map { ["--replicas", "\($0)"] } ?? [])
            + (noOverlap ? ["--no-overlap"] : [])
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model and write a run directory (metrics, curves, model.safetensors).",
        discussion: """
        Without mpirun this is one process; under `mpirun -np N` every rank trains on 1/N of \
        each global batch. Data is read from --data-dir, else $COHORT_DATA/NAME, else ./data/NAME, \
        else /usr/share/datasets/NAME.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var parallel: ParallelOptions
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
    @Option(help: "Seed for initialisation, shuffling and synthetic data.")
    var seed: UInt64 = 0
    @Option(help: "Use only the first N training samples.")
    var limit: Int?
    @Option(help: "Evaluate on only the first N test samples.")
    var testLimit: Int?
    @Option(help: "Run directory to write.")
    var out: String
    @Flag(help: "Also write the initial parameters, before the first step, as initial.safetensors.")
    var saveInitial = false
    @Flag(help: "Print nothing but errors.")
    var quiet = false

    var trainingConfig: TrainingConfig {
        var c = TrainingConfig()
        c.model = modelOptions.model; c.hidden = modelOptions.hidden; c.dataset = dataset; c.dataDirectory = dataDir; c.optimizer = optimizer
        c.learningRate = lr; c.momentum = momentum; c.nesterov = nesterov; c.weightDecay = weightDecay; c.epochs = epochs
        c.saveInitial = saveInitial; c.seed = seed; c.limit = limit; c.testLimit = testLimit; c.outputDirectory = out
        c.batchSize = parallel.batchSize; c.threads = parallel.threads
        c.bucketMB = parallel.bucketMb; c.overlap = !parallel.noOverlap; c.replicas = parallel.replicas
        return c
    }

    /// Flags alone; whether the batch divides over the ranks is checked once MPI has
    /// started (`Trainer.run`), so that every rank can report it.
    func validate() throws {
        do {
            try trainingConfig.validate()
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        try runOnEveryRank { communicator in
            try Trainer(config: trainingConfig, communicator: communicator, showProgress: !quiet).run()
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps for several rank counts; report speedup, phases and GFLOP/s.",
        discussion: """
        Runs warm-up and timed steps on synthetic data of the model's input shape, once per \
        rank count (N > 1 under mpirun), after measuring this machine's sgemm rate. Writes \
        bench.json and bench.svg to --out and prints a table.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var parallel: ParallelOptions
    @Option(help: "Rank counts to measure, comma-separated.")
    var ranks: String = "1"
    @Option(help: "Timed steps per configuration.")
    var steps: Int = 30
    @Option(help: "Untimed warm-up steps before them.")
    var warmup: Int = 5
    @Option(help: "Seconds spent measuring the machine's sgemm rate.")
    var sgemmSeconds: Double = 0.5
    @Option(help: "Directory for bench.json and bench.svg.")
    var out: String = "runs/bench"
    @Option(help: .hidden)
    var result: String?

    var settings: BenchSettings {
        var s = BenchSettings()
        s.model = modelOptions.model; s.hidden = modelOptions.hidden; s.steps = steps; s.warmupSteps = warmup
        s.batchSize = parallel.batchSize; s.threads = parallel.threads
        s.bucketMB = parallel.bucketMb; s.overlap = !parallel.noOverlap; s.replicas = parallel.replicas
        return s
    }

    var rankCounts: [Int] { ranks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let counts = rankCounts
        guard !counts.isEmpty, counts.count == ranks.split(separator: ",").count, counts.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--ranks must be positive integers separated by commas, got '\(ranks)'")
        }
        guard sgemmSeconds > 0 else { throw ValidationError("--sgemm-seconds must be positive, got \(sgemmSeconds)") }
        do {
            for n in counts { try settings.validate(worldSize: n) }
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        guard let result else {
            let worker = modelOptions.arguments + parallel.arguments + ["--steps", "\(steps)", "--warmup", "\(warmup)"]
            var suite = BenchmarkSuite(settings: settings, rankCounts: rankCounts, outputDirectory: out,
                                       workerArguments: worker)
            suite.sgemmSeconds = sgemmSeconds
            try suite.run { print($0) }
            return
        }
        // A worker: one configuration, on every rank of this MPI job (or alone).
        try runOnEveryRank { communicator in
            let measurement = try BenchmarkRunner(settings: settings, communicator: communicator).run()
            if communicator.rank == 0 { try writeAtomically(measurement.json.serialized(pretty: true) + "\n", to: result) }
        }
    }
}
