import CohortBase
import CohortNN
import CohortOptim
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// A resumed run equals one that never stopped, bit for bit, for every optimizer (each
    /// keeps its own state in the checkpoint); with other threads or replicas it says that it
    /// continues only up to rounding; the TensorBoard file holds each epoch once.
    @Suite(.serialized) struct ResumeTests {
        let scratch = ScratchDirectory("cohort-resume")

        /// A GRU on synthetic data: 10 steps an epoch, checkpoints at steps 7 and 10 of epoch 1.
        func arguments(_ out: String, epochs: Int, optimizer: [String]) -> [String] {
            ["train", "--model", "gru", "--hidden", "16", "--dataset", "synthetic", "--limit", "320", "--test-limit", "64",
             "--batch-size", "32", "--epochs", "\(epochs)", "--checkpoint-steps", "7", "--seed", "2", "--quiet",
             "--out", out] + optimizer
        }

        /// metrics.csv without the timing columns.
        func figures(_ run: String) throws -> [String] {
            try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8).split(separator: "\n").map {
                let c = $0.split(separator: ",", omittingEmptySubsequences: false)
                return (c[0..<5] + [c[8]]).joined(separator: ",")
            }
        }

        @Test(arguments: [["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nesterov"],
                          ["--optimizer", "adagrad", "--lr", "0.01"],
                          ["--optimizer", "rmsprop", "--lr", "0.001", "--momentum", "0.5"],
                          ["--optimizer", "adam", "--lr", "0.001"],
                          ["--optimizer", "adamw", "--lr", "0.001"]])
        func aResumeMidEpochEqualsTheUninterruptedRun(optimizer: [String]) throws {
            let name = optimizer[1], reference = "\(scratch.path)/\(name)-whole", run = "\(scratch.path)/\(name)-resumed"
            #expect(try CohortBinary.run(arguments(reference, epochs: 2, optimizer: optimizer)).status == 0)
            // One epoch, then the end-of-epoch checkpoint is lost: the resume starts at step 7.
            #expect(try CohortBinary.run(arguments(run, epochs: 1, optimizer: optimizer)).status == 0)
            #expect(Checkpoint.list(run: run) == ["step-000000010", "step-000000007"])
            try FileManager.default.removeItem(atPath: "\(Checkpoint.directory(run: run))/step-000000010")
            let resumed = try CohortBinary.run(["train", "--resume", run, "--epochs", "2", "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(!resumed.stderr.contains("up to float rounding"), "\(resumed.stderr)")
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(reference)/model.safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(run)/model.safetensors"))
            #expect(a == b, "\(name): the resumed run ends with other parameters")
            #expect(try figures(run) == figures(reference), "\(name)")
            // Epoch 1 was written before the resume and again after it: the event file has it once.
            let eventFiles = try FileManager.default.contentsOfDirectory(atPath: run)
                .filter { $0.hasPrefix("events.out.tfevents.") }
            #expect(eventFiles.count == 1, "\(eventFiles)")
            let events = try readEvents(Data(contentsOf: URL(fileURLWithPath: "\(run)/\(eventFiles[0])")))
            #expect(events.filter { $0.scalars["loss/train"] != nil }.map(\.step) == [1, 2])
            #expect(events.filter { $0.scalars["lr/step"] != nil }.map(\.step) == Array(1...20))
        }

        /// A schedule is a function of the global step, and an augmentation of (seed, epoch,
        /// sample): a run resumed inside its warmup (8 steps; the checkpoint at step 7) takes the
        /// same rates and images and ends the same. Step decay, which does not depend on
        /// --epochs, so that the first run can stop after one epoch.
        @Test func aResumeMidWarmupWithAugmentationContinuesExactly() throws {
            let schedule = ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "step",
                            "--step-epochs", "1", "--gamma", "0.5", "--warmup-epochs", "0.8", "--augment"]
            let reference = "\(scratch.path)/schedule-whole", run = "\(scratch.path)/schedule-resumed"
            #expect(try CohortBinary.run(arguments(reference, epochs: 2, optimizer: schedule)).status == 0)
            #expect(try CohortBinary.run(arguments(run, epochs: 1, optimizer: schedule)).status == 0)
            try FileManager.default.removeItem(atPath: "\(Checkpoint.directory(run: run))/step-000000010")
            let resumed = try CohortBinary.run(["train", "--resume", run, "--epochs", "2", "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(reference)/model.safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(run)/model.safetensors"))
            #expect(a == b, "the resumed run ends with other parameters")
            #expect(try figures(run) == figures(reference))
            // metrics.csv gives each epoch's last rate: the peak, then half of it.
            for directory in [run, reference] {
                let rows = try String(contentsOfFile: "\(directory)/metrics.csv", encoding: .utf8).split(separator: "\n")
                    .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                let column = try #require(rows.first?.firstIndex(of: "lr"))
                let rates = rows.dropFirst().map { $0.indices.contains(column) ? $0[column] : nil }
                #expect(rates == ["0.05", "0.025"], "\(directory): \(rates)")
            }
        }

        /// Which resumes continue bit for bit: the same slices summed in the same tree.
        @Test func executionsThatGiveTheSameBits() {
            func run(_ ranks: Int, _ threads: Int, _ replicas: Int, _ micro: Int = 1, bucket: Double = 25) -> Execution {
                Execution(worldSize: ranks, threadsPerRank: threads, replicasPerRank: replicas, bucketMb: bucket, accumulate: micro)
            }
            // Powers of two of slices per rank, in any mix of ranks, replicas and micro-batches, any buckets.
            for other in [run(2, 1, 1), run(1, 1, 1, 2), run(2, 1, 1, bucket: 0.05)] { #expect(run(1, 2, 2).givesTheSameBits(as: other)) }
            #expect(run(1, 4, 4).givesTheSameBits(as: run(2, 1, 1, 2)))
            #expect(run(3, 2, 2).givesTheSameBits(as: run(1, 6, 6)))
            #expect(run(3, 1, 1).givesTheSameBits(as: run(1, 3, 3)))
            // Another number of slices, other threads per slice, or trees that do not nest.
            #expect(!run(1, 2, 2).givesTheSameBits(as: run(1, 1, 1)))
            #expect(!run(1, 2, 1).givesTheSameBits(as: run(2, 1, 1)))
            #expect(!run(2, 3, 3).givesTheSameBits(as: run(1, 6, 6)))
            #expect(!run(1, 3, 3, 2).givesTheSameBits(as: run(1, 2, 2, 3)))
        }

        @Test func aResumeWithOtherThreadsSaysItContinuesUpToRounding() throws {
            let run = "\(scratch.path)/threads"
            let sgd = ["--optimizer", "sgd", "--lr", "0.01", "--threads", "2", "--replicas", "2"]
            #expect(try CohortBinary.run(arguments(run, epochs: 1, optimizer: sgd)).status == 0)
            let resumed = try CohortBinary.run(["train", "--resume", run, "--epochs", "2", "--threads", "1", "--replicas", "1"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(resumed.stderr.contains("1 rank(s) x 2 thread(s) in 2 replica(s), 25 MiB buckets, this run has "
                                            + "1 rank(s) x 1 thread(s) in 1 replica(s)"), "\(resumed.stderr)")
            #expect(resumed.stderr.contains("up to float rounding, not bit for bit"))
        }

        /// A checkpoint written at a step that already has one replaces it whole.
        @Test func aCheckpointAtAnExistingStepIsReplaced() throws {
            let run = "\(scratch.path)/replace"
            let network = Models.make(.gru, imageShape: [1, 4, 4], hidden: 4, classes: 3, maxBatch: 2)
            network.initializeParameters(seed: 1)
            let optimizer = OptimizerKind.adam.make(count: network.parameterCount, learningRate: 0.01)
            let position = TrainingPosition(epoch: 0, step: 3, optimizerSteps: 3, skippedSteps: 0, stepsPerEpoch: 5,
                                            partialSums: [1, 2], history: [])
            let execution = Execution(worldSize: 1, threadsPerRank: 1, replicasPerRank: 1, bucketMb: 25, accumulate: 1)
            let first = try Checkpoint.write(run: run, network: network, optimizer: optimizer, position: position,
                                             settings: .object([:]), execution: execution)
            network.parameters.pointer[0] += 1
            let second = try Checkpoint.write(run: run, network: network, optimizer: optimizer, position: position,
                                              settings: .object([:]), execution: execution)
            #expect(first == second)
            let loaded = try Checkpoint.load(second)
            let name = network.tensors[0].name
            #expect(loaded.parameters[name]?.values.first == network.parameters.pointer[0])
            let entries = try FileManager.default.contentsOfDirectory(atPath: Checkpoint.directory(run: run))
            #expect(entries == ["step-000000003"], "nothing else is left: \(entries)")
        }
    }
}
