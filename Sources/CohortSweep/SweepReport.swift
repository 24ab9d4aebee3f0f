import CohortBase
import CohortAnalysis
import CohortRun
import Foundation

/// `cohort report SWEEP_DIR`: a Markdown report of a sweep in the manner of the reference
/// report, written to `SWEEP_DIR/report.md`, with pictures linked relative to it (so it
/// renders on GitHub): the grid; every run's loss and accuracy curves and its best
/// loss / best accuracy for Train and Test; all runs ranked by best test accuracy; for
/// recurrent models, the cells compared; and the best run's visualisations when
/// `cohort visualize` has been run on it.
public struct SweepReport {
    /// One run of the sweep as its files record it.
    public struct Run {
        public let point: SweepPoint
        public let directory: String
        /// `summary.json` (nil: the run has not finished).
        public let summary: RunSummary?
        public let config: TrainingConfig?
        /// Test loss per epoch, from `metrics.csv`.
        public let testLosses: [Double]

        public var bestTestAccuracy: Double? { summary?.best.testAccuracy }
        var best: RunSummary.Figures? { summary?.best }
        public var model: String { config?.model ?? point.settings.first { $0.flag == "model" }?.value ?? "cnn" }
    }

    public let directory: String
    public let spec: SweepSpec
    public let runs: [Run]
    /// What a reference report found for this sweep's points (`--reference`).
    let reference: (sweep: ReferenceSweep, file: String, source: String?)?

