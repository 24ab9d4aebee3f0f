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
    /// N ranks under a real `mpirun` against 1 rank with the same global batch: the same
    /// parameters up to the order of float additions, identical on every rank, whatever
    /// the communication mode; a batch that does not divide fails on every rank.
    @Suite(.serialized) struct DataParallelTests {
        static let mpirun: String? = MPIRun.executable
        static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                  "OMPI_MCA_rmaps_base_oversubscribe": "1"]

        let scratch = ScratchDirectory("cohort-dp")
        var root: String { scratch.path }

        /// 12 steps of `model` on synthetic data with global batch `batch`, on `ranks` ranks.
        ///
        /// SGD with momentum and a small step: the runs differ only by the order of float
        /// additions, but two things amplify that rounding into real differences, and the test
        /// is about the data-parallel arithmetic, not about them. Adaptive optimizers (Adam,
        /// Adagrad) divide by the gradient's own size, turning rounding noise on near-zero
        /// gradients into steps of ±lr; and a ReLU or max-pool decision that sits within
        /// rounding of its threshold flips, changing one gradient term by an amount that grows
        /// with lr. With a small lr the runs agree to rounding while a wrong slice, scale or
        /// reduction still moves parameters by far more than the 1e-5 tolerance. The run is kept
        /// short because such flips are rare but not impossible: the CNN makes about a million
        /// ReLU and pooling decisions per step (docs/performance.md, "Exactness is kept while speeding up").
        func train(_ model: String, ranks: Int, batch: Int, extra: [String] = [], name: String) throws -> String {
            let out = "\(root)/\(name)"
            var arguments = ["train", "--model", model, "--dataset", "synthetic", "--batch-size", "\(batch)",
                             "--limit", "\(12 * batch)", "--test-limit", "64", "--epochs", "1", "--optimizer", "sgd",
                             "--lr", "0.002", "--momentum", "0.9", "--hidden", "32", "--seed", "3", "--quiet", "--out", out] + extra
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

        /// Every tensor of two runs' `model.safetensors` within `tolerance` relative to the
        /// tensor's scale: `|a - b| <= tolerance · max(|b|, max_i |b_i|)`.
        func expectSameParameters(_ a: String, _ b: String, tolerance: Float = 1e-5, bitwise: Bool = false,
                                  sourceLocation: SourceLocation = #_sourceLocation) throws {
            let x = try SafeTensors.read("\(a)/model.safetensors"), y = try SafeTensors.read("\(b)/model.safetensors")
            #expect(Set(x.keys) == Set(y.keys), sourceLocation: sourceLocation)
            for (name, reference) in y {
                let values = try #require(x[name]).values
                if bitwise {
                    #expect(values == reference.values, "\(name) differs between \(a) and \(b)", sourceLocation: sourceLocation)
                    continue
                }
                let scale = reference.values.map(abs).max() ?? 0
                var worst: Float = 0
                for (v, r) in zip(values, reference.values) { worst = max(worst, abs(v - r) / max(abs(r), scale)) }
                #expect(worst <= tolerance, "\(name): relative difference \(worst) between \(a) and \(b)",
                        sourceLocation: sourceLocation)
            }
        }

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

        @Test(arguments: ["cnn", "gru"])
        func nRanksEqualOneRank(model: String) throws {
            let one = try train(model, ranks: 1, batch: 64, name: "\(model)-1")
            // Training moved the parameters away from their initialisation, so agreeing runs agree on training.
            let initial = try TestModels.network(for: "\(one)/config.json")
            initial.initializeParameters(seed: 3)
            let trained = try TestModels.network(for: "\(one)/config.json")
            try SafeTensors.load("\(one)/model.safetensors", into: trained)
            let moved = zip(initial.parameters.array, trained.parameters.array).map { abs($0 - $1) }.max() ?? 0
            #expect(moved > 1e-4, "parameters moved only \(moved)")
            for ranks in [2, 4] {
                let many = try train(model, ranks: ranks, batch: 64, name: "\(model)-\(ranks)")
                try expectSameParameters(many, one)
                try expectRanksIdentical(many)
            }
            // An odd number of ranks.
            let oneOdd = try train(model, ranks: 1, batch: 48, name: "\(model)-1-b48")
            let three = try train(model, ranks: 3, batch: 48, name: "\(model)-3-b48")
            try expectSameParameters(three, oneOdd)
            try expectRanksIdentical(three)
            // The metrics are the run's, not one rank's: train loss within float rounding.
            let a = try String(contentsOfFile: "\(one)/metrics.csv", encoding: .utf8).split(separator: "\n")[1].split(separator: ",")
            let b = try String(contentsOfFile: "\(root)/\(model)-2/metrics.csv", encoding: .utf8).split(separator: "\n")[1]
                .split(separator: ",")
            #expect(abs(Double(a[1])! - Double(b[1])!) < 1e-4 && a[2] == b[2], "train loss/acc \(a[1...2]) vs \(b[1...2])")
        }

        /// Replicas inside one process split its batch as ranks do: the same parameters as one replica.
        @Test(arguments: ["cnn", "gru"])
        func replicasEqualOneReplica(model: String) throws {
            let one = try train(model, ranks: 1, batch: 64, extra: ["--threads", "2", "--replicas", "1"], name: "\(model)-r1")
            let two = try train(model, ranks: 1, batch: 64, extra: ["--threads", "2", "--replicas", "2"], name: "\(model)-r2")
            let four = try train(model, ranks: 2, batch: 64, extra: ["--threads", "2", "--replicas", "4"], name: "\(model)-2x4")
            try expectSameParameters(two, one)
            try expectSameParameters(four, one)
            try expectRanksIdentical(four)
            let config = try String(contentsOfFile: "\(two)/config.json", encoding: .utf8)
            #expect(config.contains("\"replicas_per_rank\" : 2"))
        }

        /// For scaling sweeps: `--batch-per-rank 16` on 2 ranks is a global batch of 32, and
        /// `--lr-scaling linear` with `--base-batch 16` doubles the rate, so the run equals one
        /// rank with `--batch-size 32` and twice the rate, up to rounding.
        @Test func batchPerRankAndLinearScalingGiveTheGlobalBatchAndRate() throws {
            let common = ["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "384", "--test-limit", "64",
                          "--optimizer", "sgd", "--momentum", "0.9", "--seed", "3", "--quiet"]
            let one = "\(root)/scaled-1", two = "\(root)/scaled-2"
            let single = try runProcess(CohortBinary.path, common + ["--batch-size", "32", "--lr", "0.004", "--out", one])
            #expect(single.status == 0, "\(single.stderr)")
            let mpirun = try #require(Self.mpirun, "mpirun is not installed (apt-get install openmpi-bin)")
            let scaled = try runProcess(mpirun, MPIRun.localArguments(ranks: 2) + [CohortBinary.path] + common
                                        + ["--batch-per-rank", "16", "--lr", "0.002", "--lr-scaling", "linear", "--base-batch", "16",
                                           "--out", two], environment: Self.environment, timeout: 300)
            #expect(scaled.status == 0, "\(scaled.stderr)")
            let record = try RunRecord.read(directory: two)
            #expect(record.config.batchSize == 32 && record.config.batchPerRank == 16)
            try expectSameParameters(two, one)
        }

        /// Gradient accumulation: 1 rank in 4 micro-batches makes the updates of 4 ranks (and of
        /// 2 ranks in 2), up to rounding; the loss is still divided by the global batch.
        @Test func accumulationOnFewerRanksEqualsMoreRanks() throws {
            let four = try train("cnn", ranks: 4, batch: 32, name: "accumulate-4-ranks")
            let one = try train("cnn", ranks: 1, batch: 32, extra: ["--accumulate", "4"], name: "accumulate-1-rank")
            let two = try train("cnn", ranks: 2, batch: 32, extra: ["--accumulate", "2"], name: "accumulate-2-ranks")
            try expectSameParameters(one, four)
            try expectSameParameters(two, four)
            let summary = try #require(try RunSummary.read(directory: one)), reference = try #require(try RunSummary.read(directory: four))
            #expect(abs(summary.final.trainLoss - reference.final.trainLoss) < 1e-5, "the loss is the global batch's mean")
        }

        /// Augmented images depend on (seed, epoch, sample) alone: 2 and 4 ranks see the images
        /// 1 rank sees, crops and flips for the CNN on 3-channel images, shifts for the GRU.
        @Test(arguments: ["cnn", "gru"])
        func augmentationIsTheSameOnAnyNumberOfRanks(model: String) throws {
            let one = try train(model, ranks: 1, batch: 32, extra: ["--augment"], name: "\(model)-augment-1")
            let plain = try train(model, ranks: 1, batch: 32, name: "\(model)-plain-1")
            for ranks in [2, 4] {
                try expectSameParameters(try train(model, ranks: ranks, batch: 32, extra: ["--augment"],
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
            try expectSameParameters(overlapped, sequential, bitwise: true)
        }

        /// `--allreduce-dtype bf16` sends each gradient rounded to bfloat16 and has one rank sum each
        /// chunk in float, rounding the sum again. N ranks then equal 1 rank not to float rounding but
        /// to bf16's (at most 2^-9 of a value, twice): the update (final minus initial parameters) is
        /// within 1% of 1 rank's, where a lost chunk or a wrong scale is off by tens of percent. Each
        /// value's sum is the same whatever the buckets and overlap: bit equality there. Every rank
        /// ends with the same bits (the trainer checks it; the run would fail otherwise).
        @Test func bf16OnTheWireEqualsOneRankToItsRounding() throws {
            let one = try train("cnn", ranks: 1, batch: 32, extra: ["--save-initial"], name: "bf16-one")
            let initial = try SafeTensors.read("\(one)/initial.safetensors"), reference = try SafeTensors.read("\(one)/model.safetensors")
            for ranks in [2, 4] {
                let run = try train("cnn", ranks: ranks, batch: 32, extra: ["--allreduce-dtype", "bf16"], name: "bf16-\(ranks)")
                let final = try SafeTensors.read("\(run)/model.safetensors")
                var difference = 0.0, update = 0.0
                for (name, r) in reference {
                    for ((v, r), i) in zip(zip(try #require(final[name]).values, r.values), try #require(initial[name]).values) {
                        difference += Double((v - r) * (v - r))
                        update += Double((r - i) * (r - i))
                    }
                }
                let relative = (difference / update).squareRoot()
                // Not 0: the 2-rank float sum equals 1 rank's bitwise, so the rounding shows.
                #expect(relative > 0 && relative < 0.01, "\(ranks) ranks: update differs by \(relative) of 1 rank's")
            }
            let buckets = try train("cnn", ranks: 2, batch: 32, extra: ["--allreduce-dtype", "bf16", "--bucket-mb", "0.05",
                                                                       "--no-overlap"], name: "bf16-2-buckets")
            try expectSameParameters(buckets, "\(root)/bf16-2", bitwise: true)
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
