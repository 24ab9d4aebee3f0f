import CohortBase
@testable import CohortLaunch
@testable import CohortRun
import CohortTensor
import Foundation
import Testing

extension SystemTests {
    /// The transformers trained data-parallel under a real `mpirun`: a small gpt-char on a text
    /// and a small transformer-rows on images give the same bits on N ranks as on 1 rank x N
    /// replicas and on 1 rank accumulating N micro-batches (the same slices summed in the same
    /// tree, `DataParallelTests`), with the gradients clipped (every rank clips the reduced
    /// gradients alike); the models they end with generate the same text; a text run resumed
    /// on another number of ranks continues exactly; a mistake in a transformer's model file
    /// stops the job before any rank trains.
    @Suite(.serialized) struct TransformerTrainingTests {
        let scratch = ScratchDirectory("cohort-transformer")
        static let environment = DataParallelTests.environment

        /// About 20 KB of text: words of a small alphabet drawn from a fixed stream, in lines.
        func textFile() throws -> String {
            let path = "\(scratch.path)/text.txt"
            if FileManager.default.fileExists(atPath: path) { return path }
            var rng = SplitMix64(seed: 11)
            let letters = Array("abcdefghij klmnop".utf8)
            var bytes: [UInt8] = []
            while bytes.count < 20_000 {
                bytes.append(letters[rng.nextIndex(below: letters.count)])
                if rng.nextIndex(below: 40) == 0 { bytes.append(10) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }

        /// `steps` SGD steps of gpt-char (1 block of width 16, 2 heads) on `textFile`'s 16-byte
        /// windows, global batch 8, the gradients clipped to norm 0.5 (which these gradients
        /// exceed) unless `clip` is false.
        func trainText(ranks: Int, extra: [String] = [], steps: Int = 6, clip: Bool = true, name: String) throws -> String {
            let out = "\(scratch.path)/\(name)"
            try run(ranks: ranks, ["train", "--model", "gpt-char", "--model-param", "layers=1,embd=16,heads=2",
                                   "--dataset", "text", "--data-file", textFile(), "--block-size", "16",
                                   "--eval-windows", "8", "--batch-size", "8", "--steps", "\(steps)", "--optimizer", "sgd",
                                   "--lr", "0.05", "--momentum", "0.9", "--seed", "5", "--threads", "1", "--quiet",
                                   "--out", out] + (clip ? ["--clip-grad-norm", "0.5"] : []) + extra, name: name)
            return out
        }

        func run(ranks: Int, _ arguments: [String], name: String) throws {
            let outcome: ProcessOutcome
            if ranks == 1 {
                outcome = try CohortBinary.run(arguments)
            } else {
                let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
                outcome = try runProcess(mpirun, MPIRun.localArguments(ranks: ranks) + [CohortBinary.path] + arguments,
                                         environment: Self.environment, timeout: 300)
            }
            #expect(outcome.status == 0 && !outcome.timedOut, "\(name) failed: \(outcome.stderr)")
        }

        func expectSameBits(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let x = try SafeTensors.read("\(a)/model.safetensors"), y = try SafeTensors.read("\(b)/model.safetensors")
            #expect(Set(x.keys) == Set(y.keys), sourceLocation: sourceLocation)
            for (name, tensor) in x {
                #expect(tensor.values == y[name]?.values, "\(name) differs: \(a) vs \(b)", sourceLocation: sourceLocation)
            }
        }

        func generate(_ run: String, _ extra: [String] = []) throws -> String {
            let outcome = try CohortBinary.run(["generate", "--run", run, "--prompt", "abc", "--bytes", "40"] + extra)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            return outcome.stdout
        }

        @Test func textRanksReplicasAndMicroBatchesGiveTheSameBitsAndText() throws {
            let replicas = try trainText(ranks: 1, extra: ["--replicas", "2"], name: "text-1x2")
            let ranks = try trainText(ranks: 2, name: "text-2")
            let micro = try trainText(ranks: 1, extra: ["--accumulate", "2"], name: "text-acc2")
            try expectSameBits(ranks, replicas)
            try expectSameBits(micro, replicas)
            // The clip took effect: without it the same steps end elsewhere.
            let unclipped = try trainText(ranks: 1, extra: ["--replicas", "2"], clip: false, name: "text-unclipped")
            #expect(try SafeTensors.read("\(unclipped)/model.safetensors")["head.weight"]?.values
                    != SafeTensors.read("\(replicas)/model.safetensors")["head.weight"]?.values)
            let sampled = ["--temperature", "0.9", "--top-k", "5", "--seed", "2"]
            let greedy = try generate(ranks)
            #expect(greedy == (try generate(replicas)))
            #expect(try generate(ranks, sampled) == generate(replicas, sampled))
            #expect(greedy.hasPrefix("abc") && greedy.utf8.count == 3 + 40 + 1)
            // `cohort evaluate` scores every position of the validation windows, as training did.
            let evaluated = try CohortBinary.run(["evaluate", "--run", ranks])
            #expect(evaluated.status == 0, "\(evaluated.stderr)")
            let last = try String(contentsOfFile: "\(ranks)/evaluations.jsonl", encoding: .utf8).split(separator: "\n").last!
            let recorded = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])["test_loss"]
                as! Double
            // The same sums in another order (other batches): equal to float rounding, printed to 4 decimals.
            let printed = evaluated.stdout.components(separatedBy: "8 test window(s) of 16 bytes of text: loss ").dropFirst().first
                .flatMap { Double($0.prefix(while: { $0 != "," })) }
            #expect(abs((printed ?? .infinity) - recorded) <= 1e-4, "\(evaluated.stdout)")
        }

