import CohortBase
@testable import CohortBench
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import Foundation
import Testing

extension SystemTests {
    /// Time to accuracy: `cohort train --target-accuracy` stops at the first evaluation that
    /// reaches it and records when; evaluation on every rank gives rank 0's figures;
    /// `cohort bench --to-accuracy` compares rank counts under a real mpirun; a sweep's report
    /// names its fastest point to the target.
    @Suite(.serialized) struct TimeToAccuracyTests {
        static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                  "OMPI_MCA_rmaps_base_oversubscribe": "1"]
        /// A CNN on synthetic data, 16 steps an epoch, evaluated every 4 steps.
        static let training = ["--model", "cnn", "--dataset", "synthetic", "--limit", "1024", "--test-limit", "256",
                               "--batch-size", "64", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                               "--seed", "5", "--threads", "1", "--eval-every", "4"]
        static let stepsPerEpoch = 16, batch = 64
        let scratch = ScratchDirectory("cohort-time-to-accuracy")

        func train(_ extra: [String], out: String, ranks: Int = 1) throws -> ProcessOutcome {
            let arguments = ["train"] + Self.training + extra + ["--out", out]
            guard ranks > 1 else { return try CohortBinary.run(arguments) }
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            return try runProcess(mpirun, MPIRun.localArguments(ranks: ranks) + [CohortBinary.path] + arguments,
                                  environment: Self.environment, timeout: 300)
        }

