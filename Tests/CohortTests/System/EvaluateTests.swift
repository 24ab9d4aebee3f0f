import CohortAnalysis
import CohortBase
import CohortData
import CohortReporting
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// `cohort evaluate` and `cohort predict` on a finished run.
    @Suite(.serialized) struct EvaluateTests {
        let scratch = ScratchDirectory("cohort-evaluate")

        /// A CNN trained 2 epochs on hard synthetic data (few samples), so that the test accuracy is neither 0 nor 1.
        func trainedRun(_ extra: [String] = [], name: String = "run") throws -> String {
            let out = "\(scratch.path)/\(name)"
            if !FileManager.default.fileExists(atPath: "\(out)/summary.json") {
                let result = try CohortBinary.run(["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "128",
                                                   "--test-limit", "200", "--batch-size", "32", "--epochs", "2",
                                                   "--optimizer", "sgd", "--lr", "0.01", "--quiet", "--out", out] + extra)
                #expect(result.status == 0, "\(result.stderr)")
            }
            return out
        }

        @Test func evaluateGivesTheAccuracyTheRunRecorded() throws {
            let run = try trainedRun()
            let summary = try #require(try RunSummary.read(directory: run))
            let result = try CohortBinary.run(["evaluate", "--run", run])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(String(format: "accuracy %.2f%%", 100 * summary.final.testAccuracy)), "\(result.stdout)")
            let evaluation = try JSONFile.read(Evaluation.self, path: "\(run)/evaluate/evaluation.json")
            #expect(evaluation.accuracy == summary.final.testAccuracy && evaluation.images == 200)
            #expect(abs(evaluation.loss - summary.final.testLoss) <= 1e-6 * summary.final.testLoss)
            // Rows are the true classes: their sums are the class counts, the diagonal the correct answers.
            #expect(evaluation.confusion.flatMap { $0 }.reduce(0, +) == 200)
            let correct = evaluation.confusion.indices.map { evaluation.confusion[$0][$0] }.reduce(0, +)
            #expect(Double(correct) / 200 == evaluation.accuracy)
            for (row, accuracy) in zip(evaluation.confusion, evaluation.classAccuracy) where row.reduce(0, +) > 0 {
                let c = evaluation.confusion.firstIndex(of: row)!
                #expect(accuracy == Double(row[c]) / Double(row.reduce(0, +)))
            }
            let picture = try String(contentsOfFile: "\(run)/evaluate/confusion.svg", encoding: .utf8)
            #expect(picture.hasPrefix("<svg") && picture.contains(">class 9<") && picture.hasSuffix("</svg>\n"))
            // The last checkpoint holds the final parameters: the same figures.
            let last = try #require(Checkpoint.list(run: run).first)
            let fromCheckpoint = try CohortBinary.run(["evaluate", "--run", "\(Checkpoint.directory(run: run))/\(last)",
                                                       "--out", "\(scratch.path)/from-checkpoint"])
            #expect(fromCheckpoint.status == 0, "\(fromCheckpoint.stderr)")
            #expect(try JSONFile.read(Evaluation.self, path: "\(scratch.path)/from-checkpoint/evaluation.json") == evaluation)
            let missing = try CohortBinary.run(["evaluate", "--run", "\(scratch.path)/nothing"])
            #expect(missing.status == 1 && missing.stderr.contains("no such run directory"), "\(missing.stderr)")
        }

        /// A run evaluated with flip TTA is evaluated so again: the same accuracy, and a confusion
        /// matrix of the averaged probabilities' predictions. The loss within float rounding of
        /// per-image losses added in another order, as above.
        @Test func evaluateUsesTheRunsTestTimeAugmentation() throws {
            let run = try trainedRun(["--tta", "flip"], name: "flip")
            let summary = try #require(try RunSummary.read(directory: run))
            for (tta, out) in [([String](), "run's"), (["--tta", "flip"], "flip"), (["--tta", "none"], "none")] {
                let result = try CohortBinary.run(["evaluate", "--run", run, "--out", "\(scratch.path)/\(out)"] + tta)
                #expect(result.status == 0, "\(result.stderr)")
            }
            let runs = try JSONFile.read(Evaluation.self, path: "\(scratch.path)/run's/evaluation.json")
            #expect(runs.accuracy == summary.final.testAccuracy)
            #expect(abs(runs.loss - summary.final.testLoss) <= 1e-6 * summary.final.testLoss)
            #expect(try JSONFile.read(Evaluation.self, path: "\(scratch.path)/flip/evaluation.json") == runs)
            let correct = runs.confusion.indices.map { runs.confusion[$0][$0] }.reduce(0, +)
            #expect(Double(correct) / 200 == runs.accuracy)
            // Without TTA, one forward pass: another loss (the mirrors' probabilities left out).
            let plain = try JSONFile.read(Evaluation.self, path: "\(scratch.path)/none/evaluation.json")
            #expect(plain.images == 200 && plain.loss != runs.loss)
        }

        /// A PNG of test image 0 gives what `--index 0` gives; other sizes and grey images are converted.
        @Test func predictGivesTheTopClasses() throws {
            let run = try trainedRun()
            var config = try RunRecord.read(directory: run).config
            config.testLimit = 1
            let test = try config.loadData(for: config.modelSpec()).test
            var picture = RGBImage(width: 32, height: 32)
            for p in 0..<1024 { for c in 0..<3 { picture.pixels[3 * p + c] = test.pixels[c * 1024 + p] } }
            let file = "\(scratch.path)/image0.png", small = "\(scratch.path)/small.png"
            try picture.png().write(to: URL(fileURLWithPath: file))
            try RGBImage(width: 12, height: 20, fill: (90, 90, 90)).png().write(to: URL(fileURLWithPath: small))
            let result = try CohortBinary.run(["predict", "--run", run, "--index", "0", "--top", "4", file, small])
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(result.stdout)")
            let answer = { (line: String) in line.split(separator: ":", maxSplits: 1).last.map(String.init) }
            #expect(lines[0].hasPrefix("\(file): ") && lines[2].hasPrefix("test image 0 (class \(test.labels[0])): "))
            #expect(answer(lines[0]) == answer(lines[2]), "\(result.stdout)")
            #expect(lines.allSatisfy { $0.components(separatedBy: "%").count == 5 }, "four classes each")
            let bad = try CohortBinary.run(["predict", "--run", run, "\(run)/config.json"])
            #expect(bad.status == 1 && bad.stderr.contains("config.json: neither a JPEG nor a PNG image"), "\(bad.stderr)")
            let outside = try CohortBinary.run(["predict", "--run", run, "--index", "200"])
            #expect(outside.status == 64 && outside.stderr.contains("the test set has 200 images"), "\(outside.stderr)")
        }
    }
}
