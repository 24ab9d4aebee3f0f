import CohortBase
@testable import CohortBench
import CohortData
import CohortNN
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
@testable import CohortTraining
import Foundation
import Testing

/// Mutation fuzzing of everything that reads files: valid IDX, CIFAR-10, safetensors, JSON,
/// sweep files and hostfiles are damaged at random (bits flipped, bytes replaced, header
/// fields set to extreme values, cut short, extended, gzip-wrapped) and each reader must
/// either accept the file or throw its own error: never trap, hang or throw something else.
/// Seeded, so a failure repeats; bounded by COHORT_FUZZ_SECONDS per reader (default 2;
/// .ci/run gives more).
@Suite struct FuzzTests {
    let scratch = ScratchDirectory("cohort-fuzz")
    static let seconds = Double(ProcessInfo.processInfo.environment["COHORT_FUZZ_SECONDS"] ?? "") ?? 2

    /// Runs `body` on mutations of `seed` until the time is up, and on at least 50.
    func fuzz(_ name: String, seed input: [UInt8], _ body: ([UInt8]) throws -> Void) {
        // Seeded by the name's FNV-1a (Swift's hashValue differs from process to process).
        var rng = SplitMix64(seed: Array(name.utf8).withUnsafeBytes(fnv1a), stream: 9)
        let deadline = Date().addingTimeInterval(Self.seconds)
        var cases = 0
        while Date() < deadline || cases < 50 {
            var bytes = input
            for _ in 0..<(1 + rng.nextIndex(below: 4)) { mutate(&bytes, &rng) }
            do { try body(bytes) } catch is CohortError {} catch {
                Issue.record("\(name): case \(cases) threw \(type(of: error)): \(error)")
            }
            cases += 1
        }
    }

