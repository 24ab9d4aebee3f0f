@testable import CohortLaunch
@testable import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// `--trace DIR` under a real `mpirun` with 2 ranks: each rank's Chrome trace parses, its
    /// phases tile every step, every bucket's reduction lies within its step, and the buckets
    /// start inside backward with overlap and after it without.
    @Suite(.serialized) struct TraceTests {
        let scratch = ScratchDirectory("cohort-trace")
        static let steps = 6

        /// One complete event ("ph": "X") of a trace file.
        struct Span {
            let name: String, track: Int, start: Double, end: Double
            let epoch: Int?, step: Int?
        }

        /// 6 steps of the CNN in buckets of at least 50 KB (3 of them), on 2 ranks; the ranks' spans.
        func trace(_ name: String, extra: [String] = []) throws -> (directory: String, ranks: [[Span]]) {
            let directory = "\(scratch.path)/\(name)"
            let mpirun = try #require(DataParallelTests.mpirun, "mpirun is not installed (apt-get install openmpi-bin)")
            let arguments = MPIRun.localArguments(ranks: 2) + [CohortBinary.path, "train", "--model", "cnn", "--dataset",
                "synthetic", "--batch-size", "32", "--limit", "\(32 * Self.steps)", "--test-limit", "32", "--epochs", "1",
                "--bucket-mb", "0.05", "--quiet", "--out", "\(directory)/run", "--trace", "\(directory)/trace"] + extra
            let outcome = try runProcess(mpirun, arguments, environment: DataParallelTests.environment, timeout: 300)
            #expect(outcome.status == 0 && !outcome.timedOut, "\(outcome.stderr)")
            let ranks = try (0..<2).map { rank in
                try Self.spans(path: "\(directory)/trace/\(StepTimeline.fileName(rank: rank))", rank: rank)
            }
            return (directory, ranks)
        }

        /// The file's complete events; every event must belong to process `rank`, and the
        /// file names the rank's process and tracks.
        static func spans(path: String, rank: Int) throws -> [Span] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let events = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]], "\(path)")
            #expect(events.allSatisfy { $0["pid"] as? Int == rank })
            let metadata = events.filter { $0["ph"] as? String == "M" }.compactMap { $0["name"] as? String }
            #expect(metadata.filter { $0 == "thread_name" }.count == 2 && metadata.contains("process_name"))
            return events.filter { $0["ph"] as? String == "X" }.map { event in
                let args = event["args"] as? [String: Any]
                let start = event["ts"] as? Double ?? .nan
                return Span(name: event["name"] as? String ?? "", track: event["tid"] as? Int ?? -1, start: start,
                            end: start + (event["dur"] as? Double ?? .nan), epoch: args?["epoch"] as? Int, step: args?["step"] as? Int)
            }
        }

        /// Checks that the phases tile each step and the buckets lie in their steps; returns,
        /// per step, its spans on the compute track and its bucket spans.
        func checkSteps(_ spans: [Span], numbered: [Int] = Array(1...steps)) -> [(step: Span, phases: [Span], buckets: [Span])] {
            let steps = spans.filter { $0.track == 0 && $0.name == "step" }.sorted { $0.start < $1.start }
            #expect(steps.map(\.step) == numbered)
            let phases = spans.filter { $0.track == 0 && $0.name != "step" }
            let buckets = spans.filter { $0.track == 1 }
            // Times are written to 1 ns; a phase's end and the next start may differ by that rounding.
            let rounding = 0.002
            var result: [(Span, [Span], [Span])] = []
            for step in steps {
                let inside = phases.filter { $0.start >= step.start - rounding && $0.end <= step.end + rounding }
                    .sorted { $0.start < $1.start }
                #expect(inside.first?.name == "data" && inside.last?.name == "optimizer", "\(inside.map(\.name))")
                #expect(abs((inside.first?.start ?? .nan) - step.start) <= rounding)
                #expect(abs((inside.last?.end ?? .nan) - step.end) <= rounding)
                for (a, b) in zip(inside, inside.dropFirst()) {
                    #expect(abs(a.end - b.start) <= rounding, "\(a.name) ends at \(a.end), \(b.name) starts at \(b.start)")
                }
                let names = Set(inside.map(\.name))
                #expect(names.isSubset(of: ["data", "forward", "backward", "other replicas", "replica sum", "allreduce wait",
                                            "step check", "optimizer"]), "\(names)")
                let own = buckets.filter { $0.step == step.step }
                #expect(own.map(\.name).sorted() == ["bucket 1", "bucket 2", "bucket 3"], "\(own.map(\.name))")
                #expect(own.allSatisfy { $0.start >= step.start - rounding && $0.end <= step.end + rounding })
                result.append((step, inside, own))
            }
            // Every phase belongs to a step.
            #expect(phases.count == result.map(\.1.count).reduce(0, +))
            return result
        }

        @Test func theBucketsOverlapBackwardAndThePhasesTileEveryStep() throws {
            let (directory, ranks) = try trace("overlap", extra: ["--threads", "1"])
            for spans in ranks {
                for (_, phases, buckets) in checkSteps(spans) {
                    let backward = try #require(phases.first { $0.name == "backward" })
                    // The first bucket (the last layers) starts while backward still runs.
                    let first = try #require(buckets.first { $0.name == "bucket 1" })
                    #expect(first.start > backward.start && first.start < backward.end)
                }
            }
            // trace.json holds both ranks' events, on one time base: their steps start close together.
            let merged = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
                "\(directory)/trace/\(StepTimeline.mergedFileName)"))) as? [[String: Any]]
            #expect(Set((merged ?? []).compactMap { $0["pid"] as? Int }) == [0, 1])
        }

        @Test func withoutOverlapTheBucketsFollowBackward() throws {
            let (_, ranks) = try trace("no-overlap", extra: ["--threads", "1", "--no-overlap"])
            for spans in ranks {
                for (_, phases, buckets) in checkSteps(spans) {
                    let backward = try #require(phases.first { $0.name == "backward" })
                    let wait = try #require(phases.first { $0.name == "allreduce wait" })
                    #expect(buckets.allSatisfy { $0.start >= backward.end && $0.end <= wait.end + 0.002 })
                }
            }
        }

        /// `cohort bench --trace`: the timed steps of each rank count, after the warm-up.
        @Test func benchTracesItsTimedSteps() throws {
            let directory = "\(scratch.path)/bench"
            let result = try CohortBinary.run(["bench", "--model", "cnn", "--batch-size", "32", "--ranks", "2", "--steps", "3",
                                               "--warmup", "1", "--bucket-mb", "0.05", "--threads", "1", "--sgemm-seconds", "0.05",
                                               "--out", directory, "--trace", "\(directory)/trace"],
                                              environment: DataParallelTests.environment)
            #expect(result.status == 0, "\(result.stderr)")
            for rank in 0..<2 {
                let spans = try Self.spans(path: "\(directory)/trace/ranks-2/\(StepTimeline.fileName(rank: rank))", rank: rank)
                _ = checkSteps(spans, numbered: [2, 3, 4])
            }
        }

        /// Two replicas per rank: the first replica's phases, then the wait for the other and the sum.
        @Test func replicasShowTheirSum() throws {
            let (_, ranks) = try trace("replicas", extra: ["--threads", "2", "--replicas", "2"])
            for spans in ranks {
                for (_, phases, _) in checkSteps(spans) {
                    #expect(phases.map(\.name) == ["data", "forward", "backward", "other replicas", "replica sum",
                                                   "allreduce wait", "step check", "optimizer"])
                }
            }
        }
    }
}
