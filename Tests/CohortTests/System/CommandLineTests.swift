import CohortBase
@testable import CohortBench
import CohortData
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// The `cohort` binary end to end: a real run writes the whole run directory, and bad
    /// flags or data give a one-line error and a non-zero exit, with no success claimed.
    @Suite(.serialized) struct CommandLineTests {
        let scratch = ScratchDirectory("cohort-cli")
        var out: String { "\(scratch.path)/run" }

        @Test func binaryIsBuilt() {
            #expect(FileManager.default.isExecutableFile(atPath: CohortBinary.path), "no cohort binary at \(CohortBinary.path)")
        }

        /// Every training setting is a flag of `cohort train`, with the settings type's help and
        /// default; the model and parallel settings are flags of `cohort bench` too.
        @Test func everySettingIsAFlag() throws {
            let train = try CohortBinary.run(["train", "--help"]).stdout
            let bench = try CohortBinary.run(["bench", "--help"]).stdout
            let words = { (help: String) in Set(help.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)) }
            for key in TrainingConfig.Key.allCases {
                #expect(words(train).contains(SettingsTests.flag(key)), "cohort train --help lacks \(SettingsTests.flag(key))")
            }
            for key in BenchSettings.trainingKeys {
                #expect(words(bench).contains(SettingsTests.flag(key)), "cohort bench --help lacks \(SettingsTests.flag(key))")
            }
            let oneLine = train.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(oneLine.contains("Global batch size, split evenly over the ranks (default: 64)."), "\(train)")
        }

        /// Where oneDNN has no bf16 kernels (a CPU without AVX-512, or here oneDNN limited to its
        /// AVX2 kernels, which has the same effect on any x86-64 CPU), `--precision bf16` is
        /// refused before anything is written, naming what is missing, with exit 64.
        @Test func bf16IsRefusedWhereOneDNNHasNoBF16Kernels() throws {
            let result = try CohortBinary.run(["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "64",
                                               "--precision", "bf16", "--quiet", "--out", out],
                                              environment: ["DNNL_MAX_CPU_ISA": "AVX2"])
            #expect(result.status == 64, "\(result.stderr)")
            #expect(result.stderr.contains("--precision bf16: oneDNN runs AVX2 kernels here (limited by DNNL_MAX_CPU_ISA=AVX2), "
                                           + "and its bfloat16 kernels need AVX-512; use --precision fp32"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "a refused run wrote \(out)")
        }

        /// Where oneDNN has bf16 kernels, `--precision bf16` trains and says so in config.json.
        @Test(.needsBF16Kernels) func bf16TrainsWhereOneDNNHasBF16Kernels() throws {
            let result = try CohortBinary.run(["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "128",
                                               "--test-limit", "32", "--batch-size", "32", "--precision", "bf16", "--quiet",
                                               "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try RunRecord.read(directory: out).config.precision == .bf16)
        }

        @Test func trainWritesTheRunDirectory() throws {
            let result = try CohortBinary.run(["train", "--model", "gru", "--hidden", "16", "--dataset", "synthetic", "--limit", "512",
                                       "--test-limit", "128", "--batch-size", "32", "--epochs", "3", "--optimizer", "adam",
                                       "--lr", "0.01", "--save-initial", "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            for file in ["initial.safetensors", "config.json", "metrics.csv", "metrics.jsonl", "summary.json", "loss.svg", "accuracy.svg",
                         "model.safetensors"] {
                #expect(FileManager.default.fileExists(atPath: "\(out)/\(file)"), "\(file) missing")
            }
            let csv = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n")
            #expect(csv.first?.hasPrefix("epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_s") == true)
            #expect(csv.count == 4)
            let rows = csv.dropFirst().map { $0.split(separator: ",").map { Double($0)! } }
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/summary.json")))
                as! [String: Any]
            let best = summary["best"] as! [String: Double], final = summary["final"] as! [String: Double]
            // Best = max accuracy / min loss over the epochs of metrics.csv; final = the last row.
            // (Foundation's JSON parser may round the last bit differently from Double(String).)
            func same(_ a: Double?, _ b: Double?) -> Bool { abs(a! - b!) <= 1e-12 * abs(b!) }
            #expect(same(best["test_acc"], rows.map { $0[4] }.max()))
            #expect(same(best["train_loss"], rows.map { $0[1] }.min()))
            #expect(same(final["test_loss"], rows.last![3]))
            #expect(summary["epochs"] as? Int == 3 && summary["world_size"] as? Int == 1)
            // Learning happened: the training loss falls, well below chance's ln(10) = 2.30.
            #expect(rows[2][1] < rows[0][1] && rows[2][1] < 2.0)
            #expect(result.stdout.contains("epoch 3/3"))
            let jsonl = try String(contentsOfFile: "\(out)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(jsonl.count == 3)
            // initial.safetensors holds the seeded initialisation; training moved away from it.
            let initial = Models.make(.gru, imageShape: [1, 28, 28], hidden: 16, maxBatch: 1)
            initial.initializeParameters(seed: 0)
            let saved = Models.make(.gru, imageShape: [1, 28, 28], hidden: 16, maxBatch: 1)
            try SafeTensors.load("\(out)/initial.safetensors", into: saved)
            #expect(saved.parameters.array == initial.parameters.array)
            try SafeTensors.load("\(out)/model.safetensors", into: saved)
            #expect(saved.parameters.array != initial.parameters.array)
        }

        /// Runs `arguments` and expects failure with `fragment` in a short message and no summary.
        func expectFailure(_ arguments: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try CohortBinary.run(["train", "--out", out] + arguments)
            #expect(result.status != 0, "exit 0 for \(arguments)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(fragment), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"),
                    "crashed: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: "\(out)/summary.json"), sourceLocation: sourceLocation)
        }

        @Test func badFlags() throws {
            try expectFailure(["--model", "transformer"], "--model")
            try expectFailure(["--dataset", "imagenet"], "--dataset")
            try expectFailure(["--optimizer", "lion"], "--optimizer")
            try expectFailure(["--lr", "0"], "--lr must be a positive number")
            try expectFailure(["--lr", "-1"], "--lr")
            try expectFailure(["--lr", "abc"], "--lr")
            try expectFailure(["--epochs", "0"], "--epochs must be positive")
            try expectFailure(["--batch-size", "0"], "--batch-size must be positive")
            try expectFailure(["--batch-size=-4"], "--batch-size must be positive")
            try expectFailure(["--hidden", "0"], "--hidden must be positive")
            try expectFailure(["--limit", "0"], "--limit must be positive")
            try expectFailure(["--nesterov"], "--nesterov needs")
            try expectFailure(["--replicas", "0"], "--replicas must be positive")
            try expectFailure(["--replicas", "3"], "which 3 replicas cannot share equally")
            try expectFailure(["--batch-size", "32", "--batch-per-rank", "16"], "--batch-size (the global batch) or --batch-per-rank")
            try expectFailure(["--lr-schedule", "step"], "--lr-schedule step needs --step-epochs")
            try expectFailure(["--lr-schedule", "linear"], "--lr-schedule")
            try expectFailure(["--warmup-epochs", "2"], "--warmup-epochs must be in 0...--epochs (1)")
            try expectFailure(["--lr-scaling", "cube"], "--lr-scaling")
            try expectFailure(["--accumulate", "0"], "--accumulate must be in 1...2^20")
            try expectFailure(["--batch-size", "32", "--accumulate", "3"], "--accumulate 3 cannot cut into equal micro-batches")
        }

        @Test func badData() throws {
            let dir = "\(scratch.path)/bad"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try expectFailure(["--dataset", "mnist", "--data-dir", "\(dir)/missing"], "no such directory")
            try expectFailure(["--dataset", "mnist", "--data-dir", dir], "no train-images-idx3-ubyte")
            try expectFailure(["--dataset", "cifar10", "--data-dir", dir], "missing data_batch_1.bin")
            put("\(dir)/train-images-idx3-ubyte", Data([0, 0, 8, 3, 0, 0, 0, 9]))
            put("\(dir)/train-labels-idx1-ubyte", Data([0, 0, 8, 1, 0, 0, 0, 1, 0]))
            put("\(dir)/t10k-images-idx3-ubyte", Data())
            put("\(dir)/t10k-labels-idx1-ubyte", Data())
            try expectFailure(["--dataset", "mnist", "--data-dir", dir], "train-images-idx3-ubyte: IDX header is truncated")
            try expectFailure(["--dataset", "synthetic", "--model", "cnn", "--limit", "10"], "larger than the 10 training samples")
            try expectFailure(["--dataset", "cifar10", "--model", "gru", "--data-dir", Self.fakeCIFAR(in: scratch.path)], "one-channel")
        }

        /// `cohort bench` on a tiny configuration (1 rank, plus 2 under mpirun when it is
        /// installed): bench.json has every field for each configuration. Speed is not asserted.
        @Test func benchWritesEveryField() throws {
            let ranks = DataParallelTests.mpirun == nil ? "1" : "1,2"
            let result = try CohortBinary.run(["bench", "--model", "gru", "--hidden", "16", "--batch-size", "8", "--ranks", ranks,
                                       "--steps", "2", "--warmup", "1", "--sgemm-seconds", "0.05", "--out", out],
                                      environment: DataParallelTests.environment)
            #expect(result.status == 0, "\(result.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/bench.json")))
                as! [String: Any]
            #expect((report["machine_sgemm_gflops"] as? Double ?? 0) > 0)
            let configurations = report["configurations"] as! [[String: Any]]
            #expect(configurations.map { $0["ranks"] as? Int } == ranks.split(separator: ",").map { Int($0) })
            for c in configurations {
                for key in ["ranks", "threads_per_rank", "global_batch", "steps", "seconds", "samples_per_s", "speedup",
                            "efficiency", "model_gflop_per_sample", "effective_gflops", "machine_sgemm_gflops",
                            "fraction_of_sgemm"] {
                    #expect(c[key] as? Double != nil, "\(key) missing in \(c)")
                }
                let shares = c["phase_share"] as! [String: Double]
                #expect(Set(shares.keys) == ["data", "forward", "backward", "allreduce_wait", "optimizer"])
                #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
                #expect((c["samples_per_s"] as! Double) > 0)
            }
            #expect(FileManager.default.fileExists(atPath: "\(out)/bench.svg"))
            #expect(result.stdout.contains("speedup"))

            // `cohort scale` reads the 1-rank configuration: compute per sample is its time without the allreduce wait.
            let scale = try CohortBinary.run(["scale", "--bench", "\(out)/bench.json", "--max-nodes", "4", "--out", "\(out)/scale"])
            #expect(scale.status == 0, "\(scale.stderr)")
            let one = try #require(configurations.first { $0["ranks"] as? Int == 1 })
            let wait = (one["phase_seconds"] as! [String: Double])["allreduce_wait"]!
            let perSample = ((one["seconds"] as! Double) - wait) / (one["steps"] as! Double) / (one["global_batch"] as! Double)
            let predicted = try jsonObject("\(out)/scale/scale.json")
            #expect((predicted["seconds_per_sample"] as? Double).map { abs($0 - perSample) <= 1e-12 * perSample } == true,
                    "\(predicted) against \(perSample)")
            #expect(predicted["per_rank_batch"] as? Int == one["global_batch"] as? Int)
            #expect(predicted["bucket_bytes"] as? [Int] == one["bucket_bytes"] as? [Int])
            #expect((predicted["rows"] as? [[String: Any]])?.compactMap { $0["nodes"] as? Int } == [1, 2, 4])
        }

        @Test func benchBadFlags() throws {
            for (flags, message) in [(["--ranks", "1,x"], "--ranks must be positive integers"),
                                     (["--ranks", "0"], "--ranks must be positive integers"),
                                     (["--ranks", "3", "--batch-size", "64"], "not divisible by the 3 ranks")] {
                let result = try CohortBinary.run(["bench", "--out", out] + flags)
                #expect(result.status != 0)
                #expect(result.stderr.contains(message), "\(result.stderr)")
            }
        }

        /// A CIFAR-10 directory with one record per file.
        static func fakeCIFAR(in parent: String) -> String {
            let dir = "\(parent)/cifar"
            try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for name in CIFAR10.trainFiles + CIFAR10.testFiles {
                put("\(dir)/\(name)", Data([3] + [UInt8](repeating: 7, count: 3072)))
            }
            return dir
        }
    }
}
