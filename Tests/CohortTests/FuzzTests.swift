import CohortData
import CohortTensor
@testable import CohortTraining
import Foundation
import Testing

/// Mutation fuzzing of everything that reads files: valid IDX, CIFAR-10, JSON and sweep
/// files are damaged at random (bits flipped, bytes replaced, header fields set to extreme
/// values, cut short, extended, gzip-wrapped) and each reader must either accept the file
/// or throw its own error: never trap, hang or throw something else. Seeded, so a failure
/// repeats; bounded by COHORT_FUZZ_SECONDS per reader (default 2; .ci/run gives more).
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
            do { try body(bytes) } catch is DataError {} catch is RunError {} catch is SettingsError {} catch {
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

    @Test func jsonAndSweepFileReaders() throws {
        let config = Array("""
            {"model": "cnn", "lr": 0.001, "nested": {"list": [1, 2.5e-3, -0, true, false, null, "t\\u00e9\\n"]}}
            """.utf8)
        fuzz("json", seed: config) { bytes in _ = try JSON(parsing: Data(bytes)) }
        let sweep = Array("name = \"x\"\nranks = 2\n[train]\nmodel = \"cnn\"\n[grid]\nlr = [0.1, 0.01]\n".utf8)
        fuzz("sweep file", seed: sweep) { bytes in
            _ = try SweepFile(text: String(decoding: bytes, as: UTF8.self), source: "fuzz.toml")
        }
    }

    @Test func jsonReadsWhatItWritesExactly() throws {
        var rng = SplitMix64(seed: 5)
        let numbers = (0..<500).map { _ in Double(bitPattern: rng.next()) }.filter(\.isFinite)
            + [0.1, 1e-300, Double.leastNonzeroMagnitude, 123456789012]
        let text = JSON.array(numbers.map { .number($0) }).serialized()
        let back = try #require(try JSON(parsing: Data(text.utf8)).array).compactMap(\.number)
        #expect(back.map(\.bitPattern) == numbers.map(\.bitPattern), "doubles round-trip bit for bit")
        let ordered = try JSON(parsing: Data(#"{"b": 1, "a": [true, null, "x\"y\u00e9"], "c": {}}"#.utf8))
        #expect(ordered.serialized() == #"{"b":1,"a":[true,null,"x\"yé"],"c":{}}"#, "keys keep their order")
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01x", "\"\\q\"", "[1] 2", "nul", "{\"a\":1,}", "\"\u{01}\"",
                    "+1", "01", ".5", "1.", "1e", "-", "\"\\u+abc\"", "1e999"] {
            #expect(throws: RunError.self, "\(bad)") { try JSON(parsing: Data(bad.utf8)) }
        }
    }
}