        @Test func aRunStopsAtTheFirstEvaluationThatReachesItsTarget() throws {
            let out = "\(scratch.path)/reached"
            let result = try train(["--epochs", "4", "--target-accuracy", "0.5"], out: out)
            #expect(result.status == 0, "\(result.stderr)")
            let evaluations = try EvaluationRecord.read(directory: out)
            let target = try #require(try RunSummary.read(directory: out)?.target)
            let reached = try #require(target.reached, "the target was not reached: \(evaluations)")
            // Every 4 global steps until the first at or above the target, and no further.
            #expect(evaluations.map(\.step) == Array(stride(from: 4, through: reached.step, by: 4)))
            #expect(reached == evaluations.last && reached.testAccuracy >= 0.5)
            #expect(evaluations.dropLast().allSatisfy { $0.testAccuracy < 0.5 })
            #expect(reached.step < 4 * Self.stepsPerEpoch, "the run must stop before its last step")
            #expect(reached.epoch == Double(reached.step) / Double(Self.stepsPerEpoch))
            #expect(target.accuracy == 0.5 && target.samples == reached.step * Self.batch)
            // The clocks: evaluation is part of the time to the target, and each evaluation adds to both.
            #expect(reached.evalSeconds > 0 && reached.evalSeconds < reached.seconds)
            for (a, b) in zip(evaluations, evaluations.dropFirst()) {
                #expect(a.seconds < b.seconds && a.evalSeconds < b.evalSeconds)
            }
            #expect(result.stdout.contains(String(format: "reached the target 50.00%% at epoch %.2f (step %d",
                                                  reached.epoch, reached.step)), "\(result.stdout)")
            #expect(FileManager.default.fileExists(atPath: "\(out)/model.safetensors"))

            // Resumed with a higher target, the run goes on from the checkpoint at the target: its
            // evaluations and clocks continue the first process's, until the new target or the last step.
            let more = try CohortBinary.run(["train", "--resume", out, "--target-accuracy", "1", "--quiet"])
            #expect(more.status == 0, "\(more.stderr)")
            let all = try EvaluationRecord.read(directory: out)
            let last = try #require(all.last)
            #expect(Array(all.prefix(evaluations.count)) == evaluations && all.count > evaluations.count)
            #expect(all.map(\.step) == Array(stride(from: 4, through: last.step, by: 4)))
            #expect(last.step == 4 * Self.stepsPerEpoch || last.testAccuracy == 1)
            #expect(try RunSummary.read(directory: out)?.target?.reached == (last.testAccuracy == 1 ? last : nil))
            #expect(all[evaluations.count].seconds > reached.seconds && all[evaluations.count].evalSeconds > reached.evalSeconds)
        }

        @Test func aRunThatNeverReachesItsTargetEndsAsUsual() throws {
            let out = "\(scratch.path)/not-reached"
            let result = try train(["--epochs", "1", "--lr", "1e-6", "--target-accuracy", "0.99"], out: out)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("the target test accuracy 99.00% was not reached"), "\(result.stdout)")
            let summary = try #require(try RunSummary.read(directory: out))
            #expect(summary.target?.accuracy == 0.99 && summary.target?.reached == nil && summary.target?.samples == nil)
            #expect(summary.epochs == 1 && FileManager.default.fileExists(atPath: "\(out)/model.safetensors"))
            // The evaluations inside the epoch and at its end.
            #expect(try EvaluationRecord.read(directory: out).map(\.step) == [4, 8, 12, 16])
        }

        @Test(arguments: ["0", "-0.5", "1.5", "nan", "inf"])
        func aTargetOutsideZeroToOneIsRefused(target: String) throws {
            let out = "\(scratch.path)/refused"
            // `--flag=value`, so that "-0.5" is read as the flag's value rather than as a flag.
            let result = try train(["--target-accuracy=\(target)"], out: out)
            #expect(result.status == 64 && result.stderr.contains("--target-accuracy is a fraction of the test set in (0, 1]"),
                    "\(result.status) \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            let bench = try CohortBinary.run(["bench", "--to-accuracy=\(target)", "--out", out, "--"] + Self.training)
            #expect(bench.status == 64 && bench.stderr.contains("--to-accuracy is a fraction of the test set in (0, 1]"),
                    "\(bench.status) \(bench.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }

        /// The same training evaluated by rank 0 alone and by both ranks over halves of the test
        /// set: the same correct counts (integers), losses within the rounding of adding 256
        /// per-image losses in another order (double: relative 256·2^-53), the same parameters.
        /// With flip TTA too.
        @Test(arguments: [["--tta", "none"], ["--tta", "flip"]])
        func evaluationOnEveryRankGivesRankZerosFigures(tta: [String]) throws {
            let a = "\(scratch.path)/rank0\(tta[1])", b = "\(scratch.path)/all\(tta[1])"
            for (out, on) in [(a, "rank0"), (b, "all")] {
                let result = try train(["--epochs", "1", "--eval-on", on] + tta, out: out, ranks: 2)
                #expect(result.status == 0 && !result.timedOut, "\(result.stderr)")
            }
            let x = try EvaluationRecord.read(directory: a), y = try EvaluationRecord.read(directory: b)
            #expect(x.count == 4 && x.map(\.step) == y.map(\.step))
            for (p, q) in zip(x, y) {
                #expect(p.testAccuracy == q.testAccuracy)
                #expect(abs(p.testLoss - q.testLoss) <= 1e-12 * p.testLoss, "\(p.testLoss) vs \(q.testLoss)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(a)/model.safetensors"))
                    == Data(contentsOf: URL(fileURLWithPath: "\(b)/model.safetensors")))
        }

        /// `cohort bench --to-accuracy` on 1 and 2 ranks under a real mpirun, the global batch
        /// kept: 2 ranks take the same steps as 1 (the same pairwise sums), so they reach the
        /// target at the same step, and the report's ratios follow from the runs' own records.
        @Test func benchToAccuracyComparesRankCounts() throws {
            let out = "\(scratch.path)/bench"
            let result = try CohortBinary.run(["bench", "--to-accuracy", "0.5", "--ranks", "1,2", "--out", out, "--"]
                                              + Self.training + ["--epochs", "4", "--quiet"], environment: Self.environment)
            #expect(result.status == 0, "\(result.stderr)")
            let report = try JSONFile.read(TimeToAccuracyBenchmark.Report.self, path: "\(out)/to-accuracy.json")
            #expect(report.rows.map(\.ranks) == [1, 2] && report.target == 0.5)
            let one = report.rows[0], two = report.rows[1]
            let reachedOne = try #require(one.reached), reachedTwo = try #require(two.reached)
            #expect(reachedOne.step == reachedTwo.step && reachedOne.testAccuracy == reachedTwo.testAccuracy)
            #expect(one.throughputSpeedup == 1 && one.timeToAccuracySpeedup == 1 && one.statisticalEfficiency == 1)
            #expect(two.statisticalEfficiency == 1)
            #expect(two.timeToAccuracySpeedup == reachedOne.seconds / reachedTwo.seconds)
            #expect(two.throughputSpeedup == two.samplesPerSecond / one.samplesPerSecond)
            for row in report.rows {
                let summary = try #require(try RunSummary.read(directory: "\(out)/ranks-\(row.ranks)"))
                #expect(summary.worldSize == row.ranks && summary.target?.reached == row.reached)
                #expect(row.samplesPerSecond == Double(row.last.step * Self.batch) / (row.last.seconds - row.last.evalSeconds))
            }
            #expect(result.stdout.contains("time to target") && result.stdout.contains("to 50.00% test accuracy"))
            let picture = try String(contentsOfFile: "\(out)/to-accuracy.svg", encoding: .utf8)
            #expect(picture.hasPrefix("<svg") && picture.contains(">1 rank(s)<") && picture.contains(">2 rank(s)<")
                    && picture.contains(">target<"))
        }

        /// A rank count that never reached the target is said so in the table, with its best.
        @Test func theBenchTableSaysWhenACountNeverReachedTheTarget() {
            let last = EvaluationRecord(step: 32, epoch: 2, testLoss: 1, testAccuracy: 0.4, seconds: 9, evalSeconds: 1)
            let row = TimeToAccuracyBenchmark.Row(ranks: 4, threadsPerRank: 1, globalBatch: 64, reached: nil, last: last,
                                                  bestTestAccuracy: 0.42, samplesPerSecond: 256, throughputSpeedup: 1.5,
                                                  timeToAccuracySpeedup: nil, statisticalEfficiency: nil, evaluations: [last])
            let table = TimeToAccuracyBenchmark.table(.init(target: 0.5, trainArguments: [], rows: [row]))
            #expect(table.contains("not reached in 2.00 epochs (9.0 s; best 42.00%)"), "\(table)")
        }

        /// A sweep with a target: each point's time to it, and the fastest point beside the most accurate.
        @Test func aSweepReportsEachPointsTimeToTheTarget() throws {
            let directory = "\(scratch.path)/sweep"
            let lr = try #require(Self.training.firstIndex(of: "--lr"))
            var fixed = Self.training
            fixed.removeSubrange(lr...lr + 1)  // the grid sets it
            let result = try CohortBinary.run(["sweep", "--out", directory, "--no-visualize", "--grid", "lr=0.05,0.000001",
                                               "--"] + fixed + ["--epochs", "2", "--target-accuracy", "0.5", "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            let sweep = try SweepReport(directory: directory)
            let fastest = try #require(sweep.fastestToTarget)
            #expect(fastest.point.label == "lr=0.05")
            let reached = try #require(fastest.summary?.target?.reached)
            let report = try String(contentsOfFile: "\(directory)/report.md", encoding: .utf8)
            #expect(report.contains("Fastest to the target test accuracy 0.5: `lr=0.05`, "
                                    + String(format: "%.0f s, at epoch %.2f", reached.seconds, reached.epoch)), "\(report)")
            #expect(report.contains("| time to target |") && report.contains("| not reached |"), "\(report)")
        }
    }
}
