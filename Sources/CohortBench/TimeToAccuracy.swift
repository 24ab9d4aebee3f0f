import CohortBase
import CohortLaunch
import CohortReporting
import CohortRun
import Foundation

/// `cohort bench --to-accuracy A`: the same training run to a test accuracy once per rank
/// count (`cohort train --target-accuracy A`, under mpirun, or on the first N slots of a
/// hostfile), reported side by side as MLPerf Training reports speed: the time to the target,
/// beside the samples/s that a throughput benchmark shows and the epochs each count needed
/// (more ranks often mean a larger global batch, which may need more epochs).
public struct TimeToAccuracyBenchmark {
    public var target: Double
    public var rankCounts: [Int]
    /// `cohort train` flags of every run (without `--out` and `--target-accuracy`).
    public var trainArguments: [String]
    public var outputDirectory: String
    public var hostfile: Hostfile?
    public var iface: String?

    public init(target: Double, rankCounts: [Int], trainArguments: [String], outputDirectory: String) {
        self.target = target; self.rankCounts = rankCounts; self.trainArguments = trainArguments
        self.outputDirectory = outputDirectory
    }

    /// One rank count's run, as the report shows it.
    public struct Row: Codable, Sendable {
        public var ranks: Int, threadsPerRank: Int, globalBatch: Int
        /// The first evaluation at or above the target (nil: never reached).
        public var reached: EvaluationRecord?
        /// The run's last evaluation, and its best test accuracy.
        public var last: EvaluationRecord
        public var bestTestAccuracy: Double
        /// Samples trained per second of training (evaluation left out), to the last evaluation.
        public var samplesPerSecond: Double
        /// Against the first rank count: samples/s, time to the target (nil where either never
        /// reached it) and the epochs it needed (the first count's over this one's: 1 when both
        /// needed as many, below 1 when this one needed more).
        public var throughputSpeedup: Double
        public var timeToAccuracySpeedup: Double?
        public var statisticalEfficiency: Double?
        public var evaluations: [EvaluationRecord]

        enum CodingKeys: String, CodingKey {
            case ranks, threadsPerRank = "threads_per_rank", globalBatch = "global_batch", reached, last
            case bestTestAccuracy = "best_test_acc", samplesPerSecond = "samples_per_s"
            case throughputSpeedup = "throughput_speedup", timeToAccuracySpeedup = "time_to_accuracy_speedup"
            case statisticalEfficiency = "statistical_efficiency", evaluations
        }
    }

    public struct Report: Codable, Sendable {
        public var target: Double
        public var trainArguments: [String]
        public var rows: [Row]

        enum CodingKeys: String, CodingKey { case target, trainArguments = "train_arguments", rows }
    }

    public func run(log: (String) -> Void) throws -> Report {
        try createDirectory(outputDirectory)
        var rows: [Row] = []
        for ranks in rankCounts {
            let directory = "\(outputDirectory)/ranks-\(ranks)"
            // Each measurement starts afresh: a previous one's checkpoints would be resumed.
            try? FileManager.default.removeItem(atPath: directory)
            log("bench: \(ranks) rank(s) to \(Self.percent(target)) test accuracy -> \(directory)")
            let placement = try hostfile?.placements(ranks: ranks, iface: iface)[0] ?? .local
            let process = try placement.start(ranks: ranks, arguments: ["train"] + trainArguments
                + ["--target-accuracy", "\(target)", "--out", directory])
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw CohortError.failure("training with \(ranks) rank(s) failed (exit \(process.terminationStatus)); "
                                          + "its run directory is \(directory)")
            }
            rows.append(try Self.row(directory: directory, ranks: ranks, first: rows.first))
        }
        let report = Report(target: target, trainArguments: trainArguments, rows: rows)
        try JSONFile.write(report, to: file("to-accuracy.json"))
        try writeAtomically(chart(rows).svg(), to: file("to-accuracy.svg"))
        log(Self.table(report))
        log("written: \(file("to-accuracy.json")), \(file("to-accuracy.svg"))")
        return report
    }

    func file(_ name: String) -> String { "\(outputDirectory)/\(name)" }

    /// The row of the finished run in `directory`, compared with the first rank count's.
    static func row(directory: String, ranks: Int, first: Row?) throws -> Row {
        guard let summary = try RunSummary.read(directory: directory) else {
            throw CohortError.failure("\(directory): the run wrote no summary.json")
        }
        let record = try RunRecord.read(directory: directory)
        let evaluations = try EvaluationRecord.read(directory: directory)
        guard let last = evaluations.last else { throw CohortError.failure("\(directory): the run made no evaluation") }
        let reached = summary.target?.reached
        let samples = Double(last.step * record.config.batchSize)
        var row = Row(ranks: ranks, threadsPerRank: record.threadsPerRank, globalBatch: record.config.batchSize,
                      reached: reached, last: last, bestTestAccuracy: summary.best.testAccuracy,
                      samplesPerSecond: samples / max(last.seconds - last.evalSeconds, 1e-9), throughputSpeedup: 1,
                      timeToAccuracySpeedup: reached == nil ? nil : 1, statisticalEfficiency: reached == nil ? nil : 1,
                      evaluations: evaluations)
        if let first {
            row.throughputSpeedup = row.samplesPerSecond / first.samplesPerSecond
            if let mine = reached, let theirs = first.reached {
                row.timeToAccuracySpeedup = theirs.seconds / mine.seconds
                row.statisticalEfficiency = theirs.epoch / mine.epoch
            } else {
                (row.timeToAccuracySpeedup, row.statisticalEfficiency) = (nil, nil)
            }
        }
        return row
    }

    /// The printed table: a line per rank count.
    public static func table(_ report: Report) -> String {
        var lines = ["to \(percent(report.target)) test accuracy:",
                     "ranks  threads  batch  samples/s  speedup  time to target  without eval  epochs  "
                     + "time-to-accuracy speedup  epochs ratio"]
        for r in report.rows {
            var line = String(format: "%5d  %7d  %5d  %9.1f  %7.2f  ", r.ranks, r.threadsPerRank, r.globalBatch,
                              r.samplesPerSecond, r.throughputSpeedup)
            if let reached = r.reached {
                // Right-aligned under their headings (String(format:) does not pad a %@).
                let ratios = [(r.timeToAccuracySpeedup, 24), (r.statisticalEfficiency, 12)].map { ratio, width in
                    let text = ratio.map { String(format: "%.2f", $0) } ?? "n/a"
                    return String(repeating: " ", count: max(0, width - text.count)) + text
                }
                line += String(format: "%12.1f s  %10.1f s  %6.2f  ", reached.seconds, reached.seconds - reached.evalSeconds,
                               reached.epoch) + ratios.joined(separator: "  ")
            } else {
                line += String(format: "not reached in %.2f epochs (%.1f s; best %@)", r.last.epoch, r.last.seconds,
                               percent(r.bestTestAccuracy))
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Test accuracy against wall-clock seconds, a line per rank count, and the target.
    func chart(_ rows: [Row]) -> LineChart {
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        let longest = rows.map(\.last.seconds).max() ?? 1
        return LineChart(title: "time to \(Self.percent(target)) test accuracy", xLabel: "seconds from the first step",
                         yLabel: "test accuracy", series: rows.enumerated().map { i, row in
            .init(name: "\(row.ranks) rank(s)", color: colors[i % colors.count],
                  points: row.evaluations.map { ($0.seconds, $0.testAccuracy) })
        } + [.init(name: "target", color: "#999999", points: [(0, target), (longest, target)])])
    }

    static func percent(_ fraction: Double) -> String { String(format: "%.2f%%", 100 * fraction) }
}
