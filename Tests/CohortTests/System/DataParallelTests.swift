import CohortBase
@testable import CohortBench
import CohortDistributed
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
@testable import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// N ranks under a real `mpirun` against 1 rank with the same global batch, identical on
    /// every rank, whatever the communication mode; a batch that does not divide fails on
    /// every rank.
    ///
    /// Two kinds of comparison, each with its argument. Where two runs add the same per-slice
    /// gradients in the same tree they must agree bit for bit, for any number of steps: N
    /// ranks, 1 rank x N replicas and 1 rank accumulating N micro-batches all sum their N
    /// slices pairwise (`ReplicaGroup.step`; Open MPI's in-place allreduce is a binomial tree).
    /// Where the batch is cut differently (N slices against the whole batch) the kernels add
    /// the same products in another order, and the runs are compared over 3 steps against a
    /// bound derived from float32 rounding (`expectWithinRounding`).
    @Suite(.serialized) struct DataParallelTests {
        static let mpirun: String? = MPIRun.executable
        static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                  "OMPI_MCA_rmaps_base_oversubscribe": "1"]

        let scratch = ScratchDirectory("cohort-dp")
        var root: String { scratch.path }

        /// `steps` steps of `model` on synthetic data with global batch `batch`, on `ranks` ranks
        /// of one thread each (more with `--threads` in `extra`), from the same initial parameters
        /// (`initial.safetensors`).
        ///
        /// SGD with momentum and a small step: adaptive optimizers (Adam, Adagrad) divide by the
        /// gradient's own size, turning rounding noise on near-zero gradients into steps of ±lr,
        /// and the test is about the data-parallel arithmetic, not about that.
        func train(_ model: String, ranks: Int, batch: Int, steps: Int = 12, extra: [String] = [],
                   name: String) throws -> String {
            let out = "\(root)/\(name)"
            var arguments = ["train", "--model", model, "--dataset", "synthetic", "--batch-size", "\(batch)",
                             "--limit", "\(steps * batch)", "--test-limit", "64", "--epochs", "1", "--optimizer", "sgd",
                             "--lr", "0.002", "--momentum", "0.9", "--hidden", "32", "--seed", "3", "--threads", "1",
                             "--save-initial", "--quiet", "--out", out] + extra
            let outcome: ProcessOutcome
            if ranks == 1 {
                outcome = try runProcess(CohortBinary.path, arguments)
            } else {
                let mpirun = try #require(Self.mpirun, "mpirun is not installed (apt-get install openmpi-bin)")
                arguments = MPIRun.localArguments(ranks: ranks) + [CohortBinary.path] + arguments
                outcome = try runProcess(mpirun, arguments, environment: Self.environment, timeout: 300)
            }
            #expect(outcome.status == 0 && !outcome.timedOut, "\(name) failed: \(outcome.stderr)")
            return out
        }

        /// Every tensor of two runs' `model.safetensors` bit for bit equal.
        func expectSameBits(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let x = try SafeTensors.read("\(a)/model.safetensors"), y = try SafeTensors.read("\(b)/model.safetensors")
            #expect(Set(x.keys) == Set(y.keys), sourceLocation: sourceLocation)
            for (name, reference) in y {
                #expect(try #require(x[name]).values == reference.values, "\(name) differs between \(a) and \(b)",
                        sourceLocation: sourceLocation)
            }
        }

        /// Two runs of `steps` steps from the same initial parameters θ₀ whose batches were cut
        /// into different slices: for every tensor, `‖θa − θb‖ ≤ steps · 2γₙ · ‖θb − θ₀‖`.
        ///
        /// The argument: each gradient element is a float32 sum of at most `terms` products (the
        /// global batch times the positions a weight is used at), which the two runs add in
        /// different orders. Any order is within γₙ = n·u/(1 − n·u) of the exact sum relative to
        /// the sum of the terms' magnitudes (u = 2⁻²⁴; Higham, Accuracy and Stability of
        /// Numerical Algorithms, §4.2), so the two within 2γₙ of each other; the update moves by
        /// lr times the gradient, so its difference is within 2γₙ of the update per step, and
        /// the steps' differences add (their effect on the next gradients is of order lr times
        /// them, negligible at lr 0.002). Measured against the update, the bound assumes that
        /// the batch's per-sample gradients do not cancel each other, which holds in the first
        /// steps of training from a random start, where every sample pushes the loss down from
        /// ln 10. A wrong slice, scale or lost contribution moves the update by 1/N of it or more,
        /// far beyond the bound (2γₙ = 0.0078 for 65,536 terms). Longer runs are not compared
        /// this way: after tens of steps a ReLU or max-pool decision within rounding of its
        /// threshold flips and the runs part by more than rounding, on some CPUs' kernels sooner
        /// than on others'.
        func expectWithinRounding(_ a: String, _ b: String, steps: Int, terms: Int,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
            let u = 0x1p-24, n = Double(terms)
            let bound = Double(steps) * 2 * (n * u / (1 - n * u))
            for (name, (difference, update)) in try squaredDistances(a, b, sourceLocation: sourceLocation) {
                #expect(update > 0, "\(name) did not move in \(b)", sourceLocation: sourceLocation)
                let relative = (difference / update).squareRoot()
                #expect(relative <= bound, "\(name): \(a) differs from \(b) by \(relative) of the update (bound \(bound))",
                        sourceLocation: sourceLocation)
            }
        }

        /// For each tensor of run `b`: `‖θa − θb‖²` (the difference of the two runs' final
        /// parameters) and `‖θb − θ₀‖²` (b's update, from its `initial.safetensors`).
        func squaredDistances(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws
            -> [String: (difference: Double, update: Double)] {
            let x = try SafeTensors.read("\(a)/model.safetensors"), y = try SafeTensors.read("\(b)/model.safetensors")
            let initial = try SafeTensors.read("\(b)/initial.safetensors")
            #expect(Set(x.keys) == Set(y.keys), sourceLocation: sourceLocation)
            var distances: [String: (difference: Double, update: Double)] = [:]
            for (name, reference) in y {
                var difference = 0.0, update = 0.0
                for ((v, r), i) in zip(zip(try #require(x[name]).values, reference.values), try #require(initial[name]).values) {
                    difference += Double(v - r) * Double(v - r)
                    update += Double(r - i) * Double(r - i)
                }
                distances[name] = (difference, update)
            }
            return distances
        }

        /// The most products one gradient element of `model` sums at global batch `batch`: the
        /// CNN's first convolution uses each weight at 32 x 32 positions of every image, a
        /// recurrent layer its weights at 28 time steps.
        func gradientTerms(_ model: String, batch: Int) -> Int { batch * (model == "cnn" ? 32 * 32 : 28) }

        /// The trainer checked that all ranks ended bitwise identical; the file rank 0 wrote has that checksum.
        func expectRanksIdentical(_ run: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))
                as! [String: Any]
            let checksum = try #require(summary["parameter_checksum"] as? String, sourceLocation: sourceLocation)
            let file = try SafeTensors.read("\(run)/model.safetensors")
            let network = try TestModels.network(for: "\(run)/config.json")
            var values: [Float] = []
            for t in network.tensors { values += try #require(file[t.name]).values }
            let mine = values.withUnsafeBytes { fnv1a($0) }
            #expect(String(format: "%016llx", mine) == checksum, sourceLocation: sourceLocation)
        }

        /// N ranks against 1 rank on the whole batch: within float32 rounding after 3 steps.
        @Test(arguments: ["cnn", "gru"])
        func nRanksEqualOneRankToRounding(model: String) throws {
            let one = try train(model, ranks: 1, batch: 64, steps: 3, name: "\(model)-1")
            for ranks in [2, 4] {
                let many = try train(model, ranks: ranks, batch: 64, steps: 3, name: "\(model)-\(ranks)")
                try expectWithinRounding(many, one, steps: 3, terms: gradientTerms(model, batch: 64))
                try expectRanksIdentical(many)
            }
            // An odd number of ranks.
            let oneOdd = try train(model, ranks: 1, batch: 48, steps: 3, name: "\(model)-1-b48")
            let three = try train(model, ranks: 3, batch: 48, steps: 3, name: "\(model)-3-b48")
            try expectWithinRounding(three, oneOdd, steps: 3, terms: gradientTerms(model, batch: 48))
            try expectRanksIdentical(three)
            // The metrics are the run's, not one rank's: the mean train loss over 3 steps within
            // rounding (the per-sample losses of the same parameters, summed in another order).
            let a = try String(contentsOfFile: "\(one)/metrics.csv", encoding: .utf8).split(separator: "\n")[1].split(separator: ",")
            let b = try String(contentsOfFile: "\(root)/\(model)-2/metrics.csv", encoding: .utf8).split(separator: "\n")[1]
                .split(separator: ",")
            #expect(abs(Double(a[1])! - Double(b[1])!) < 1e-4 && a[2] == b[2], "train loss/acc \(a[1...2]) vs \(b[1...2])")
        }

        /// The same slices summed in the same tree give the same bits, over 12 steps: 4 ranks,
        /// 2 ranks x 2 replicas, 1 rank x 4 replicas, 1 rank accumulating 4 micro-batches, 2 ranks
        /// accumulating 2 and 1 rank x 2 replicas accumulating 2; and 3 ranks, 3 replicas and 3
        /// micro-batches.
        @Test(arguments: ["cnn", "gru"])
        func ranksReplicasAndMicroBatchesGiveTheSameBits(model: String) throws {
            let replicas = try train(model, ranks: 1, batch: 64, extra: ["--replicas", "4"], name: "\(model)-1x4")
            let config = try String(contentsOfFile: "\(replicas)/config.json", encoding: .utf8)
            #expect(config.contains("\"replicas_per_rank\" : 4"))
            for (ranks, extra, name) in [(4, [], "4"), (2, ["--replicas", "2"], "2x2"), (1, ["--accumulate", "4"], "1-acc4"),
                                         (2, ["--accumulate", "2"], "2-acc2"),
                                         (1, ["--replicas", "2", "--accumulate", "2"], "1x2-acc2")] {
                let run = try train(model, ranks: ranks, batch: 64, extra: extra, name: "\(model)-\(name)")
                try expectSameBits(run, replicas)
                if ranks > 1 { try expectRanksIdentical(run) }
            }
            let three = try train(model, ranks: 1, batch: 48, extra: ["--replicas", "3"], name: "\(model)-1x3")
            try expectSameBits(try train(model, ranks: 3, batch: 48, name: "\(model)-3"), three)
            try expectSameBits(try train(model, ranks: 1, batch: 48, extra: ["--accumulate", "3"], name: "\(model)-1-acc3"), three)
        }

        /// A small residual network with batch norm and dropout, on 16x16 synthetic images.
        static let normalizedModel = """
            input = [3, 16, 16]
            layers = [
              { type = "conv", name = "conv1", filters = 8, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm", name = "bn1" },
              { type = "relu" },
              { type = "block", name = "res", block = "down" },
              { type = "avgpool", kernel = 2 },
              { type = "flatten" },
              { type = "dropout", p = 0.25 },
              { type = "linear", name = "fc", out = "classes" },
            ]
            [blocks.down]
            body = [
              { type = "conv", name = "conv1", filters = 8, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm", name = "bn1" },
              { type = "relu" },
              { type = "conv", name = "conv2", filters = 16, kernel = 3, stride = 2, padding = 1, bias = false },
              { type = "batchnorm", name = "bn2" },
            ]
            shortcut = [{ type = "conv", filters = 16, kernel = 1, stride = 2, bias = false }, { type = "batchnorm" }]
            after = [{ type = "relu" }]
            """

        /// `--sync-batchnorm`: 2 and 4 ranks normalise with the whole global batch's statistics,
        /// as 1 rank does, and end within rounding of it (parameters and running statistics; the
        /// dropout masks are the samples', whoever sees them), each gradient element a sum over
        /// the batch's 16x16 positions. 2 ranks and 1 rank x 2 replicas add the same two slices'
        /// sums, so they agree bit for bit. Without it each rank normalises its own slice, as
        /// DDP does: 2 ranks then equal 1 rank x 2 replicas (whose slices are the same) bit for
        /// bit, and differ from 1 rank on the whole batch by far more than rounding.
        @Test func syncBatchNormMakesNRanksEqualOneRank() throws {
            let file = "\(root)/normalized.toml"
            try Self.normalizedModel.write(toFile: file, atomically: true, encoding: .utf8)
            let sync = ["--sync-batchnorm"]
            let one = try train(file, ranks: 1, batch: 32, steps: 3, extra: sync, name: "bn-sync-1")
            for ranks in [2, 4] {
                let many = try train(file, ranks: ranks, batch: 32, steps: 3, extra: sync, name: "bn-sync-\(ranks)")
                try expectWithinRounding(many, one, steps: 3, terms: 32 * 16 * 16)
                try expectRanksIdentical(many)
            }
            let replicas = try train(file, ranks: 1, batch: 32, steps: 3, extra: sync + ["--threads", "2", "--replicas", "2"],
                                     name: "bn-sync-1x2")
            try expectSameBits("\(root)/bn-sync-2", replicas)

            let local = try train(file, ranks: 2, batch: 32, steps: 3, name: "bn-local-2")
            let localReplicas = try train(file, ranks: 1, batch: 32, steps: 3, extra: ["--threads", "2", "--replicas", "2"],
                                          name: "bn-local-1x2")
            try expectSameBits(local, localReplicas)
            let localOne = try train(file, ranks: 1, batch: 32, steps: 3, name: "bn-local-1")
            let apart = try squaredDistances(local, localOne).filter { $0.key.hasSuffix("weight") }
            #expect(apart.values.contains { ($0.difference / $0.update).squareRoot() > 0.05 },
                    "each rank's own statistics should move the weights apart from 1 rank's: \(apart)")
        }

        /// For scaling sweeps: `--batch-per-rank 16` on 2 ranks is a global batch of 32, and
        /// `--lr-scaling linear` with `--base-batch 16` doubles the rate, so the run is 1 rank's
        /// with `--batch-size 32` in 2 replicas and twice the rate, bit for bit.
        @Test func batchPerRankAndLinearScalingGiveTheGlobalBatchAndRate() throws {
            let common = ["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "384", "--test-limit", "64",
                          "--optimizer", "sgd", "--momentum", "0.9", "--seed", "3", "--quiet"]
            let one = "\(root)/scaled-1", two = "\(root)/scaled-2"
            let single = try runProcess(CohortBinary.path, common + ["--batch-size", "32", "--lr", "0.004", "--threads", "1",
                                                                     "--replicas", "2", "--out", one])
            #expect(single.status == 0, "\(single.stderr)")
            let mpirun = try #require(Self.mpirun, "mpirun is not installed (apt-get install openmpi-bin)")
            let scaled = try runProcess(mpirun, MPIRun.localArguments(ranks: 2) + [CohortBinary.path] + common
                                        + ["--batch-per-rank", "16", "--lr", "0.002", "--lr-scaling", "linear", "--base-batch", "16",
                                           "--threads", "1", "--out", two], environment: Self.environment, timeout: 300)
            #expect(scaled.status == 0, "\(scaled.stderr)")
            let record = try RunRecord.read(directory: two)
            #expect(record.config.batchSize == 32 && record.config.batchPerRank == 16)
            try expectSameBits(two, one)
        }

        /// Gradient accumulation divides the loss by the global batch, not the micro-batch's:
        /// the mean train loss over 4 micro-batches equals the one over 4 ranks (the same
        /// per-sample losses, as the parameters are the same bits, summed in double in another
        /// order: far below 1e-5).
        @Test func accumulationKeepsTheLossOfTheGlobalBatch() throws {
            let four = try train("cnn", ranks: 4, batch: 32, name: "accumulate-4-ranks")
            let one = try train("cnn", ranks: 1, batch: 32, extra: ["--accumulate", "4"], name: "accumulate-1-rank")
            try expectSameBits(one, four)
            let summary = try #require(try RunSummary.read(directory: one)), reference = try #require(try RunSummary.read(directory: four))
            #expect(abs(summary.final.trainLoss - reference.final.trainLoss) < 1e-5, "the loss is the global batch's mean")
        }

        /// Augmented images depend on (seed, epoch, sample) alone: 2 and 4 ranks see the images
        /// 1 rank sees in 4 replicas, crops and flips for the CNN on 3-channel images, shifts for
        /// the GRU, and give its bits.
        @Test(arguments: ["cnn", "gru"])
        func augmentationIsTheSameOnAnyNumberOfRanks(model: String) throws {
            let one = try train(model, ranks: 1, batch: 32, extra: ["--augment", "--replicas", "4"], name: "\(model)-augment-1")
            let plain = try train(model, ranks: 1, batch: 32, extra: ["--replicas", "4"], name: "\(model)-plain-1")
            for (ranks, extra) in [(2, ["--replicas", "2"]), (4, [])] {
                try expectSameBits(try train(model, ranks: ranks, batch: 32, extra: ["--augment"] + extra,
                                             name: "\(model)-augment-\(ranks)"), one)
            }
            let a = try SafeTensors.read("\(one)/model.safetensors"), b = try SafeTensors.read("\(plain)/model.safetensors")
            #expect(a.keys.contains { a[$0]!.values != b[$0]!.values }, "--augment changed nothing")
        }

        @Test func overlapAndNoOverlapAgree() throws {
            // Small buckets, so that several allreduces are in flight during backward.
            let overlapped = try train("cnn", ranks: 2, batch: 64, extra: ["--bucket-mb", "0.05"], name: "overlap")
            let sequential = try train("cnn", ranks: 2, batch: 64, extra: ["--bucket-mb", "0.05", "--no-overlap"],
                                       name: "no-overlap")
            // With two ranks each element is a + b either way: bitwise equal.
            try expectSameBits(overlapped, sequential)
        }

        /// `--allreduce-dtype bf16` sends each gradient rounded to bfloat16 and has one rank sum each
        /// chunk in float, rounding the sum again. N ranks then equal 1 rank in N replicas (the
        /// same slices, summed in float) not to float rounding but to bf16's: at most 2^-9 of a
        /// value, twice, so over 3 steps the update (final minus initial parameters) is within
        /// 3 · 2 · 2^-9 ≈ 1.2% of the float run's, where a lost chunk or a wrong scale is off by
        /// tens of percent. Each value's sum is the same whatever the buckets and overlap: bit
        /// equality there. Every rank ends with the same bits (the trainer checks it; the run
        /// would fail otherwise).
        @Test func bf16OnTheWireEqualsOneRankToItsRounding() throws {
            for ranks in [2, 4] {
                let one = try train("cnn", ranks: 1, batch: 32, steps: 3, extra: ["--replicas", "\(ranks)"],
                                    name: "bf16-one-\(ranks)")
                let run = try train("cnn", ranks: ranks, batch: 32, steps: 3, extra: ["--allreduce-dtype", "bf16"],
                                    name: "bf16-\(ranks)")
                let tensors = try squaredDistances(run, one).values
                let relative = (tensors.map(\.difference).reduce(0, +) / tensors.map(\.update).reduce(0, +)).squareRoot()
                // Not 0: the float sum of the same slices is the 1-replica run's bit for bit, so the rounding shows.
                #expect(relative > 0 && relative < 3 * 2 * 0x1p-9, "\(ranks) ranks: update differs by \(relative) of 1 rank's")
            }
            let buckets = try train("cnn", ranks: 2, batch: 32, steps: 3, extra: ["--allreduce-dtype", "bf16", "--bucket-mb", "0.05",
                                                                                "--no-overlap"], name: "bf16-2-buckets")
            try expectSameBits(buckets, "\(root)/bf16-2")
        }

        @Test func indivisibleBatchFailsOnEveryRank() throws {
            let mpirun = try #require(Self.mpirun)
            let outcome = try runProcess(mpirun, ["-np", "3", "--oversubscribe", CohortBinary.path, "train",
                                                  "--batch-size", "64", "--out", "\(root)/bad"],
                                         environment: Self.environment, timeout: 60)
            #expect(!outcome.timedOut, "mpirun hung")
            #expect(outcome.status != 0)
            let message = "--batch-size 64 is not divisible by the 3 ranks"
            #expect(outcome.stderr.components(separatedBy: message).count - 1 == 3, "stderr: \(outcome.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(root)/bad/summary.json"))
        }
    }
}