    /// `referenceFile`: a `ReferenceResults` JSON file with an entry for this sweep's name.
    public init(directory: String, referenceFile: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: "\(directory)/sweep.json") else {
            throw CohortError.failure("\(directory): not a sweep directory (no sweep.json)")
        }
        let spec = try SweepSpec.read(directory: directory)
        self.directory = directory
        self.spec = spec
        runs = try spec.points.map { point in
            let runDirectory = "\(directory)/runs/\(point.name)"
            let summary = try RunSummary.read(directory: runDirectory)
            let config = try? RunRecord.read(directory: runDirectory).config
            return Run(point: point, directory: runDirectory, summary: summary, config: config,
                       testLosses: Self.column("test_loss", inCSV: "\(runDirectory)/metrics.csv"))
        }
        if let file = referenceFile {
            let results = try ReferenceResults.read(path: file)
            reference = (try results.sweep(for: spec, file: file), file, results.source)
        } else {
            reference = nil
        }
    }

    /// Finished runs, best test accuracy first (ties: grid order).
    public var ranked: [Run] {
        runs.filter { $0.summary != nil }.enumerated()
            .sorted { ($0.element.bestTestAccuracy ?? -1, -$0.offset) > ($1.element.bestTestAccuracy ?? -1, -$1.offset) }
            .map(\.element)
    }

    /// The run directory of the best run, relative to the sweep directory.
    public var best: Run? { ranked.first }

    /// The target test accuracy of the sweep's runs (`--target-accuracy`), if they had one.
    var targetAccuracy: Double? { runs.lazy.compactMap { $0.summary?.target?.accuracy }.first }

    /// The finished run that reached its target soonest (wall-clock from its first step).
    public var fastestToTarget: Run? {
        runs.filter { $0.summary?.target?.reached != nil }.min { $0.summary!.target!.reached!.seconds < $1.summary!.target!.reached!.seconds }
    }

    /// `"41 s, at epoch 2.25"`, or that the run never reached its target.
    static func timeToTarget(_ target: TargetOutcome?) -> String {
        guard let target else { return "n/a" }
        guard let reached = target.reached else { return "not reached" }
        return String(format: "%.0f s, at epoch %.2f", reached.seconds, reached.epoch)
    }

    public func markdown() -> String {
        var lines = ["# Sweep \(spec.name)", ""]
        let finished = runs.filter { $0.summary != nil }.count
        lines += ["\(runs.count) run(s), \(finished) finished, each with \(spec.ranks) rank(s). "
                  + "Every run: `cohort train \(spec.fixed.joined(separator: " "))` plus its grid values.", ""]
        if !spec.axes.isEmpty {
            let width = spec.axes.map(\.values.count).max() ?? 0
            lines.append("| parameter | " + (1...max(1, width)).map { "value\($0)" }.joined(separator: " | ") + " |")
            lines.append("| --- |" + String(repeating: " --- |", count: max(1, width)))
            for axis in spec.axes {
                lines.append("| \(axis.flag) | " + (0..<max(1, width)).map { $0 < axis.values.count ? axis.values[$0] : "" }
                    .joined(separator: " | ") + " |")
            }
            lines.append("")
        }
        if let best {
            lines += ["Best: `\(best.point.label)`, with test loss \(figure(best.best?.testLoss)) and test accuracy "
                      + "\(figure(best.best?.testAccuracy)) (best over epochs).", ""]
        }
        if let target = targetAccuracy {
            lines += [fastestToTarget.map { run in
                "Fastest to the target test accuracy \(figure(target)): `\(run.point.label)`, "
                    + "\(Self.timeToTarget(run.summary?.target)) (time from the first step, evaluations included)."
            } ?? "No run reached the target test accuracy \(figure(target)).", ""]
        }
        if let reference {
            lines += ReferenceComparison(reference: reference.sweep, file: reference.file, source: reference.source,
                                         report: self).markdown()
        }
        lines += ["## All runs, by best test accuracy", ""]
        let flags = spec.axes.map(\.flag)
        let target = targetAccuracy
        lines.append("| # | " + flags.joined(separator: " | ") + (flags.isEmpty ? "" : " | ")
                     + "best train loss | best train acc | best test loss | best test acc | samples/s | train time |"
                     + (target == nil ? "" : " time to target |"))
        lines.append("| --- |" + String(repeating: " --- |", count: flags.count + 6 + (target == nil ? 0 : 1)))
        for (rank, run) in ranked.enumerated() {
            let values = run.point.settings.map(\.value)
            let seconds = run.summary?.trainSeconds
            lines.append("| \(rank + 1) | " + values.joined(separator: " | ") + (values.isEmpty ? "" : " | ")
                         + ([figure(run.best?.trainLoss), figure(run.best?.trainAccuracy), figure(run.best?.testLoss),
                             figure(run.best?.testAccuracy), run.summary.map { String(format: "%.0f", $0.samplesPerSecond) } ?? "n/a",
                             seconds.map { String(format: "%.0f s", $0) } ?? "n/a"]
                            + (target == nil ? [] : [Self.timeToTarget(run.summary?.target)])).joined(separator: " | ") + " |")
        }
        let unfinished = runs.filter { $0.summary == nil }
        if !unfinished.isEmpty {
            lines += ["", "Not finished: " + unfinished.map { "`\($0.point.label)`" }.joined(separator: ", ") + "."]
        }
        lines.append("")
        lines += cellComparison()
        lines += ["## Runs", ""]
        for run in runs {
            let relative = "runs/\(run.point.name)"
            lines += ["### \(run.point.settings.map { "\($0.flag)=\($0.value)" }.joined(separator: " & "))", ""]
            guard run.summary != nil else {
                lines += ["Not finished.", ""]
                continue
            }
            lines += ["![loss](\(relative)/loss.svg)", "", "![accuracy](\(relative)/accuracy.svg)", "",
                      "|       | Best Loss | Best Accuracy |", "| ----- | --------- | ------------- |",
                      "| Train | \(figure(run.best?.trainLoss)) | \(figure(run.best?.trainAccuracy)) |",
                      "| Test  | \(figure(run.best?.testLoss)) | \(figure(run.best?.testAccuracy)) |", ""]
        }
        if let best, let visualization = try? JSONFile.read(Visualization.self, path: "\(best.directory)/visualize/visualize.json") {
            lines += ["## Visualisation of the best run (`\(best.point.label)`)", "",
                      visualization.markdown(prefix: "runs/\(best.point.name)/visualize/")]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// For recurrent runs: each cell's best and mean best test accuracy, and its stability,
    /// the spread (max - min) of the test loss over each run's last three epochs.
    func cellComparison() -> [String] {
        let recurrent = runs.filter { $0.summary != nil && ["rnn", "lstm", "gru"].contains($0.model) }
        guard !recurrent.isEmpty else { return [] }
        var lines = ["## Recurrent cells compared", "",
                     "Stability: the spread (max - min) of the test loss over each run's last 3 epochs, "
                     + "as the median and the largest over the cell's runs; smaller is steadier.", "",
                     "| cell | runs | best test acc | mean best test acc | median spread | largest spread |",
                     "| --- | --- | --- | --- | --- | --- |"]
        for cell in ["rnn", "lstm", "gru"] {
            let group = recurrent.filter { $0.model == cell }
            guard !group.isEmpty else { continue }
            let accuracies = group.compactMap(\.bestTestAccuracy)
            let spreads = group.map { run -> Double in
                let last = run.testLosses.suffix(3).filter(\.isFinite)
                return last.isEmpty ? .nan : (last.max()! - last.min()!)
            }.sorted()
            let median = spreads.isEmpty ? .nan : spreads[spreads.count / 2]
            lines.append("| \(cell) | \(group.count) | \(figure(accuracies.max())) | "
                         + "\(figure(accuracies.isEmpty ? nil : accuracies.reduce(0, +) / Double(accuracies.count))) | "
                         + "\(figure(median)) | \(figure(spreads.last)) |")
        }
        return lines + [""]
    }

    public func write() throws -> String {
        let path = "\(directory)/report.md"
        try writeAtomically(markdown(), to: path)
        return path
    }

    func figure(_ v: Double?) -> String { v.map(Format.figure) ?? "n/a" }

    /// One column of a CSV file with a header row (empty if the file or column is missing).
    static func column(_ name: String, inCSV path: String) -> [Double] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return [] }
        let rows = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard let header = rows.first, let index = header.firstIndex(where: { $0 == name }) else { return [] }
        return rows.dropFirst().compactMap { $0.count > index ? Double($0[index]) ?? .nan : nil }
    }
}
