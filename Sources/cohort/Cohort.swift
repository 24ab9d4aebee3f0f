import ArgumentParser
import Foundation
import CohortAnalysis
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
        subcommands: [Train.self, Bench.self, Scale.self, Sweep.self, Report.self, Visualize.self])
}

/// Runs `body` as one rank of the job (MPI when launched by mpirun, else alone). An
/// error on one rank ends the whole job: other ranks may be waiting in a collective.
///
/// A bad setting, or a stop every rank decides at the same step (non-finite values, ranks
/// that drifted apart), is found by every rank alike: each prints it, and they leave
/// together (barrier, finalize), so none is killed before it has spoken. Their exit codes
/// tell a launcher not to restart: 64 for settings (as ArgumentParser's own) and for a run
/// refused (its directory or checkpoints do not fit), 3 for a stop.
func runOnEveryRank(_ body: (Communicator) throws -> Void) throws {
    let communicator = try makeCommunicator()
    do {
        try body(communicator)
    } catch where error is SettingsError || error is TrainingStopped || (error is RunRefused && communicator.size == 1) {
        let prefix = communicator.size > 1 ? "rank \(communicator.rank): " : ""
        FileHandle.standardError.write(Data("Error: \(prefix)\(error)\n".utf8))
        try? communicator.barrier()
        communicator.finalize()
        Foundation.exit(error is TrainingStopped ? 3 : ExitCode.validationFailure.rawValue)
    } catch {
        // Found by rank 0 alone (the run directory, a checkpoint): the job is aborted, with
        // 64 when the run was refused (nothing for a launcher to retry), else 1. One process
        // passes other errors on to the command's own reporting.
        guard communicator.size > 1 else { throw error }
        FileHandle.standardError.write(Data("Error: rank \(communicator.rank): \(error)\n".utf8))
        communicator.abort(code: error is RunRefused ? ExitCode.validationFailure.rawValue : 1)
    }
    communicator.finalize()
}

extension ModelKind: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

/// The model flags shared by `train` and `bench`. Optional, so that a resumed run can
/// tell a flag given from a default (the defaults are in the help).
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: the report's CNN, or one recurrent layer over the image rows (default: cnn).")
    var model: ModelKind?
    @Option(help: "Hidden size of rnn, lstm and gru (default: 128).")
    var hidden: Int?
    @Option(help: "Multiplier of the CNN's filters, 32·W and 64·W: a larger model for scaling studies (default: 1).")
    var width: Int?

    /// The options given, as command-line arguments (to start workers with them).
    var arguments: [String] {
        (model.map { ["--model", $0.rawValue] } ?? []) + (hidden.map { ["--hidden", "\($0)"] } ?? [])
            + (width.map { ["--width", "\($0)"] } ?? [])
    }
}

/// How a step is split over ranks and threads, shared by `train` and `bench`.
struct ParallelOptions: ParsableArguments {
    @Option(help: "Global batch size, split evenly over the ranks (default: 64).")
    var batchSize: Int?
    @Option(help: "Threads per rank, shared by its replicas (default: cores / ranks on the node).")
    var threads: Int?
    @Option(help: "Gradient bucket size in MiB for the allreduce.")
    var bucketMb: Double = 25
    @Flag(help: "Reduce gradients after backward instead of overlapping with it.")
    var noOverlap = false
    @Option(help: ArgumentHelp("Replicas of the model per rank, each on its own thread with a slice of the rank's batch "
                               + "(default: one per thread, when they can share the batch equally)."))
    var replicas: Int?

    /// The options given, as command-line arguments (to start workers with them).
    var arguments: [String] {
        (batchSize.map { ["--batch-size", "\($0)"] } ?? []) + ["--bucket-mb", "\(bucketMb)"]
            + (threads.map { ["--threads", "\($0)"] } ?? [])
            + (replicas.map { ["--replicas", "\($0)"] } ?? [])
            + (noOverlap ? ["--no-overlap"] : [])
    }
}

