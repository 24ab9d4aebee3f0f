import CohortAnalysis
import CohortBase
import CohortRun
import Foundation

/// The report's section "Beside the reference": for every grid point the reference gives,
/// its best loss and best accuracy beside this sweep's run of that point and the
/// difference; the best configurations of both; and the best model's activation statistics.
struct ReferenceComparison {
    let reference: ReferenceSweep
    /// The reference file, as given, and what it says it was taken from.
    let file: String, source: String?
    let report: SweepReport

    func markdown() -> [String] {
        var lines = ["## Beside the reference", "",
                     "The reference ([\((file as NSString).lastPathComponent)](\(relativePath(from: report.directory, to: file)))"
                     + "\(source.map { ", from \($0)" } ?? "")) gives \(reference.points.count) of this "
                     + "sweep's \(report.runs.count) points. Figures are the best over epochs (minimum loss, maximum accuracy "
                     + "as a fraction); Δ is this sweep's minus the reference's.", ""]
        lines += bestConfigurations()
        for split in ["Test", "Train"] { lines += table(split) }
        lines += notes()
        lines += activations()
        return lines
    }

    /// The run of this sweep at a reference point.
    func run(at point: ReferencePoint) -> SweepReport.Run? { report.runs.first { point.flags.match($0.point) } }

    /// The point's flags in the grid's order.
    func label(_ point: ReferencePoint) -> String { run(at: point)?.point.label ?? point.flags.label }

    func bestConfigurations() -> [String] {
        guard let point = reference.points.first(where: { $0.flags == reference.best }) else { return [] }
        var lines = ["| | configuration | best test loss | Δ | best test acc | Δ |", "| --- | --- | --- | --- | --- | --- |",
                     "| reference's best | `\(label(point))` | \(figure(point.figures.testLoss)) | | "
                     + "\(figure(point.figures.testAccuracy)) | |"]
        let here = run(at: point)
        lines.append("| here, the same configuration | `\(label(point))` | "
                     + compared(here?.best?.testLoss, point.figures.testLoss) + " | "
                     + compared(here?.best?.testAccuracy, point.figures.testAccuracy) + " |")
        if let best = report.best {
            lines.append("| here, the best | `\(best.point.label)` | " + compared(best.best?.testLoss, point.figures.testLoss) + " | "
                         + compared(best.best?.testAccuracy, point.figures.testAccuracy) + " |")
        }
        return lines + [""]
    }

    /// One row per reference point, in grid order: loss and accuracy of `split`.
    func table(_ split: String) -> [String] {
        let axes = report.spec.axes.map(\.flag)
        var lines = ["### \(split)", "",
                     "| " + axes.joined(separator: " | ") + " | loss: reference | loss: here | Δ | acc: reference | acc: here | Δ |",
                     "|" + String(repeating: " --- |", count: axes.count + 6)]
        let rows = reference.points.map { point in (point, run(at: point)) }
            .sorted { ($0.1?.point.index ?? .max) < ($1.1?.point.index ?? .max) }
        for (point, run) in rows {
            let values = axes.map { axis in run?.point.settings.first { $0.flag == axis }?.value ?? "" }
            let (loss, accuracy) = split == "Test" ? (point.figures.testLoss, point.figures.testAccuracy)
                                                   : (point.figures.trainLoss, point.figures.trainAccuracy)
            let best = run?.best
            let (lossHere, accuracyHere) = split == "Test" ? (best?.testLoss, best?.testAccuracy) : (best?.trainLoss, best?.trainAccuracy)
            lines.append("| " + values.joined(separator: " | ") + " | \(figure(loss)) | " + compared(lossHere, loss)
                         + " | \(figure(accuracy)) | " + compared(accuracyHere, accuracy) + " |")
        }
        return lines + [""]
    }

    func notes() -> [String] {
        let pointNotes = reference.points.compactMap { point in point.note.map { "- `\(label(point))`: \($0)" } }
        let all = reference.notes.map { "- \($0)" } + pointNotes
        return all.isEmpty ? [] : ["On the reference:", ""] + all + [""]
    }

    /// The reference's activation statistics beside those of this sweep's best run, when
    /// `cohort visualize` has written them.
    func activations() -> [String] {
        guard !reference.activations.isEmpty, let best = report.best,
              let visualization = try? JSONFile.read(Visualization.self, path: "\(best.directory)/visualize/visualize.json")
        else { return [] }
        var lines = ["### Activation statistics", "",
                     "The reference's best model beside this sweep's best run (`\(best.point.label)`), over the test set.", "",
                     "| activations | mean: reference | mean: here | Δ | std: reference | std: here | Δ |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
        for activation in reference.activations {
            let here = visualization.activations.first { $0.name == activation.name }
            lines.append("| \(activation.name) | \(figure(activation.mean)) | " + compared(here?.mean, activation.mean)
                         + " | \(figure(activation.std)) | " + compared(here?.std, activation.std) + " |")
        }
        return lines + [""]
    }

    /// "here | Δ" as two table cells.
    func compared(_ here: Double?, _ reference: Double) -> String {
        guard let here else { return "n/a | n/a" }
        return "\(figure(here)) | " + String(format: "%+.4f", here - reference)
    }

    func figure(_ v: Double?) -> String { report.figure(v) }
}
