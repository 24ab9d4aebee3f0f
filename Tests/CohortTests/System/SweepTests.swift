import CohortAnalysis
import CohortBase
@testable import CohortBench
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// Grids from the command line and from sweep files, and whole sweeps through the binary:
    /// bad grids refused before any run, an interrupted sweep resumed, the report's numbers.
    @Suite(.serialized) struct SweepTests {
        let scratch = ScratchDirectory("cohort-sweep")

        @Test func gridAxesParse() throws {
            let axis = try GridAxis(parsing: "lr=0.001, 0.01")
            #expect(axis.flag == "lr" && axis.values == ["0.001", "0.01"])
            #expect(try GridAxis(parsing: "batch_size=32,64").flag == "batch-size")
            let spec = try SweepSpec(name: "s", ranks: 2, fixed: ["--model", "cnn"],
                                     axes: [try GridAxis(parsing: "lr=0.1,0.01"), try GridAxis(parsing: "optimizer=adam,adagrad,sgd")])
            let points = spec.points
            #expect(points.count == 6)
            // The first axis varies slowest; names are unique and ordered.
            #expect(points.map(\.label) == ["lr=0.1 optimizer=adam", "lr=0.1 optimizer=adagrad", "lr=0.1 optimizer=sgd",
                                            "lr=0.01 optimizer=adam", "lr=0.01 optimizer=adagrad", "lr=0.01 optimizer=sgd"])
            #expect(points[4].name == "4_lr-0.01_optimizer-adagrad")
            #expect(spec.arguments(for: points[4], runDirectory: "D")
                    == ["train", "--model", "cnn", "--lr", "0.01", "--optimizer", "adagrad", "--out", "D"])
            // Boolean flags: true passes the flag, false leaves it out.
            let flags = try SweepSpec(name: "s", ranks: 1, fixed: [], axes: [try GridAxis(parsing: "nesterov=true,false")])
            #expect(flags.points.map { flags.arguments(for: $0, runDirectory: "D") } == [["train", "--nesterov", "--out", "D"],
                                                                                        ["train", "--out", "D"]])
            // The specification round-trips through sweep.json, axes in their order (not sorted).
            let unsorted = try SweepSpec(name: "s", ranks: 1, fixed: [], axes: [try GridAxis(parsing: "optimizer=adam,sgd"),
                                                                                try GridAxis(parsing: "lr=0.1,0.01")])
            for s in [spec, unsorted] { #expect(try JSONFile.decode(SweepSpec.self, from: JSONFile.encode(s), source: "") == s) }
        }

        @Test(arguments: [("lr", "FLAG=VALUE"), ("lr=", "no values"), ("lr=0.1,,0.2", "value 2 of lr is empty"),
                          ("=0.1", "not a flag name"), ("--lr=0.1", "not a flag name"), ("out=a,b", "set by the sweep"),
                          ("lr=0.1,0.1", "twice")])
        func badGridAxesAreRefused(text: String, message: String) {
            #expect {
                try GridAxis(parsing: text)
            } throws: { error in
                "\(error)".contains(message)
            }
        }

        @Test func badSpecificationsAreRefused() throws {
            let lr = try GridAxis(parsing: "lr=0.1,0.2")
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 1, fixed: [], axes: [lr, lr]) }
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 1, fixed: ["--lr", "0.3"], axes: [lr]) }
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 1, fixed: ["--out", "x"], axes: []) }
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 1, fixed: ["--out=x"], axes: []) }
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 1, fixed: ["--resume", "x"], axes: []) }
            expectError(.settings) { _ = try SweepSpec(name: "s", ranks: 0, fixed: [], axes: [lr]) }
        }

        @Test func sweepFilesParse() throws {
            let file = try SweepFile(text: """
                # a comment
                name = "demo"   # trailing comment
                ranks = 2

                [train]
                model = "gru"
                batch_size = 32
                quiet = true
                nesterov = false

                [grid]
                lr = [0.01, 0.001]
                optimizer = ["adam", "adagrad",]
                """, source: "demo.toml")
            #expect(file.name == "demo" && file.ranks == 2)
            #expect(file.fixed == ["--model", "gru", "--batch-size", "32", "--quiet"])
            #expect(file.axes == [try GridAxis(flag: "lr", values: ["0.01", "0.001"]),
                                  try GridAxis(flag: "optimizer", values: ["adam", "adagrad"])])
        }

        /// A grid over a model file's parameters: each point's run gets its `--model-param`.
        @Test func sweepsVaryAModelFilesParameters() throws {
            let file = try SweepFile(text: """
                [train]
                model = "models/resnet20.toml"
                [grid]
                model_param = ["n=1,filters=8", "n=2,filters=16"]
                """, source: "depth.toml")
            let spec = try SweepSpec(name: "depth", ranks: 1, fixed: file.fixed, axes: file.axes)
            #expect(spec.points.count == 2)
            #expect(spec.arguments(for: spec.points[1], runDirectory: "runs/p1")
                    == ["train", "--model", "models/resnet20.toml", "--model-param", "n=2,filters=16", "--out", "runs/p1"])
        }

        @Test(arguments: [("[grid]\nlr = 0.1", ":2:", "is an array"), ("[train]\nlr = [0.1]", ":2:", "one value"),
                          ("[other]", ":1:", "unknown table"), ("lr = 0.1", ":1:", "unknown top-level key"),
                          ("[grid]\nlr = [0.1, abc]", ":2:", "not a value"), ("[grid]\nlr = [0.1", ":2:", "end with ]"),
                          ("[grid]\nlr = []", ":2:", "no values"), ("ranks = -1", ":1:", "positive"),
                          ("[train]\nmodel = \"cnn", ":2:", "unterminated"), ("[grid]\nlr = [1]\nlr = [2]", ":3:", "twice"),
                          ("[train]\njust a line", ":2:", "key = value")])
        func badSweepFilesNameTheLine(text: String, line: String, message: String) {
            #expect {
                try SweepFile(text: text, source: "bad.toml")
            } throws: { error in
                "\(error)".hasPrefix("bad.toml\(line)") && "\(error)".contains(message)
            }
        }

        @Test func theReportsGridFilesParse() throws {
            let root = repositoryRoot
            let cifar = try SweepFile(path: root.appendingPathComponent("sweeps/cifar10-cnn.toml").path)
            #expect(cifar.axes.map(\.flag) == ["lr", "optimizer", "epochs"])
            #expect(cifar.axes.map(\.values.count) == [3, 2, 2])
            let mnist = try SweepFile(path: root.appendingPathComponent("sweeps/mnist-rnn.toml").path)
            #expect(Set(mnist.axes.map(\.flag)) == ["model", "lr", "hidden", "optimizer"])
            #expect(mnist.axes.map(\.values.count).reduce(1, *) == 24)
        }

        /// `cohort sweep` with the binary: common flags for a tiny synthetic CNN.
        func sweep(_ directory: String, grid: [String], extra: [String] = []) throws -> ProcessOutcome {
            try CohortBinary.run(["sweep", "--out", directory] + grid.flatMap { ["--grid", $0] } + extra
                                     + ["--", "--model", "cnn", "--dataset", "synthetic", "--limit", "128", "--test-limit", "64",
                                        "--batch-size", "32", "--epochs", "2", "--quiet"])
        }

        @Test(arguments: [("lr=abc", [], "lr"), ("nosuchflag=1,2", [], "nosuchflag"), ("lr=", [], "no values"),
                          ("hidden=8,0", [], "--hidden must be positive"), ("lr=0.1", ["--ranks", "5"], "divisible")])
        func badGridsFailBeforeAnyRun(grid: String, extra: [String], message: String) throws {
            let directory = "\(scratch.path)/bad"
            let result = try sweep(directory, grid: [grid], extra: extra)
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"))
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/runs"), "nothing may run")
        }

        @Test func anInterruptedSweepResumesAndTheReportMatchesTheRuns() throws {
            let directory = "\(scratch.path)/resume"
            // Axes out of alphabetical order: the points keep the grid's order across runs.
            let grid = ["optimizer=adam,adagrad", "lr=0.01,0.001"]
            let first = try sweep(directory, grid: grid, extra: ["--no-visualize"])
            #expect(first.status == 0, "\(first.stderr)")
            let runs = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/runs").sorted()
            #expect(runs.count == 4)
            // Interrupt point 3 after the fact: its run has no summary.json, as a killed run would.
            let killed = "\(directory)/runs/\(runs[2])"
            try FileManager.default.removeItem(atPath: "\(killed)/summary.json")
            let kept = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/runs/\(runs[0])/summary.json"))
            let second = try sweep(directory, grid: grid, extra: ["--no-visualize"])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.contains("3 of 4 point(s) finished earlier, skipped"))
            #expect(second.stdout.contains("point 3/4: optimizer=adagrad lr=0.01"))
            #expect(!second.stdout.contains("point 1/4: "))
            #expect(FileManager.default.fileExists(atPath: "\(killed)/summary.json"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/runs/\(runs[0])/summary.json")) == kept)

            // A different grid on the same directory is refused, not mixed in.
            let other = try sweep(directory, grid: ["lr=0.5"], extra: ["--no-visualize"])
            #expect(other.status != 0 && other.stderr.contains("holds a different sweep"), "\(other.stderr)")

            // Every run's best figures appear in the report's table as summary.json has them.
            let report = try String(contentsOfFile: "\(directory)/report.md", encoding: .utf8)
            for run in runs {
                let best = try #require(try RunSummary.read(directory: "\(directory)/runs/\(run)")).best
                let row = [best.trainLoss, best.trainAccuracy, best.testLoss, best.testAccuracy].map(Format.figure)
                #expect(report.contains("| Train | \(row[0]) | \(row[1]) |"), "\(run)")
                #expect(report.contains("| Test  | \(row[2]) | \(row[3]) |"), "\(run)")
                #expect(report.contains("![loss](runs/\(run)/loss.svg)"))
            }
            let ranked = try SweepReport(directory: directory).ranked.compactMap(\.bestTestAccuracy)
            #expect(ranked == ranked.sorted(by: >) && ranked.count == 4)
        }

        /// SIGTERM to `cohort sweep` in the middle of a point: the point checkpoints and stops,
        /// no further point starts, the sweep names what did not finish and exits 1. The same
        /// command again resumes the point and finishes the grid: every point's parameters and
        /// figures are an uninterrupted sweep's, bit for bit, and so is the report's ranking.
        @Test func aSweepStoppedBySIGTERMFinishesLikeAnUninterruptedOne() throws {
            let grid = ["lr=0.01,0.005,0.002"]
            let flags = ["--", "--model", "cnn", "--dataset", "synthetic", "--limit", "1280", "--test-limit", "64",
                         "--batch-size", "32", "--epochs", "3", "--optimizer", "sgd", "--checkpoint-steps", "10", "--quiet"]
            let command = { (directory: String) in
                [CohortBinary.path, "sweep", "--out", directory, "--no-visualize"] + grid.flatMap { ["--grid", $0] } + flags
            }
            let reference = "\(scratch.path)/uninterrupted", stopped = "\(scratch.path)/stopped"
            let whole = try runProcess(command(reference)[0], Array(command(reference).dropFirst()))
            #expect(whole.status == 0, "\(whole.stderr)")

            let job = try BackgroundProcess(command(stopped))
            let second = "\(stopped)/runs/1_lr-0.005"
            try waitFor("a checkpoint of point 2") { !Checkpoint.list(run: second).isEmpty }
            kill(job.pid, SIGTERM)
            let status = job.wait(timeout: 30)
            #expect(status == 1, "\(job.stdout) \(job.stderr)")
            #expect(job.stdout.contains("point 2/3 stopped (exit 0); it continues from its checkpoint"), "\(job.stdout)")
            #expect(job.stdout.contains("1 of 3 point(s) finished; not finished: lr=0.005; lr=0.002"), "\(job.stdout)")
            #expect(!job.stdout.contains("point 3/3: "), "a point started after the signal: \(job.stdout)")
            #expect(!FileManager.default.fileExists(atPath: "\(second)/summary.json"))
            let left = try runProcess("/usr/bin/pgrep", ["-f", "--", "--out \(second)"])
            #expect(left.stdout.isEmpty, "the point's process outlived the sweep: \(left.stdout)")

            let again = try runProcess(command(stopped)[0], Array(command(stopped).dropFirst()))
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("3 of 3 point(s) finished"), "\(again.stdout)")
            for run in try FileManager.default.contentsOfDirectory(atPath: "\(reference)/runs") {
                let a = try Data(contentsOf: URL(fileURLWithPath: "\(stopped)/runs/\(run)/model.safetensors"))
                let b = try Data(contentsOf: URL(fileURLWithPath: "\(reference)/runs/\(run)/model.safetensors"))
                #expect(a == b, "\(run): other parameters than the uninterrupted sweep's")
                let figures = { (directory: String) in
                    try String(contentsOfFile: "\(directory)/runs/\(run)/metrics.csv", encoding: .utf8).split(separator: "\n")
                        .map { $0.split(separator: ",").prefix(5).joined(separator: ",") }
                }
                #expect(try figures(stopped) == figures(reference), "\(run)")
            }
            let best = { (directory: String) in
                try String(contentsOfFile: "\(directory)/report.md", encoding: .utf8).split(separator: "\n")
                    .filter { $0.hasPrefix("Best:") }
            }
            #expect(try best(stopped) == best(reference))
            #expect(try SweepReport(directory: stopped).ranked.map(\.point.label)
                    == SweepReport(directory: reference).ranked.map(\.point.label))
        }

        /// `cohort report --reference`: a reference's figures beside the runs', with the
        /// differences computed from summary.json; a reference that names no run is refused.
        @Test func aReferenceIsSetBesideTheRuns() throws {
            let directory = "\(scratch.path)/reference"
            let result = try sweep(directory, grid: ["lr=0.01,0.001"], extra: ["--no-visualize"])
            #expect(result.status == 0, "\(result.stderr)")
            let file = "\(scratch.path)/reference.json"
            let reference = """
                {"source": "a test", "sweeps": {"sweep": {
                  "points": [{"flags": {"lr": 0.0010}, "train_loss": 2.5, "train_acc": 0.125, "test_loss": 2.25, "test_acc": 0.5,
                              "note": "a remark"}],
                  "best": {"lr": "1e-3"}}}}
                """
            try reference.write(toFile: file, atomically: true, encoding: .utf8)
            let report = try CohortBinary.run(["report", directory, "--reference", file])
            #expect(report.status == 0, "\(report.stderr)")
            let text = try String(contentsOfFile: "\(directory)/report.md", encoding: .utf8)
            let best = try #require(try RunSummary.read(directory: "\(directory)/runs/1_lr-0.001")).best
            let signed = { (here: Double, there: Double) in String(format: "%+.4f", here - there) }
            #expect(text.contains("## Beside the reference"))
            #expect(text.contains("The reference ([reference.json](../reference.json), from a test) gives 1 of this sweep's 2 points"))
            #expect(text.contains("| 0.001 | 2.25 | \(Format.figure(best.testLoss)) | \(signed(best.testLoss, 2.25)) | 0.5 | "
                                  + "\(Format.figure(best.testAccuracy)) | \(signed(best.testAccuracy, 0.5)) |"), "\(text)")
            #expect(text.contains("| 0.001 | 2.5 | \(Format.figure(best.trainLoss)) | \(signed(best.trainLoss, 2.5)) | 0.125 | "
                                  + "\(Format.figure(best.trainAccuracy)) | \(signed(best.trainAccuracy, 0.125)) |"), "\(text)")
            #expect(text.contains("| reference's best | `lr=0.001` | 2.25 |"))
            #expect(text.contains("- `lr=0.001`: a remark"))
            // lr=0.01 has no reference figures: it is not in the comparison's rows.
            #expect(!text.contains("| 0.01 | 2.25"))
        }

        @Test(arguments: [
            (#"{"sweeps": {"other": {"points": [{"flags": {"lr": 1}, "train_loss": 1, "train_acc": 0.5, "test_loss": 1, "test_acc": 0.5}], "best": {"lr": 1}}}}"#, "no reference for sweep 'sweep' (it has: other)"),
            (#"{"sweeps": {"sweep": {"points": [{"flags": {"momentum": 0.9}, "train_loss": 1, "train_acc": 0.5, "test_loss": 1, "test_acc": 0.5}], "best": {"momentum": 0.9}}}}"#,
             "names momentum, which is not an axis of the sweep (axes: lr)"),
            (#"{"sweeps": {"sweep": {"points": [{"flags": {"lr": 0.5}, "train_loss": 1, "train_acc": 0.5, "test_loss": 1, "test_acc": 0.5}], "best": {"lr": 0.5}}}}"#,
             "has lr=0.5, which the sweep does not run (it runs 0.01, 0.001)"),
            (#"{"sweeps": {"sweep": {"points": [{"flags": {"lr": 0.01}, "train_loss": 1, "train_acc": 50, "test_loss": 1, "test_acc": 0.5}], "best": {"lr": 0.01}}}}"#,
             "accuracies must be fractions in 0...1"),
            (#"{"sweeps": {"sweep": {"points": [{"flags": {"lr": 0.01}, "train_loss": 1, "train_acc": 0.5, "test_loss": 1}], "best": {"lr": 0.01}}}}"#,
             "no test_acc"),
            (#"{"sweeps": {"sweep": {"points": [{"flags": {"lr": 0.01}, "train_loss": 1, "train_acc": 0.5, "test_loss": 1, "test_acc": 0.5}], "best": {"lr": 0.001}}}}"#,
             "names a configuration that is none of the points"),
        ])
        func badReferenceFilesAreRefused(json: String, message: String) throws {
            let directory = "\(scratch.path)/reference-bad"
            if !FileManager.default.fileExists(atPath: "\(directory)/sweep.json") {
                let result = try sweep(directory, grid: ["lr=0.01,0.001"], extra: ["--no-visualize"])
                #expect(result.status == 0, "\(result.stderr)")
            }
            let file = "\(scratch.path)/bad-reference.json"
            try json.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try CohortBinary.run(["report", directory, "--reference", file])
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"))
            // A sweep given the file refuses it before any run.
            let refused = try sweep("\(scratch.path)/reference-refused", grid: ["lr=0.01,0.001"], extra: ["--reference", file])
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(scratch.path)/reference-refused/runs"))
        }

        /// One point of the grid through a launcher found on PATH (as a Slurm array task runs
        /// it with `srun`; here `env`, which just runs the command), and no report.
        @Test func onePointThroughALauncher() throws {
            let directory = "\(scratch.path)/point"
            let result = try sweep(directory, grid: ["lr=0.01,0.001"], extra: ["--point", "1", "--launcher", "env"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("point 2/2: lr=0.001") && !result.stdout.contains("point 1/2"), "\(result.stdout)")
            #expect(result.stdout.contains("point 1 done"))
            let runs = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/runs")
            #expect(runs == ["1_lr-0.001"])
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/report.md"))
            let missing = try sweep("\(scratch.path)/nolauncher", grid: ["lr=0.01"], extra: ["--launcher", "no-such-launcher"])
            #expect(missing.status != 0 && missing.stderr.contains("not found on PATH"), "\(missing.stderr)")
        }

        @Test func recurrentSweepsCompareTheCells() throws {
            let directory = "\(scratch.path)/cells"
            let result = try CohortBinary.run(["sweep", "--out", directory, "--grid", "model=rnn,gru",
                                                   "--", "--dataset", "synthetic", "--hidden", "8", "--limit", "128",
                                                   "--test-limit", "32", "--batch-size", "32", "--epochs", "3", "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            let report = try String(contentsOfFile: "\(directory)/report.md", encoding: .utf8)
            #expect(report.contains("## Recurrent cells compared"))
            #expect(report.contains("| rnn | 1 |") && report.contains("| gru | 1 |"))
            // The best run was visualised: hidden-state statistics for all 28 steps.
            #expect(report.contains("### Hidden state per step"))
            #expect(report.contains("| 28 |"))
        }
    }
}