    func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        let extremes: [UInt32] = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x0100_0000, 60_000]
        switch rng.nextIndex(below: 7) {
        case 0 where !bytes.isEmpty:  // flip a bit
            bytes[rng.nextIndex(below: bytes.count)] ^= UInt8(1 << rng.nextIndex(below: 8))
        case 1 where !bytes.isEmpty:  // replace a byte
            bytes[rng.nextIndex(below: bytes.count)] = UInt8(rng.nextIndex(below: 256))
        case 2 where bytes.count >= 4:  // a big-endian header word set to an extreme
            let at = 4 * rng.nextIndex(below: min(4, bytes.count / 4))
            let v = extremes[rng.nextIndex(below: extremes.count)]
            for k in 0..<4 { bytes[at + k] = UInt8(v >> (24 - 8 * UInt32(k)) & 0xFF) }
        case 3:  // cut short
            bytes = Array(bytes.prefix(rng.nextIndex(below: bytes.count + 1)))
        case 4:  // extend
            bytes += (0..<(1 + rng.nextIndex(below: 64))).map { _ in UInt8(rng.nextIndex(below: 256)) }
        case 5:  // gzip it (readers take gzip or not, by magic)
            bytes = gzip(bytes)
        default:  // a random byte string of a similar length
            bytes = (0..<rng.nextIndex(below: bytes.count + 16)).map { _ in UInt8(rng.nextIndex(below: 256)) }
        }
    }

    func gzip(_ bytes: [UInt8]) -> [UInt8] {
        let path = "\(scratch.path)/gz-\(UUID().uuidString)"
        writeGzip(bytes, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }

    func file(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = "\(scratch.path)/\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func idxReaders() {
        let images = DataTests.idxImages(count: 6, rows: 5, columns: 4), labels = DataTests.idxLabels([1, 2, 3, 4, 5, 6])
        fuzz("idx images", seed: images) { bytes in
            let dataset = try IDX.load(images: file(bytes, "images"), labels: file(labels, "labels"), name: "fuzz")
            #expect(dataset.count == 6 && dataset.pixels.count == dataset.count * dataset.sampleSize)
        }
        fuzz("idx labels", seed: labels) { bytes in
            _ = try IDX.load(images: file(images, "images"), labels: file(bytes, "labels"), name: "fuzz")
        }
    }

    @Test func cifarReader() {
        let records = DataTests.cifarRecords([3, 7])
        fuzz("cifar", seed: records) { bytes in
            let dataset = try CIFAR10.load(files: [file(bytes, "batch.bin")])
            #expect(dataset.pixels.count == dataset.count * 3072 && dataset.labels.allSatisfy { $0 < 10 })
        }
    }

    /// A model file and a checkpoint's optimizer file, as `visualize --checkpoint` and resume read them.
    @Test func safetensorsReader() {
        let network = Models.make(.gru, imageShape: [1, 4, 4], hidden: 3, classes: 2, maxBatch: 1)
        network.initializeParameters(seed: 4)
        let file = SafeTensors.encode(tensors: network.tensors, storage: network.parameters.pointer,
                                      metadata: [("format", "pt")])
        fuzz("safetensors", seed: Array(file)) { bytes in
            let tensors = try SafeTensors.decode(Data(bytes), path: "fuzz.safetensors")
            try SafeTensors.assign(tensors, to: network, source: "fuzz.safetensors")
        }
    }

    /// PNG images, as `cohort predict` reads them: palette, Paeth-filtered and plain ones.
    @Test func pngReader() {
        for (name, png) in [("png palette", PNGReaderTests.palettePNG), ("png rgb", PNGReaderTests.filteredRGB(filter: 4))] {
            fuzz(name, seed: png) { bytes in
                let image = try PNGReader.decode(bytes)
                #expect(image.pixels.count == image.channels * image.width * image.height)
            }
        }
    }

    /// The project's JSON files, each as its reader takes it, seeded with a real one.
    @Test func jsonFilesAndSweepFileReaders() throws {
        var config = TrainingConfig()
        config.limit = 640; config.weightDecay = 5e-4
        let record = RunRecord(config: config, worldSize: 2, threadsPerRank: 1, replicasPerRank: 1)
        fuzz("config.json", seed: Array(JSONFile.encode(record))) { bytes in
            let record = try JSONFile.decode(RunRecord.self, from: Data(bytes), source: "config.json")
            try record.config.validate()
        }
        let state = CheckpointState(position: TrainingPosition(epoch: 1, step: 3, optimizerSteps: 13, skippedSteps: 0,
                                                               stepsPerEpoch: 10, partialSums: [2.5, 17, 2.25, 16],
                                                               history: []),
                                    globalStep: 13,
                                    execution: Execution(worldSize: 2, threadsPerRank: 1, replicasPerRank: 1, bucketMb: 25, accumulate: 1),
                                    settings: config.definingSettings, modelHash: "00",
                                    optimizerHash: "11")
        fuzz("state.json", seed: Array(JSONFile.encode(state))) { bytes in
            _ = try JSONFile.decode(CheckpointState.self, from: Data(bytes), source: "state.json")
        }
        let measurement = BenchMeasurement(ranks: 1, threadsPerRank: 2, globalBatch: 64, steps: 30, seconds: 1.5,
                                           phaseSeconds: ["data": 0.1, "forward": 0.6], modelGflopPerSample: 0.088,
                                           bucketBytes: [1 << 20, 378_664])
        let bench = BenchReport(settings: BenchSettings(), cores: 2, machineSgemmGflops: 190,
                                configurations: [.init(measured: measurement, speedup: 1, efficiency: 1,
                                                       machineSgemmGflops: 190, fractionOfSgemm: 0.9, prediction: nil)],
                                linkModel: nil)
        fuzz("bench.json", seed: Array(JSONFile.encode(bench))) { bytes in
            _ = try JSONFile.decode(BenchReport.self, from: Data(bytes), source: "bench.json")
        }
        let spec = try SweepSpec(name: "s", ranks: 2, fixed: ["--model", "cnn"],
                                 axes: [GridAxis(flag: "lr", values: ["0.1", "0.01"])])
        fuzz("sweep.json", seed: Array(JSONFile.encode(spec))) { bytes in
            _ = try JSONFile.decode(SweepSpec.self, from: Data(bytes), source: "sweep.json")
        }
        // reference.json, read and held against the grid it describes, as `cohort report --reference` does.
        let reference = Array((#"{"sweeps": {"s": {"points": [{"flags": {"lr": 0.1}, "train_loss": 1.5, "train_acc": 0.5, "#
                               + #""test_loss": 1.25, "test_acc": 0.25, "note": "n"}], "best": {"lr": 0.1}, "#
                               + #""activations": [{"name": "ReLU1", "mean": 0.5, "std": 1}]}}}"#).utf8)
        _ = try JSONFile.decode(ReferenceResults.self, from: Data(reference), source: "seed").sweep(for: spec, file: "seed")
        fuzz("reference.json", seed: reference) { bytes in
            let results = try JSONFile.decode(ReferenceResults.self, from: Data(bytes), source: "reference.json")
            _ = try results.sweep(for: spec, file: "reference.json")
        }
        let sweep = Array("name = \"x\"\nranks = 2\n[train]\nmodel = \"cnn\"\n[grid]\nlr = [0.1, 0.01]\n".utf8)
        fuzz("sweep file", seed: sweep) { bytes in
            _ = try SweepFile(text: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml")
        }
        // Model files, parsed and built: a mutated size is refused (or small enough to build), never a trap.
        fuzz("model file", seed: Array(ModelFile.builtin(.resnet20).text.utf8)) { bytes in
            do {
                _ = try ModelFile(text: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml")
                    .build(BuildSettings(inputShape: [3, 8, 8], classes: 10, maxBatch: 1))
            } catch let error as ModelFileError { throw CohortError.settings(error.description) }
        }
        fuzz("hostfile", seed: Array("# nodes\nnode1 slots=3\nnode2 slots=2 max_slots=4\nnode3\n".utf8)) { bytes in
            let path = NSTemporaryDirectory() + "cohort-fuzz-hostfile-\(getpid())"
            defer { unlink(path) }
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            _ = try Hostfile(path: path).placements(ranks: 2, iface: nil)
        }
    }

    /// A 5x6 colour JPEG (PIL, quality 80).
    static let jpeg = [UInt8](Data(base64Encoded:
            "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYn"
            + "KSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo"
            + "KCgoKCgoKCj/wAARCAAGAAUDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
            + "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
            + "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
            + "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
            + "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
            + "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
            + "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDOjsLrUJ5Ht769kDAS7bm5DYDMwDZKNljtwcAcKg+YgsSiivIzDFVqGIlTpzaSt1b6LubY"
            + "TC08TQhVq3cmlf3pL8nY/9k=")!)

    @Test func imageFileReader() {
        fuzz("jpeg", seed: Self.jpeg) { bytes in
            let image = try ImageFile.decode(bytes)
            #expect(image.pixels.count == image.width * image.height * image.channels)
            var sample = [UInt8](repeating: 0, count: 3 * 7 * 9)
            ImageTransform(channels: 3, height: 7, width: 9).apply(image, into: &sample)
        }
        fuzz("png image", seed: PNGReaderTests.filteredRGB(filter: 4)) { bytes in _ = try ImageFile.decode(bytes) }
    }

    /// A `.npy` of `descr` and `shape` holding `payload`.
    static func npy(descr: String, shape: String, payload: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.count + 1) % 64) % 64) + "\n"
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + Array(header.utf8) + payload
    }

    @Test func numPyReaders() throws {
        let x = Self.npy(descr: "|u1", shape: "(4, 1, 2, 3)", payload: (0..<24).map { UInt8($0) })
        let y = Self.npy(descr: "<i8", shape: "(4,)", payload: [0, 1, 2, 1].flatMap { (v: Int64) in withUnsafeBytes(of: v) { Array($0) } })
        fuzz("npy", seed: x) { bytes in
            let array = try NumPyArray(npy: file(bytes, "x.npy"))
            #expect(array.offset + array.count * array.dtype.byteCount <= array.file.size, "the data lies inside the file")
        }
        fuzz("npy labels", seed: y) { bytes in _ = try NumPyArray(npy: file(bytes, "y.npy")).integers() }
        // An archive as np.savez writes it: stored members, each a whole .npy.
        let directory = "\(scratch.path)/arrays"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, bytes) in [("x_train", x), ("y_train", y), ("x_test", x), ("y_test", y)] {
            _ = try file(bytes, "arrays/\(name).npy")
        }
        let zip = try runProcess("/usr/bin/python3", ["-c", "import numpy as np, sys; d = sys.argv[1]; "
            + "np.savez(d + '.npz', **{k: np.load(f'{d}/{k}.npy') for k in ['x_train', 'y_train', 'x_test', 'y_test']})",
            directory])
        try #require(zip.status == 0, "numpy writes the archive: \(zip.stderr)")
        let archive = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + ".npz")))
        fuzz("npz", seed: archive) { bytes in
            _ = try ArrayDataset.load(file(bytes, "fuzz.npz"), options: DataOptions(normalize: .identity))
        }
    }

    @Test func packReaders() throws {
        let data = Synthetic.splits(shape: [1, 3, 3], trainCount: 6, testCount: 2, seed: 1)
        let pack = "\(scratch.path)/pack"
        try Pack.write(data, to: pack)
        let shard = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(pack)/train-00000.shard")))
        let index = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(pack)/pack.json")))
        fuzz("pack shard", seed: shard) { bytes in
            _ = try file(bytes, "pack/train-00000.shard")
            _ = try Pack.load(pack)
        }
        _ = try file(shard, "pack/train-00000.shard")
        fuzz("pack index", seed: index) { bytes in
            _ = try file(bytes, "pack/pack.json")
            _ = try Pack.load(pack)
        }
    }

    @Test func jsonReadsWhatItWritesExactly() throws {
        var rng = SplitMix64(seed: 5)
        let numbers = (0..<500).map { _ in Double(bitPattern: rng.next()) }.filter(\.isFinite)
            + [0.1, 1e-300, Double.leastNonzeroMagnitude, 123456789012, -0.0]
        let back = try JSONFile.decode([Double].self, from: JSONFile.encode(numbers), source: "numbers")
        #expect(back.map(\.bitPattern) == numbers.map(\.bitPattern), "doubles round-trip bit for bit")
        let nonFinite = try JSONFile.decode([Double].self, from: JSONFile.encode([Double.nan, .infinity, -.infinity]),
                                            source: "non-finite")
        #expect(nonFinite[0].isNaN && nonFinite[1] == .infinity && nonFinite[2] == -.infinity)
        #expect(JSONFile.line(["b": 1, "a": 2]) == #"{"a":2,"b":1}"#, "keys sorted")
        for bad in ["", "{", "{\"a\" 1}", "01x", "\"\\q\"", "[1] 2", "nul", "\"\u{01}\"", "+1", ".5", "1e999"] {
            expectError(.failure, "\(bad)") { _ = try JSONFile.decode(JSONValue.self, from: Data(bad.utf8), source: "bad") }
        }
    }
}
