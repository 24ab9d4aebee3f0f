import ArgumentParser
import CohortBase
import CohortBench
import CohortLaunch
import CohortRun
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps for several rank counts; report speedup, phases and GFLOP/s.",
        discussion: """
        Runs warm-up and timed steps on synthetic data of the model's input shape, once per \
        rank count (N > 1 under mpirun), after measuring this machine's sgemm rate. Writes \
        bench.json and bench.svg to --out and prints a table.

        With --to-accuracy A it trains instead, once per rank count, until the test accuracy \
        reaches A (`cohort train --target-accuracy A` with the model and parallel flags given \
        here and the `cohort train` flags after `--`, into OUT/ranks-N), and reports the time \
        to A, the samples/s and the epochs of each count side by side: to-accuracy.json and \
        to-accuracy.svg (test accuracy against time).
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var parallel: ParallelOptions
    @OptionGroup var data: DataFlags
    @OptionGroup var timing: TimingOptions
    @Option(help: settingHelp(.clipGradNorm))
    var clipGradNorm: Double?
    @Flag(help: ArgumentHelp("Time the loader alone (reading, decoding, augmenting and normalising batches of --dataset "
                             + "with --loader-threads), in samples/s, in this process."))
    var dataOnly = false
    @Option(help: "Rank counts to measure, comma-separated.")
    var ranks: String = "1"
    @Option(help: "Seconds spent measuring the machine's sgemm rate.")
    var sgemmSeconds: Double = 0.5
    @Option(help: "Directory for bench.json and bench.svg.")
    var out: String = "runs/bench"
    @Option(help: "Spread N ranks over the first N slots of this Open MPI hostfile (over TCP) instead of this machine.")
    var hostfile: String?
    @Option(help: "With --hostfile: keep MPI's TCP traffic on this interface or subnet.")
    var iface: String?
    @Option(help: ArgumentHelp("Train to this test accuracy (a fraction in (0, 1]) at each rank count and compare "
                               + "the times to it.", valueName: "fraction"))
    var toAccuracy: Double?
    @Argument(parsing: .postTerminator, help: "With --to-accuracy: `cohort train` flags for every run, after `--`.")
    var trainFlags: [String] = []
    /// A worker: the settings of the configuration it measures, as JSON.
    @Option(help: .hidden)
    var workerSettings: String?
    @Option(help: .hidden)
    var result: String?
    @Option(help: .hidden)
    var calibrateResult: String?

    func settings() throws -> BenchSettings {
        if let workerSettings {
            return try JSONFile.decode(BenchSettings.self, from: Data(workerSettings.utf8), source: "--worker-settings")
        }
        return try BenchSettings.from(given: modelOptions.givenSettings.merging(parallel.givenSettings) { $1 }
            .merging(data.givenSettings) { $1 }.merging(timing.givenSettings) { $1 })
    }

    var rankCounts: [Int] { commaSeparated(ranks) ?? [] }

    /// With --to-accuracy: every run's `cohort train` flags, the model and parallel flags given
    /// to the bench first.
    var trainArguments: [String] {
        let given = modelOptions.givenSettings.merging(parallel.givenSettings) { $1 }.merging(data.givenSettings) { $1 }
        return given.keys.sorted().flatMap { key -> [String] in
            let flag = "--" + TrainingConfig.flagName(key)
            switch given[key]! {
            case .bool(true): return [flag]
            case .string(let text): return [flag, text]
            case let value: return [flag, "\(value)"]
            }
        } + trainFlags
    }

    func validateTrainingToAccuracy(_ target: Double, rankCounts: [Int]) throws {
        guard target.isFinite, target > 0, target <= 1 else {
            throw ValidationError("--to-accuracy is a fraction of the test set in (0, 1] (0.717 for 71.7%), got \(target)")
        }
        guard timing.givenSettings.isEmpty else { throw ValidationError("--steps and --warmup time steps; --to-accuracy trains") }
        let own = ["--out", "--target-accuracy", "--resume"]
        if let flag = trainFlags.first(where: { argument in own.contains { argument == $0 || argument.hasPrefix($0 + "=") } }) {
            throw ValidationError("\(flag) is set by `cohort bench --to-accuracy` itself (the runs go to OUT/ranks-N)")
        }
        try validating {
            for n in rankCounts { _ = try Sweep.checkPoint(["train"] + trainArguments + ["--out", out], ranks: n) }
            if let hostfile, let most = rankCounts.max() { _ = try Hostfile(path: hostfile).placements(ranks: most, iface: iface) }
        }
    }

    func validate() throws {
        guard let counts: [Int] = commaSeparated(ranks), !counts.isEmpty, counts.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            throw ValidationError("--ranks must be positive integers separated by commas, got '\(ranks)'")
        }
        if let toAccuracy { return try validateTrainingToAccuracy(toAccuracy, rankCounts: counts) }
        guard trainFlags.isEmpty else { throw ValidationError("flags after `--` go with --to-accuracy") }
        guard sgemmSeconds > 0, sgemmSeconds <= 3600 else {
            throw ValidationError("--sgemm-seconds must be in (0, 3600], got \(sgemmSeconds)")
        }
        try validating {
            let settings = try settings()
            for n in counts { try settings.validate(worldSize: n) }
            // Enough slots, before any measurement, not when the largest configuration's turn comes.
            if let hostfile, let most = counts.max() { _ = try Hostfile(path: hostfile).placements(ranks: most, iface: iface) }
        }
    }

    func run() throws {
        if let calibrateResult {
            // A worker timing allreduces for the link model.
            try runOnEveryRank { try BenchmarkRunner.timeAllreduce(communicator: $0, writingTo: calibrateResult) }
        } else if let result {
            // A worker: one configuration, on every rank of this MPI job (or alone).
            let settings = try settings()
            try runOnEveryRank { communicator in
                let measurement = try BenchmarkRunner.run(settings: settings, communicator: communicator)
                if communicator.rank == 0 { try JSONFile.write(measurement, to: result) }
            }
        } else if dataOnly {
            try reportingErrors {
                let settings = try settings()
                let rate = try BenchmarkRunner.loaderRate(settings: settings)
                say(String(format: "cohort bench --data-only: %.0f samples/s (%d loader thread(s), batch %d, %d steps)", rate,
                           settings.training.loaderThreads, settings.training.batchSize, settings.steps))
            }
        } else if let toAccuracy {
            try reportingErrors {
                var benchmark = TimeToAccuracyBenchmark(target: toAccuracy, rankCounts: rankCounts,
                                                        trainArguments: trainArguments, outputDirectory: out)
                benchmark.hostfile = try hostfile.map { try Hostfile(path: $0) }
                benchmark.iface = iface
                _ = try benchmark.run { say($0) }
            }
        } else {
            try reportingErrors {
                var suite = BenchmarkSuite(settings: try settings(), rankCounts: rankCounts, outputDirectory: out)
                suite.sgemmSeconds = sgemmSeconds
                suite.iface = iface
                suite.hostfile = try hostfile.map { try Hostfile(path: $0) }
                try suite.run { say($0) }
            }
        }
    }
}
