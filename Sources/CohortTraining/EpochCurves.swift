import CohortBase
import CohortReporting
import CohortRun

/// A run's curves per epoch, `loss.svg` and `accuracy.svg` in its directory: train and test.
enum EpochCurves {
    static func write(_ epochs: [EpochMetrics], title: String, in directory: RunDirectory) throws {
        func chart(_ what: String, yLabel: String, _ train: (EpochMetrics) -> Double, _ test: (EpochMetrics) -> Double)
            -> LineChart {
            LineChart(title: "\(title): \(what)", xLabel: "epoch", yLabel: yLabel, series: [
                .init(name: "train", color: "#1f77b4", points: epochs.map { (Double($0.epoch), train($0)) }),
                .init(name: "test", color: "#d62728", points: epochs.map { (Double($0.epoch), test($0)) }),
            ])
        }
        try writeAtomically(chart("loss", yLabel: "cross-entropy loss", \.trainLoss, \.testLoss).svg(),
                            to: directory.file("loss.svg"))
        try writeAtomically(chart("accuracy", yLabel: "accuracy", \.trainAccuracy, \.testAccuracy).svg(),
                            to: directory.file("accuracy.svg"))
    }
}
