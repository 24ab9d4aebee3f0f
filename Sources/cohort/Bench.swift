import ArgumentParser
import CohortBase
import CohortBench
import CohortLaunch
import Foundation

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
    @OptionGroup var timing: TimingOptions
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
            .merging(timing.givenSettings) { $1 })
    }

    var rankCounts: [Int] { commaSeparated(ranks) ?? [] }

    func validate() throws {
        guard let counts: [Int] = commaSeparated(ranks), !counts.isEmpty, counts.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else {
            throw ValidationError("--ranks must be positive integers separated by commas, got '\(ranks)'")
        }
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
