import CohortBase
@testable import CohortLaunch
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// Training on your own data under a real `mpirun`: 2 ranks give 1 rank's parameters bit for
    /// bit on a folder, on arrays and on a pack (1 rank accumulating 2 micro-batches adds the same
    /// two slices in the same tree as 2 ranks, `DataParallelTests`); a run on a pack resumed on
    /// another number of ranks continues the same sequence; the loader's threads change no bit;
    /// bad data ends every command with exit 64 before a run directory is made.
    @Suite(.serialized) struct UserDataTrainingTests {
        let scratch = ScratchDirectory("cohort-usertrain")
        var root: String { scratch.path }

        init() throws { try Fixtures.makeUserData(in: scratch.path) }

        /// `cohort ARGS` on `ranks` ranks of one thread.
        func cohort(_ arguments: [String], ranks: Int = 1) throws -> ProcessOutcome {
            guard ranks > 1 else { return try CohortBinary.run(arguments) }
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            return try runProcess(mpirun, MPIRun.localArguments(ranks: ranks) + [CohortBinary.path] + arguments,
                                  environment: DataParallelTests.environment, timeout: 300)
        }

        /// SGD steps of the CNN on `data` (`--dataset` and `--data-dir` flags) with global batch 12.
        func train(_ data: [String], out: String, ranks: Int = 1, epochs: Int = 2, extra: [String] = []) throws -> String {
            let run = "\(root)/\(out)"
            let outcome = try cohort(["train", "--model", "cnn", "--batch-size", "12", "--epochs", "\(epochs)",
                                      "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9", "--augment",
                                      "--threads", "1", "--seed", "5", "--quiet", "--out", run] + data + extra, ranks: ranks)
            #expect(outcome.status == 0, "\(out): \(outcome.stderr)")
            return run
        }

        func weights(_ run: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: "\(run)/model.safetensors")) }

        @Test func twoRanksGiveOneRanksParametersOnAFolderArraysAndAPack() throws {
            let folder = ["--dataset", "folder", "--data-dir", "\(root)/folder", "--image-size", "16"]
            let pack = "\(root)/pack"
            let packed = try cohort(["data", "pack", "\(root)/folder", "--out", pack, "--image-size", "16", "--shard-mb", "0.005"])
            #expect(packed.status == 0, "\(packed.stderr)")
            for (name, data) in [("folder", folder), ("arrays", ["--dataset", "arrays", "--data-dir", "\(root)/arrays4"]),
                                 ("pack", ["--dataset", "pack", "--data-dir", pack])] {
                let one = try train(data, out: "\(name)-1", extra: ["--accumulate", "2"])
                let two = try train(data, out: "\(name)-2", ranks: 2)
                #expect(try weights(one) == weights(two), "\(name): 2 ranks differ from 1 rank")
            }
            // The pack holds the folder's samples and normalisation: the same training, bit for bit
            // (the checksum of the parameters' bytes; the files' metadata name the data sets).
            func checksum(_ run: String) throws -> String? { try jsonObject("\(root)/\(run)/summary.json")["parameter_checksum"] as? String }
            #expect(try checksum("folder-1") != nil && checksum("folder-1") == checksum("pack-1"))
            // Every loader, from none to two threads, prepares the same batches.
            for threads in [0, 2] {
                let run = try train(folder, out: "folder-loader-\(threads)", extra: ["--accumulate", "2", "--loader-threads", "\(threads)"])
                #expect(try weights(run) == weights("\(root)/folder-1"), "--loader-threads \(threads)")
            }
            let record = try jsonObject("\(root)/folder-2/data.json")
            #expect(record["class_names"] as? [String] == ["Zebra", "ant", "bee"])
            let csv = try String(contentsOfFile: "\(root)/folder-2/metrics.csv", encoding: .utf8)
            #expect(csv.split(separator: "\n").first?.hasSuffix(",data_wait_seconds") == true)
        }

        @Test func aRunOnAPackResumedOnAnotherNumberOfRanksContinuesTheSameSequence() throws {
            let pack = "\(root)/pack"
            #expect(try cohort(["data", "pack", "\(root)/arrays4", "--out", pack]).status == 0)
            let data = ["--dataset", "pack", "--data-dir", pack]
            let whole = try train(data, out: "whole", ranks: 2, epochs: 3)
            let run = try train(data, out: "resumed", ranks: 2, epochs: 1)
            // The rest on 1 rank, whose 2 micro-batches add as the 2 ranks did.
            let resumed = try cohort(["train", "--resume", run, "--epochs", "3", "--accumulate", "2", "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try weights(whole) == weights(run))
        }

        @Test func evaluateAndPredictNameTheFoldersClasses() throws {
            let run = try train(["--dataset", "folder", "--data-dir", "\(root)/folder", "--image-size", "16"], out: "named", epochs: 1)
            let evaluated = try cohort(["evaluate", "--run", run])
            #expect(evaluated.status == 0, "\(evaluated.stderr)")
            #expect(evaluated.stdout.contains("Zebra") && evaluated.stdout.contains("bee"), "\(evaluated.stdout)")
            let predicted = try cohort(["predict", "--run", run, "\(root)/folder/test/bee/01.jpg", "--index", "0"])
            #expect(predicted.status == 0, "\(predicted.stderr)")
            #expect(predicted.stdout.contains("01.jpg: ") && predicted.stdout.contains("test image 0 (Zebra)"), "\(predicted.stdout)")
        }

        @Test func badDataEndsWithExit64BeforeARunDirectoryIsMade() throws {
            put("\(root)/folder/train/bee/broken.png", Data("not a png".utf8))
            let out = "\(root)/refused"
            for ranks in [1, 2] {
                let outcome = try cohort(["train", "--dataset", "folder", "--data-dir", "\(root)/folder", "--image-size", "16",
                                          "--batch-size", "12", "--out", out], ranks: ranks)
                #expect(outcome.status == 64 || (ranks > 1 && outcome.status != 0), "\(outcome.status): \(outcome.stderr)")
                #expect(outcome.stderr.contains("broken.png: neither a JPEG nor a PNG"), "\(outcome.stderr)")
                #expect(!FileManager.default.fileExists(atPath: out), "a run directory was made")
            }
            let skipped = try train(["--dataset", "folder", "--data-dir", "\(root)/folder", "--image-size", "16", "--skip-bad-files"],
                                    out: "skipping", epochs: 1)
            #expect(try jsonObject("\(skipped)/summary.json")["skipped_files"] as? Int == 1)
            let record = try jsonObject("\(skipped)/data.json")
            #expect((record["skipped_files"] as? [String])?.first?.contains("broken.png") == true)
            let packed = try cohort(["data", "pack", "\(root)/folder", "--out", "\(root)/nopack", "--image-size", "16"])
            #expect(packed.status == 64 && packed.stderr.contains("broken.png"), "\(packed.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(root)/nopack/pack.json"))
        }
    }
}
