import ArgumentParser
import CohortBase
import CohortAnalysis
import CohortData
import CohortDistributed
import CohortLaunch
import CohortSweep
import Foundation

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
    @Option(help: "Inside a Slurm allocation: start each run with srun (one rank per task) or Open MPI's mpirun.")
    var slurm: Placement.SlurmLauncher?
    @Option(help: "Spread runs over the slots of this Open MPI hostfile: disjoint groups of --ranks slots, one run each at a time.")
    var hostfile: String?
    @Option(help: "With --hostfile: keep MPI's TCP traffic on this interface or subnet.")
    var iface: String?
    @Option(help: "Threads per rank in every run (default: cores / ranks on the node).")
    var threads: Int?
    @Option(help: ArgumentHelp("Set a reference's figures beside the report's (see `cohort report --reference`).",
                               valueName: "file"))
    var reference: String?
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
        guard [launcher != nil, hostfile != nil, slurm != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("give one of --launcher, --slurm and --hostfile")
        }
        if iface != nil && hostfile == nil { throw ValidationError("--iface goes with --hostfile") }
        do {
            let spec = try makeSpec()
            if let point, !(0..<spec.points.count).contains(point) {
                throw ValidationError("--point \(point): the grid has points 0...\(spec.points.count - 1)")
            }
            if let reference {
                _ = try ReferenceResults.read(path: reference).sweep(for: spec, file: reference)
            }
        } catch let error as CohortError { throw ValidationError(error.description) }
    }

    /// Where the runs go: this machine, a launcher, or groups of the hostfile's slots.
    func placements(ranks: Int) throws -> [Placement] {
        if let slurm { return [.slurm(slurm)] }
        if let launcher {
            let words = launcher.split(separator: " ").map(String.init)
            guard !words.isEmpty else { throw CohortError.settings("--launcher is empty") }
            return [.launcher(words)]
        }
        guard let hostfile else { return [.local] }
        return try Hostfile(path: hostfile).placements(ranks: ranks, iface: iface)
    }

    /// One point's `cohort train` arguments, checked as `cohort train` would; returns its epochs.
    static func checkPoint(_ arguments: [String], ranks: Int) throws -> Int {
        let train: Train
        do { train = try Train.parse(Array(arguments.dropFirst())) } catch {
            throw CohortError.settings(Train.message(for: error))
        }
        let config = try train.trainingConfig()
        try config.validate(worldSize: ranks)
        if config.dataset == .text {
            guard let file = config.dataFile, FileManager.default.isReadableFile(atPath: file) else {
                throw CohortError.settings("--data-file \(config.dataFile ?? ""): cannot read the file")
            }
        } else if config.dataset != .synthetic {
            do { _ = try DatasetSource.directory(for: config.dataset, dataDirectory: config.dataDir) } catch {
                throw CohortError.settings("\(error)")
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
            let outcome = try runner.run(only: point.map { [$0] }) { say($0) }
            if let point {
                if let stopped = outcome.stopped.first {
                    throw CohortError.failure("point \(point) (\(stopped.label)) stopped by a signal; run the same command "
                                              + "again to continue it")
                }
                guard outcome.failed.isEmpty else { throw CohortError.failure("point \(point) (\(outcome.failed[0].label)) failed") }
                say("sweep: point \(point) done; `cohort report \(directory)` once every point has run")
                return
            }
            let report = try SweepReport(directory: directory, referenceFile: reference)
            if !outcome.stopped.isEmpty {
                say("sweep: report so far written to \(try report.write())")
                throw CohortError.failure("stopped by a signal with \(outcome.unfinished.count) point(s) not finished; "
                                          + "run the same command again to finish them")
            }
            if !noVisualize, let best = report.best {
                do {
                    let trained = try TrainedModel(path: best.directory)
                    _ = try Visualizer.run(trained, settings: VisualizeSettings(), directory: "\(best.directory)/visualize") { say($0) }
                } catch {
                    say("sweep: could not visualise the best run (\(error)); the report goes without it")
                }
            }
            say("sweep: report written to \(try report.write())")
            if !outcome.failed.isEmpty {
                throw CohortError.failure("\(outcome.failed.count) point(s) failed: "
                                          + outcome.failed.map(\.label).joined(separator: "; ")
                                          + ". Run the same command again to retry them.")
            }
        }
    }
}
