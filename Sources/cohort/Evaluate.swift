import ArgumentParser
import CohortAnalysis
import CohortBase
import CohortData
import Foundation

/// `cohort evaluate`: a trained model's figures on its test set, per class.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Test loss and accuracy of a trained run or checkpoint, per class, with the confusion matrix.",
        discussion: """
        Reads the model and its settings from the run (--run RUN, RUN/checkpoints/step-N, or a \
        .safetensors file in either) and evaluates it on the test set the run used, or on \
        --dataset/--data-dir, with the run's test-time augmentation (--tta). Prints loss, accuracy and the accuracy of every class, and writes \
        evaluation.json and confusion.svg (rows: true class, columns: predicted) to --out.
        """)

    @Option(name: .customLong("run"), help: "Run directory, one of its checkpoints, or a .safetensors file in either.")
    var path: String
    @Option(help: "Evaluate on this data set instead of the run's (same image shape and classes).")
    var dataset: DatasetKind?
    @Option(help: "Directory with the data set's files (default: the run's).")
    var dataDir: String?
    @Option(help: "Use only the first N test images (default: as many as the run used).")
    var limit: Int?
    @Option(help: "Test-time augmentation: none, or flip (the mean of each image's and its mirror's probabilities; default: the run's --tta).")
    var tta: TestTimeAugmentation?
    @Option(help: "Output directory (default: RUN/evaluate).")
    var out: String?

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive, got \(limit)") }
    }

    func run() throws {
        try reportingErrors {
            let trained = try TrainedModel(path: path, dataset: dataset, dataDirectory: dataDir, testLimit: limit)
            let names = trained.test.classNames
            let evaluation = Evaluation(network: trained.network, data: trained.test, classNames: names,
                                        augmentation: tta ?? trained.augmentation)
            let directory = out ?? "\(trained.runDirectory)/evaluate"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try JSONFile.write(evaluation, to: "\(directory)/evaluation.json")
            try writeAtomically(evaluation.confusionSVG(), to: "\(directory)/confusion.svg")
            // A text's figures are per position of its windows (the classes its bytes, written as in JSON).
            let samples = trained.test.windows.map { "window(s) of \($0.length) bytes" } ?? "image(s)"
            say(String(format: "evaluate: %d test %@ of %@: loss %.4f, accuracy %.2f%%", evaluation.images, samples,
                       trained.dataset.rawValue, evaluation.loss, 100 * evaluation.accuracy))
            for (name, accuracy) in zip(names, evaluation.classAccuracy) {
                let shown = trained.test.windows == nil ? name : name.debugDescription  // "\n" for a newline
                say("  \(shown.padding(toLength: 12, withPad: " ", startingAt: 0)) "
                    + (accuracy.map { String(format: "%6.2f%%", 100 * $0) } ?? "   n/a (no image)"))
            }
            say("evaluate: written to \(directory) (evaluation.json, confusion.svg)")
        }
    }
}