extension NonFinitePolicy: ExpressibleByArgument {}

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
    @Option(help: "Dataset to train and test on (default: synthetic).")
    var dataset: DatasetKind?
    @Option(help: "Directory with the dataset's files.")
    var dataDir: String?
    @Option(help: "Optimizer, with PyTorch's defaults (default: adagrad).")
    var optimizer: OptimizerKind?
    @Option(help: "Learning rate (default: 0.01).")
    var lr: Double?
    @Option(help: "Momentum (sgd, rmsprop; default: 0).")
    var momentum: Double?
    @Flag(help: "Nesterov momentum (sgd).")
    var nesterov = false
    @Option(help: "Weight decay (default 0; 0.01 for adamw).")
    var weightDecay: Double?
    @Option(help: "Epochs (default: 1).")
    var epochs: Int?
    @Option(help: "Seed for initialisation, shuffling and synthetic data (default: 0).")
    var seed: UInt64?
    @Option(help: "Use only the first N training samples.")
    var limit: Int?
    @Option(help: "Evaluate on only the first N test samples.")
    var testLimit: Int?
    @Option(help: "Run directory to write.")
    var out: String?
    @Option(help: "Continue the run in this directory from its newest good checkpoint.")
    var resume: String?
    @Option(help: "Also write a checkpoint every N steps (one ends every epoch regardless).")
    var checkpointSteps: Int?
    @Option(help: "On a non-finite loss or gradient: stop the run, or skip that step (default: stop).")
    var onNan: NonFinitePolicy?
    @Option(help: "Compare a checksum of the parameters across ranks every N steps; 0: only at the end (default: 100).")
    var checkEvery: Int?
    @Flag(help: "Also write the initial parameters, before the first step, as initial.safetensors.")
    var saveInitial = false
    @Flag(help: "Print nothing but errors.")
    var quiet = false

    /// The run's settings: from the flags, or with --resume from the run's config.json,
    /// which flags may then only repeat (or, for --epochs, extend).
    func trainingConfig() throws -> TrainingConfig {
        var c: TrainingConfig
        if let resume {
            c = try TrainingConfig(runConfig: JSON(contentsOfFile: "\(resume)/config.json"))
            if let out, out != resume { throw SettingsError("--out \(out) and --resume \(resume) name different runs") }
            func keep<T: Equatable>(_ flag: String, _ given: T?, _ recorded: T?) throws {
                if let given, given != recorded {
                    throw SettingsError("--\(flag) \(given): the run in \(resume) has "
                                        + "\(recorded.map { "\($0)" } ?? "none"), and a resumed run keeps its settings")
                }
            }
            try keep("model", modelOptions.model, c.model); try keep("hidden", modelOptions.hidden, c.hidden)
            try keep("width", modelOptions.width, c.width)
            try keep("dataset", dataset, c.dataset); try keep("optimizer", optimizer, c.optimizer)
            try keep("lr", lr, c.learningRate); try keep("momentum", momentum, c.momentum)
            try keep("nesterov", nesterov ? true : nil, c.nesterov); try keep("weight-decay", weightDecay, c.weightDecay)
            try keep("seed", seed, c.seed); try keep("batch-size", parallel.batchSize, c.batchSize)
            try keep("limit", limit, c.limit); try keep("test-limit", testLimit, c.testLimit)
            try keep("on-nan", onNan, c.onNonFinite)
            c.resume = true
            c.outputDirectory = resume
            if let epochs { c.epochs = epochs }
            if let dataDir { c.dataDirectory = dataDir }
            if let checkpointSteps { c.checkpointSteps = checkpointSteps }
            if let checkEvery { c.checkEvery = checkEvery }
        } else {
            guard let out else { throw SettingsError("--out DIR is required (or --resume DIR to continue a run)") }
            // TrainingConfig's defaults for every flag not given.
            c = TrainingConfig()
            c.model = modelOptions.model ?? c.model; c.hidden = modelOptions.hidden ?? c.hidden
            c.width = modelOptions.width ?? c.width
            c.dataset = dataset ?? c.dataset; c.dataDirectory = dataDir; c.optimizer = optimizer ?? c.optimizer
            c.learningRate = lr ?? c.learningRate; c.momentum = momentum ?? c.momentum; c.nesterov = nesterov
            c.weightDecay = weightDecay
            c.epochs = epochs ?? c.epochs; c.seed = seed ?? c.seed; c.limit = limit; c.testLimit = testLimit
            c.batchSize = parallel.batchSize ?? c.batchSize; c.outputDirectory = out
            c.checkpointSteps = checkpointSteps; c.onNonFinite = onNan ?? c.onNonFinite
            c.checkEvery = checkEvery ?? c.checkEvery
        }
        c.saveInitial = saveInitial
        c.threads = parallel.threads; c.bucketMB = parallel.bucketMb; c.overlap = !parallel.noOverlap
        c.replicas = parallel.replicas
        return c
    }

    /// Flags alone; whether the batch divides over the ranks is checked once MPI has
    /// started (`Trainer.run`), so that every rank can report it.
    func validate() throws {
        do {
            try trainingConfig().validate()
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        } catch let error as RunError {
            throw ValidationError("--resume: \(error.description)")
        }
    }

    func run() throws {
        let config = try trainingConfig()
        try runOnEveryRank { communicator in
            try Trainer(config: config, communicator: communicator, showProgress: !quiet).run()
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
    @Option(help: "Spread N ranks over the first N slots of this Open MPI hostfile (over TCP) instead of this machine.")
    var hostfile: String?
    @Option(help: "With --hostfile: keep MPI's TCP traffic on this interface or subnet.")
    var iface: String?
    @Option(help: .hidden)
    var result: String?
    @Option(help: .hidden)
    var calibrateResult: String?

    var settings: BenchSettings {
        var s = BenchSettings()
        s.model = modelOptions.model ?? s.model; s.hidden = modelOptions.hidden ?? s.hidden
        s.width = modelOptions.width ?? s.width
        s.steps = steps; s.warmupSteps = warmup
        s.batchSize = parallel.batchSize ?? s.batchSize; s.threads = parallel.threads
        s.bucketMB = parallel.bucketMb; s.overlap = !parallel.noOverlap; s.replicas = parallel.replicas
        return s
    }

    var rankCounts: [Int] { commaSeparated(ranks) ?? [] }

    func validate() throws {
        guard let counts: [Int] = commaSeparated(ranks), !counts.isEmpty, counts.allSatisfy({ $0 > 0 }) else {
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
        if let calibrateResult {
            // A worker timing allreduces for the link model.
            try runOnEveryRank { communicator in
                try BenchmarkRunner.timeAllreduce(communicator: communicator, writingTo: calibrateResult)
            }
            return
        }
        guard let result else {
            let worker = modelOptions.arguments + parallel.arguments + ["--steps", "\(steps)", "--warmup", "\(warmup)"]
            var suite = BenchmarkSuite(settings: settings, rankCounts: rankCounts, outputDirectory: out,
                                       workerArguments: worker)
            suite.sgemmSeconds = sgemmSeconds
            suite.iface = iface
            do {
                suite.hostfile = try hostfile.map { try Hostfile(path: $0) }
                // Enough slots, before any measurement, not when the largest configuration's turn comes.
                if let most = rankCounts.max() { _ = try suite.hostfile?.placements(ranks: most, iface: iface) }
            } catch let error as SettingsError {
                throw ValidationError(error.description)
            }
            try suite.run { say($0) }
            return
        }
        // A worker: one configuration, on every rank of this MPI job (or alone).
        try runOnEveryRank { communicator in
            let measurement = try BenchmarkRunner(settings: settings, communicator: communicator).run()
            if communicator.rank == 0 { try writeAtomically(measurement.json.serialized(pretty: true) + "\n", to: result) }
        }
    }
}

/// `"1, 2,4"` -> `[1, 2, 4]` (empty items skipped); nil if an item is not a `T`.
func commaSeparated<T: LosslessStringConvertible>(_ text: String) -> [T]? {
    var values: [T] = []
    for item in text.split(separator: ",") {
        guard let value = T(item.trimmingCharacters(in: .whitespaces)) else { return nil }
        values.append(value)
    }
    return values
}

/// A line on standard output, written at once: a sweep's children write to the same
/// output, and buffered lines would come out of order (or late, when piped to a file).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Errors of the commands that run in one process (sweep, report, visualize): one line;
/// exit 64 for bad settings (as ArgumentParser's own), 1 for failures.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as SettingsError {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode.validationFailure
    } catch where error is RunError || error is DataError {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train every point of a grid over `cohort train` flags, then write the report.",
        discussion: """
        The grid comes from a sweep file (see sweeps/*.toml) and/or --grid FLAG=V1,V2,... \
        (repeatable); flags after `--` go to every run. Each point is a full `cohort train` job \
        with --ranks ranks, into OUT/runs/<point>/: one after another on this machine (under \
        mpirun when more than one rank), through --launcher, or several at once on disjoint \
        slots of --hostfile. Started again with the same grid on the same --out, the sweep \
        skips the points that finished and resumes those with checkpoints. At the end it \
        visualises the best run and writes OUT/report.md.
        """)

    @Argument(help: "Sweep file (a TOML subset: [train] flags and [grid] axes).")
    var file: String?
    @Option(name: .customLong("grid"), help: ArgumentHelp("An axis of the grid: a train flag and its values.",
                                                         valueName: "flag=v1,v2,..."))
    var grid: [String] = []
    @Option(help: "Ranks per run (default: the file's ranks, else 1).")
    var ranks: Int?
    @Option(help: "Sweep directory (default: runs/sweeps/<name>).")
    var out: String?
    @Option(help: "Name of the sweep (default: the file's name, else 'sweep').")
    var name: String?
    @Flag(help: "Do not visualise the best run at the end.")
    var noVisualize = false
    @Option(help: "Run only grid point I (0-based; e.g. a Slurm array task), without the report.")
    var point: Int?
    @Flag(help: "Print the number of grid points and exit.")
    var count = false
    @Option(help: ArgumentHelp("Start each run with this command in front of the binary instead of mpirun "
                               + "(e.g. 'srun --mpi=pmix' inside a Slurm allocation).", valueName: "command"))
    var launcher: String?
    @Option(help: "Spread runs over the slots of this Open MPI hostfile: disjoint groups of --ranks slots, one run each at a time.")
    var hostfile: String?
    @Option(help: "With --hostfile: keep MPI's TCP traffic on this interface or subnet.")
    var iface: String?
    @Option(help: "Threads per rank in every run (default: cores / ranks on the node).")
    var threads: Int?
    @Argument(parsing: .postTerminator, help: "`cohort train` flags for every run, after `--`.")
    var trainFlags: [String] = []

    func makeSpec() throws -> SweepSpec {
        let fromFile = try file.map { try SweepFile(path: $0) }
        let axes = try (fromFile?.axes ?? []) + grid.map { try GridAxis(parsing: $0) }
        let defaultName = file.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? "sweep"
        return try SweepSpec(name: name ?? fromFile?.name ?? defaultName, ranks: ranks ?? fromFile?.ranks ?? 1,
                             fixed: (fromFile?.fixed ?? []) + trainFlags, axes: axes)
    }

    func validate() throws {
        if let ranks, ranks <= 0 { throw ValidationError("--ranks must be positive, got \(ranks)") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
        guard launcher == nil || hostfile == nil else {
            throw ValidationError("give --launcher or --hostfile, not both")
        }
        if iface != nil && hostfile == nil { throw ValidationError("--iface goes with --hostfile") }
        do {
            let spec = try makeSpec()
            if let point, !(0..<spec.points.count).contains(point) {
                throw ValidationError("--point \(point): the grid has points 0...\(spec.points.count - 1)")
            }
        } catch let error as SettingsError { throw ValidationError(error.description) }
    }

    /// Where the runs go: this machine, a launcher, or groups of the hostfile's slots.
    func placements(ranks: Int) throws -> [Placement] {
        if let launcher {
            let words = launcher.split(separator: " ").map(String.init)
            guard !words.isEmpty else { throw SettingsError("--launcher is empty") }
            return [.launcher(words)]
        }
        guard let hostfile else { return [.local] }
        return try Hostfile(path: hostfile).placements(ranks: ranks, iface: iface)
    }

    /// One point's `cohort train` arguments, checked as `cohort train` would; returns its epochs.
    static func checkPoint(_ arguments: [String], ranks: Int) throws -> Int {
        let train: Train
        do { train = try Train.parse(Array(arguments.dropFirst())) } catch {
            throw SettingsError(Train.message(for: error))
        }
        let config = try train.trainingConfig()
        try config.validate(worldSize: ranks)
        if config.dataset != .synthetic {
            do { _ = try DatasetSource.directory(for: config.dataset, dataDirectory: config.dataDirectory) } catch {
                throw SettingsError("\(error)")
            }
        }
        return config.epochs
    }

    func run() throws {
        guard !MPILaunch.isUnderLauncher else {
            throw ValidationError("run `cohort sweep` without mpirun: it starts an mpirun job for each point")
        }
        try reportingErrors {
            let spec = try makeSpec()
            if count { say("\(spec.points.count)"); return }
            let directory = out ?? "runs/sweeps/\(spec.name)"
            var runner = SweepRunner(spec: spec, directory: directory) { try Sweep.checkPoint($0, ranks: spec.ranks) }
            runner.placements = try placements(ranks: spec.ranks)
            runner.runArguments = threads.map { ["--threads", "\($0)"] } ?? []
            let failed = try runner.run(only: point.map { [$0] }) { say($0) }
            if let point {
                guard failed.isEmpty else { throw RunError("point \(point) (\(failed[0].label)) failed") }
                say("sweep: point \(point) done; `cohort report \(directory)` once every point has run")
                return
            }
            let report = try SweepReport(directory: directory)
            if !noVisualize, let best = report.best {
                do {
                    let trained = try TrainedModel(path: best.directory)
                    _ = try Visualizer.run(trained, settings: VisualizeSettings(), directory: "\(best.directory)/visualize") { say($0) }
                } catch {
                    say("sweep: could not visualise the best run (\(error)); the report goes without it")
                }
            }
            say("sweep: report written to \(try report.write())")
            if !failed.isEmpty {
                throw RunError("\(failed.count) point(s) failed: " + failed.map(\.label).joined(separator: "; ")
                               + ". Run the same command again to retry them.")
            }
        }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write SWEEP_DIR/report.md from a sweep's runs (also done at the end of a sweep).")

    @Argument(help: "The sweep directory.")
    var sweepDirectory: String

    func run() throws {
        try reportingErrors {
            say("report written to \(try SweepReport(directory: sweepDirectory).write())")
        }
    }
}

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pictures and statistics of a trained model: filters, ReLU statistics, deconvnet, occlusion.",
        discussion: """
        For the CNN: the first convolution's filters, mean and std of every ReLU over the \
        test set, the deconvnet of Zeiler and Fergus (top 9 test images per feature map and \
        their projections to pixel space) and occlusion maps. For rnn/lstm/gru: hidden-state \
        statistics per step. Writes PNGs, visualize.json and visualize.md to --out.
        """)

    @Option(name: .customLong("run"), help: "Run directory (with config.json and model.safetensors).")
    var runDirectory: String?
    @Option(help: "A .safetensors file instead, beside its run's config.json.")
    var checkpoint: String?
    @Option(help: "Directory with the dataset's files (default: the run's).")
    var dataDir: String?
    @Option(help: "Output directory (default: RUN/visualize).")
    var out: String?
    @Option(help: "Use only the first N test images.")
    var limit: Int?
    @Option(help: "Feature maps shown per conv layer in the deconvnet.")
    var maps: Int = 8
    @Option(help: "Test images in the occlusion picture.")
    var occlusionImages: Int = 4
    @Option(help: "Side of the grey occluding square, in pixels.")
    var occlusionSize: Int = 8
    @Option(help: "Step of the occluding square, in pixels.")
    var occlusionStride: Int = 2

    var settings: VisualizeSettings {
        var s = VisualizeSettings()
        s.maps = maps; s.occlusionImages = occlusionImages; s.occlusionSize = occlusionSize; s.occlusionStride = occlusionStride
        return s
    }

    func validate() throws {
        guard (runDirectory == nil) != (checkpoint == nil) else { throw ValidationError("give one of --run DIR or --checkpoint FILE") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive, got \(limit)") }
        do { try settings.validate() } catch let error as SettingsError { throw ValidationError(error.description) }
    }

    func run() throws {
        try reportingErrors {
            let path = runDirectory ?? checkpoint!
            let trained = try TrainedModel(path: path, dataDirectory: dataDir, testLimit: limit)
            let directory = out ?? "\(trained.runDirectory)/visualize"
            _ = try Visualizer.run(trained, settings: settings, directory: directory) { say($0) }
            say("visualize: written to \(directory) (visualize.md, visualize.json and the pictures)")
        }
    }
}

struct Scale: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict samples/s and efficiency on 1 to N nodes from a benchmark (the alpha-beta model).",
        discussion: """
        Takes the compute time per sample and the gradient buckets of the 1-rank configuration \
        of a `cohort bench` result, and for every bandwidth prints the predicted samples/s, \
        parallel efficiency and communication share for N = 1, 2, 4, ... --max-nodes, with one \
        rank per node and --per-rank-batch samples each (weak scaling), the ring allreduce \
        costing 2(N-1)/N·bytes/bandwidth + 2(N-1)·latency per bucket; then the smallest per-rank \
        batch that keeps --efficiency at --max-nodes. Writes scale.json and scale.svg to --out.
        """)

    @Option(help: "bench.json of a `cohort bench` run with a 1-rank configuration.")
    var bench: String
    @Option(help: "Link bandwidths in Gbit/s, comma-separated.")
    var bandwidth: String = "10,100"
    @Option(help: "Latency of one message in microseconds.")
    var latencyUs: Double = 10
    @Option(help: "Samples per rank per step (default: the benchmark's global batch).")
    var perRankBatch: Int?
    @Option(help: "Largest number of nodes (a power of two).")
    var maxNodes: Int = 512
    @Option(help: "Efficiency the smallest-batch answer must keep.")
    var efficiency: Double = 0.9
    @Option(help: "Directory for scale.json and scale.svg.")
    var out: String = "runs/scale"

    var bandwidths: [Double] { commaSeparated(bandwidth) ?? [] }

    func validate() throws {
        guard let bandwidths: [Double] = commaSeparated(bandwidth), !bandwidths.isEmpty,
              bandwidths.allSatisfy({ $0 > 0 && $0 < 1e9 }) else {
            throw ValidationError("--bandwidth must be positive numbers (Gbit/s) separated by commas, got '\(bandwidth)'")
        }
        guard latencyUs >= 0, latencyUs.isFinite else { throw ValidationError("--latency-us must be >= 0") }
        guard maxNodes >= 1, maxNodes <= 1 << 20 else { throw ValidationError("--max-nodes must be in 1...2^20") }
        guard efficiency > 0, efficiency < 1 else { throw ValidationError("--efficiency must be between 0 and 1") }
        if let perRankBatch, perRankBatch <= 0 { throw ValidationError("--per-rank-batch must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let study = try ScalingStudy(benchPath: bench, bandwidthsGbit: bandwidths, latency: latencyUs * 1e-6,
                                         perRankBatch: perRankBatch, maxNodes: maxNodes, efficiency: efficiency)
            try study.run(outputDirectory: out) { say($0) }
        }
    }
}