        /// transformer-rows (1 block of width 16, 2 heads) on synthetic 28x28 images, AdamW's
        /// decay on matrices and clipping on: 2 ranks and 1 rank x 2 replicas, the same bits.
        @Test func rowTransformerRanksAndReplicasGiveTheSameBits() throws {
            func train(_ ranks: Int, _ extra: [String], _ name: String) throws -> String {
                let out = "\(scratch.path)/\(name)"
                try run(ranks: ranks, ["train", "--model", "transformer-rows", "--model-param", "layers=1,embd=16,heads=2",
                                       "--dataset", "synthetic", "--limit", "256", "--test-limit", "64", "--batch-size", "32",
                                       "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9", "--clip-grad-norm", "0.2",
                                       "--seed", "4", "--threads", "1", "--quiet", "--out", out] + extra, name: name)
                return out
            }
            try expectSameBits(try train(2, [], "rows-2"), try train(1, ["--replicas", "2"], "rows-1x2"))
        }

        /// A text run of 8 steps on 2 ranks, checkpointed at step 4, its later checkpoint lost and
        /// resumed on 1 rank x 2 replicas (the same tree): the uninterrupted run's bits; and a run
        /// of 4 steps resumed with --steps 8 continues its partial epoch to the same end.
        @Test func aTextRunResumedOnAnotherNumberOfRanksContinuesExactly() throws {
            let whole = try trainText(ranks: 2, steps: 8, name: "whole")
            let run = try trainText(ranks: 2, extra: ["--checkpoint-steps", "4"], steps: 8, name: "resumed")
            let checkpoints = Checkpoint.list(run: run)
            #expect(checkpoints == ["step-000000008", "step-000000004"])
            try FileManager.default.removeItem(atPath: "\(Checkpoint.directory(run: run))/\(checkpoints[0])")
            try self.run(ranks: 1, ["train", "--resume", run, "--replicas", "2", "--threads", "2", "--quiet"], name: "resume")
            try expectSameBits(run, whole)
            let short = try trainText(ranks: 2, steps: 4, name: "short")
            try self.run(ranks: 2, ["train", "--resume", short, "--steps", "8", "--quiet"], name: "longer")
            try expectSameBits(short, whole)
            let metrics = try String(contentsOfFile: "\(short)/metrics.csv", encoding: .utf8).split(separator: "\n")
            #expect(metrics.count == 2, "one epoch recorded once: \(metrics)")
        }

        /// `--target-loss`: the run stops at the first evaluation at or below it and records
        /// when; a target never met is recorded as not reached, after every step.
        @Test func aTargetLossStopsTheRunAtTheFirstEvaluationThatMeetsIt() throws {
            func summary(_ run: String) throws -> [String: Any] {
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))
                    as! [String: Any]
            }
            let met = try trainText(ranks: 1, extra: ["--target-loss", "50", "--eval-every", "2"], steps: 10, name: "met")
            let target = try #require(try summary(met)["target"] as? [String: Any])
            #expect(target["loss"] as? Double == 50)
            #expect((target["reached"] as? [String: Any])?["step"] as? Int == 2, "\(target)")
            let missed = try trainText(ranks: 1, extra: ["--target-loss", "0.001", "--eval-every", "2"], steps: 4, name: "missed")
            let never = try #require(try summary(missed)["target"] as? [String: Any])
            #expect(never["reached"] is NSNull, "\(never)")
            let evaluations = try String(contentsOfFile: "\(missed)/evaluations.jsonl", encoding: .utf8)
            #expect(evaluations.split(separator: "\n").count == 2)
        }

        /// Mistakes in a transformer's model file: one line naming the place, exit 64, before any rank trains.
        @Test(arguments: [
            ("heads = 3", "heads 3 must divide the width 16"),
            ("length = 8", "holds 8 positions, but the sequence has 16"),
            ("tokens", "reads tokens, so it must be the first layer"),
        ])
        func aMistakeInATransformerFileStopsEveryRank(mistake: String, message: String) throws {
            let heads = mistake.hasPrefix("heads") ? 3 : 2
            let positions = mistake.hasPrefix("length") ? ", length = 8" : ""
            let embedding = mistake == "tokens" ? "{ type = \"layernorm\" },\n  " : ""
            let file = "\(scratch.path)/bad-\(heads)-\(positions.isEmpty)-\(embedding.isEmpty).toml"
            try """
                layers = [
                  \(embedding){ type = "embedding", name = "tok", dim = 16 },
                  { type = "positions", name = "pos"\(positions) },
                  { type = "attention", name = "attn", heads = \(heads), causal = true },
                  { type = "linear", name = "head", out = "vocab", bias = false },
                ]
                """.write(toFile: file, atomically: true, encoding: .utf8)
            let mpirun = try #require(MPIRun.executable)
            let out = "\(scratch.path)/never"
            let outcome = try runProcess(mpirun, MPIRun.localArguments(ranks: 2) + [CohortBinary.path, "train", "--model", file,
                                         "--dataset", "text", "--data-file", textFile(), "--block-size", "16", "--steps", "2",
                                         "--out", out], environment: Self.environment, timeout: 120)
            #expect(!outcome.timedOut && outcome.status == 64, "\(outcome.status): \(outcome.stderr)")
            let lines = outcome.stderr.split(separator: "\n").filter { $0.contains(message) }
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(file) && $0.contains("layers[") }, "\(outcome.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "a run directory was made")
        }
    }
}
