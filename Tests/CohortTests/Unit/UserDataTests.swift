import CohortBase
@testable import CohortData
import Foundation
import Testing

/// Your own data: image folders numbered and decoded as torchvision and PIL do, arrays of each
/// shape, packs, and every kind of bad input refused with one line naming the file.
/// The fixtures come from `Fixtures/make_user_data.py` (Debian's python3-pil and python3-numpy,
/// which launch/test installs), run once per suite instance.
@Suite(.serialized) struct UserDataTests {
    let scratch = ScratchDirectory("cohort-userdata")
    var root: String { scratch.path }

    init() throws { try Fixtures.makeUserData(in: scratch.path) }

    /// The arrays of an `.npz` the fixture wrote.
    func expected(_ name: String) throws -> [String: NumPyArray] { try NumPyArchive.arrays("\(root)/\(name)") }

    func bytes(_ array: NumPyArray) -> [UInt8] { array.file.bytes(array.offset..<(array.offset + array.count)) }

    /// Every sample of `data` as stored, concatenated.
    func stored(_ data: ImageDataset) throws -> [UInt8] {
        try (0..<data.count).flatMap { try data.values($0).map { UInt8($0) } }
    }

    @Test func aFolderIsNumberedAndDecodedAsTorchvisionAndPILDoIt() throws {
        let splits = try ImageFolder.load("\(root)/folder", options: DataOptions(imageSize: [16, 16]))
        let reference = try expected("expected.npz")
        #expect(splits.train.classNames == ["Zebra", "ant", "bee"])
        #expect(splits.train.imageShape == [3, 16, 16], "grey and colour files together make colour samples")
        #expect(try splits.train.labels.map(Int.init) == reference["y_train"]!.integers())
        #expect(try splits.test.labels.map(Int.init) == reference["y_test"]!.integers())
        // JPEG through libjpeg-turbo, PNG through Cohort's reader, convert("RGB"), Resize, CenterCrop: PIL's bytes.
        #expect(try stored(splits.train) == bytes(reference["x_train"]!))
        #expect(try stored(splits.test) == bytes(reference["x_test"]!))
        #expect(splits.train.count == 36 && splits.test.count == 12, "notes.txt ignored, the nested folder read")
    }

    @Test func colourBecomesGreyAsPILConvertsIt() throws {
        let image = try ImageFile.read("\(root)/grey.png")
        let transform = ImageTransform(channels: 1, height: image.height, width: image.width)
        var grey = [UInt8](repeating: 0, count: image.width * image.height)
        transform.apply(image, into: &grey)
        #expect(grey == bytes(try NumPyArray(npy: "\(root)/grey_expected.npy")))
    }

    @Test func theMeasuredNormalisationIsEachChannelsMeanAndStd() throws {
        let splits = try ArrayDataset.load("\(root)/arrays4", options: DataOptions())
        let x = try NumPyArray(npy: "\(root)/arrays4/x_train.npy"), values = bytes(x).map(Double.init)
        let plane = 64
        for c in 0..<3 {
            var channel: [Double] = []
            for s in 0..<48 { channel += values[((s * 3 + c) * plane)..<((s * 3 + c + 1) * plane)].map { $0 / 255 } }
            let n = Double(channel.count), mean = channel.reduce(0, +) / n
            let deviations: [Double] = channel.map { ($0 - mean) * ($0 - mean) }
            let std = (deviations.reduce(0, +) / n).squareRoot()
            // Float32 of the double-precision figures: within one rounding of them.
            #expect(abs(Double(splits.train.normalization.mean[c]) - mean) <= mean * 1e-7)
            #expect(abs(Double(splits.train.normalization.std[c]) - std) <= std * 1e-6)
        }
        #expect(splits.test.normalization == splits.train.normalization, "the test split is normalised as the training split")
        let given = try ArrayDataset.load("\(root)/arrays4", options: DataOptions(normalize: InputNormalization(parsing: "0.5/0.25")))
        #expect(given.train.normalization == InputNormalization(mean: 0.5, std: 0.25))
    }

    @Test(arguments: [("arrays4", [3, 8, 8]), ("arrays3", [1, 6, 5]), ("arrays2", [1, 1, 7])])
    func arraysOfEachShapeAreSamples(name: String, shape: [Int]) throws {
        let splits = try ArrayDataset.load("\(root)/\(name)", options: DataOptions(normalize: .identity))
        #expect(splits.train.imageShape == shape && splits.train.classes == 3)
        #expect(splits.train.count == 48 && splits.test.count == 16)
        let x = try NumPyArray(npy: "\(root)/\(name)/x_train.npy")
        let first = x.dtype == .uint8 ? bytes(x).prefix(shape.reduce(1, *)).map(Float.init)
            : Array(UnsafeBufferPointer(start: (x.file.base + x.offset).assumingMemoryBound(to: Float.self), count: shape.reduce(1, *)))
        #expect(try splits.train.values(0) == first)
        #expect(splits.train.samples is MappedSamples, "x is mapped, not read")
    }

    @Test func anNpzStoredOrDeflatedHoldsTheSameArrays() throws {
        let directory = try ArrayDataset.load("\(root)/arrays4", options: DataOptions())
        for archive in ["stored.npz", "deflated.npz"] {
            let splits = try ArrayDataset.load("\(root)/\(archive)", options: DataOptions())
            #expect(try stored(splits.train) == stored(directory.train), "\(archive)")
            #expect(splits.test.labels == directory.test.labels, "\(archive)")
        }
    }

    @Test func aValidationSplitIsDrawnFromTheSeed() throws {
        let options = DataOptions(valSplit: 0.25, seed: 4)
        try FileManager.default.removeItem(atPath: "\(root)/arrays4/x_test.npy")
        try FileManager.default.removeItem(atPath: "\(root)/arrays4/y_test.npy")
        let b = try ArrayDataset.load("\(root)/arrays4", options: options)
        #expect(b.train.count == 36 && b.test.count == 12)
        let c = try ArrayDataset.load("\(root)/arrays4", options: DataOptions(valSplit: 0.25, seed: 5))
        #expect(try stored(b.test) != stored(c.test), "another seed holds out other samples")
        #expect(try stored(b.test) == stored(try ArrayDataset.load("\(root)/arrays4", options: options).test))
        expectError(.settings) { _ = try ArrayDataset.load("\(root)/arrays4", options: DataOptions()) }
    }

    @Test func aPackHoldsTheSourcesSamplesAndIsChecked() throws {
        let source = try ImageFolder.load("\(root)/folder", options: DataOptions(imageSize: [16, 16]))
        let index = try Pack.write(source, to: "\(root)/pack", shardBytes: 5 * 768)
        #expect(index.train.shards.count == 8 && index.test.shards.count == 3, "5 samples a shard")
        let pack = try Pack.load("\(root)/pack")
        #expect(try stored(pack.train) == stored(source.train) && pack.train.labels == source.train.labels)
        #expect(pack.train.classNames == source.train.classNames && pack.train.normalization == source.train.normalization)
        expectError(.refused, "a second pack into the same directory") { try Pack.write(source, to: "\(root)/pack") }
    }

    /// Loads `path` as `kind` and expects one settings error (exit 64) whose message holds `words`.
    func expectRefused(_ kind: DatasetKind, _ path: String, options: DataOptions = DataOptions(), _ words: String...,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try DatasetSource.loadUserData(kind, path: path, options: options)
            Issue.record("\(path) was accepted", sourceLocation: sourceLocation)
        } catch let error as CohortError {
            #expect(error.kind == .settings && error.exitCode == 64, "\(error)", sourceLocation: sourceLocation)
            for word in words {
                #expect(error.description.contains(word), "'\(error)' lacks '\(word)'", sourceLocation: sourceLocation)
            }
            #expect(!error.description.contains("\n"), "one line", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func badImageFilesAreRefusedWithTheFileAndTheReason() throws {
        let folder = "\(root)/folder", cat = "\(folder)/train/ant"
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(cat)/01.jpg"))
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(cat)/00.png"))
        let options = DataOptions(imageSize: [16, 16])
        let cases: [(file: String, contents: Data, words: [String])] = [
            ("cut.jpg", jpeg.prefix(jpeg.count / 2), ["cut.jpg", "JPEG"]),
            ("cut.png", png.prefix(png.count - 20), ["cut.png", "PNG"]),
            ("text.jpg", Data("hello, not an image".utf8), ["text.jpg", "neither a JPEG nor a PNG"]),
            ("empty.png", Data(), ["empty.png", "empty file"]),
            ("old.bmp", Data("BM".utf8), ["old.bmp", "bmp"]),
        ]
        for bad in cases {
            put("\(cat)/\(bad.file)", bad.contents)
            expectRefused(.folder, folder, options: options, bad.words[0], bad.words[1])
            try FileManager.default.removeItem(atPath: "\(cat)/\(bad.file)")
        }
        // With --skip-bad-files they are left out and counted.
        for bad in cases { put("\(cat)/\(bad.file)", bad.contents) }
        var skipping = options
        skipping.skipBadFiles = true
        let splits = try ImageFolder.load(folder, options: skipping)
        #expect(splits.skippedFiles.count == cases.count && splits.train.count == 36)
        #expect(splits.skippedFiles.allSatisfy { $0.contains("\(cat)/") })
    }

    @Test func badFolderLayoutsAreRefused() throws {
        let folder = "\(root)/folder"
        expectRefused(.folder, folder, "2 sizes", "--image-size")
        try FileManager.default.createDirectory(atPath: "\(folder)/train/empty", withIntermediateDirectories: true)
        expectRefused(.folder, folder, options: DataOptions(imageSize: [16, 16]), "train/empty", "no JPEG or PNG")
        try FileManager.default.removeItem(atPath: "\(folder)/train/empty")
        try FileManager.default.createDirectory(atPath: "\(folder)/test/wasp", withIntermediateDirectories: true)
        expectRefused(.folder, folder, options: DataOptions(imageSize: [16, 16]), "test/wasp", "does not have")
        try FileManager.default.removeItem(atPath: "\(folder)/test/wasp")
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/train/bee/loop", withDestinationPath: "..")
        expectRefused(.folder, folder, options: DataOptions(imageSize: [16, 16]), "loop")
        try FileManager.default.removeItem(atPath: "\(folder)/train/bee/loop")
        try FileManager.default.removeItem(atPath: "\(folder)/test")
        expectRefused(.folder, folder, options: DataOptions(imageSize: [16, 16]), "no test split", "--val-split")
        expectRefused(.folder, "\(root)/arrays4", "no train/ folder")
    }

    /// Writes a `.npy` of `descr` and `shape` with `payload` bytes of data.
    func npy(_ path: String, descr: String, shape: String, payload: Int) {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        bytes += Array(header.utf8) + [UInt8](repeating: 1, count: payload)
        put(path, Data(bytes))
    }

    @Test func badArraysAreRefusedWithTheFileAndTheReason() throws {
        let dir = "\(root)/arrays4"
        func replace(_ name: String, descr: String, shape: String, payload: Int, _ words: String...) throws {
            let path = "\(dir)/\(name).npy", saved = try Data(contentsOf: URL(fileURLWithPath: path))
            npy(path, descr: descr, shape: shape, payload: payload)
            do {
                _ = try DatasetSource.loadUserData(.arrays, path: dir, options: DataOptions())
                Issue.record("\(name) as \(descr) \(shape) was accepted")
            } catch let error as CohortError {
                #expect(error.exitCode == 64 && error.description.contains(path), "\(error)")
                for word in words { #expect(error.description.contains(word), "'\(error)' lacks '\(word)'") }
            }
            put(path, saved)
        }
        try replace("x_train", descr: "|O", shape: "(48, 3, 8, 8)", payload: 8 * 48 * 192, "object")
        try replace("x_train", descr: "<f8", shape: "(48, 3, 8, 8)", payload: 8 * 48 * 192, "f8")
        try replace("x_train", descr: "|u1", shape: "(48, 3, 8, 8)", payload: 100, "truncated")
        try replace("x_train", descr: "|u1", shape: "(48, 3, 8, 8, 2)", payload: 48 * 384, "shape")
        try replace("y_train", descr: "<i8", shape: "(47,)", payload: 8 * 47, "47 labels", "48 samples")
        try replace("x_test", descr: "|u1", shape: "(16, 3, 4, 4)", payload: 16 * 48, "the training samples are")
        // Labels: negative, and beyond the training labels in the test split.
        let labels = "\(dir)/y_test.npy", saved = try Data(contentsOf: URL(fileURLWithPath: labels))
        for (value, words) in [(-1, "negative"), (7, "beyond the training labels")] as [(Int64, String)] {
            var bytes = [UInt8](saved)
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange((bytes.count - 8)..<bytes.count, with: $0) }
            put(labels, Data(bytes))
            expectRefused(.arrays, dir, "y_test.npy", words)
        }
        put(labels, saved)
        put("\(root)/bad.npz", Data("PK not really".utf8))
        expectRefused(.arrays, "\(root)/bad.npz", "bad.npz", "ZIP")
        let stored = try Data(contentsOf: URL(fileURLWithPath: "\(root)/stored.npz"))
        put("\(root)/cut.npz", stored.prefix(stored.count / 2))
        expectRefused(.arrays, "\(root)/cut.npz", "cut.npz")
    }

    @Test func aDamagedPackIsRefused() throws {
        let source = try ArrayDataset.load("\(root)/arrays4", options: DataOptions())
        try Pack.write(source, to: "\(root)/pack", shardBytes: 24 * 192)
        let shard = "\(root)/pack/train-00001.shard", saved = try Data(contentsOf: URL(fileURLWithPath: shard))
        var flipped = saved
        flipped[saved.count - 5] ^= 0x40
        put(shard, flipped)
        expectRefused(.pack, "\(root)/pack", "train-00001.shard", "CRC-32")
        put(shard, saved.prefix(saved.count - 192))
        expectRefused(.pack, "\(root)/pack", "train-00001.shard", "truncated")
        put(shard, saved)
        let index = "\(root)/pack/pack.json", text = try String(contentsOfFile: index, encoding: .utf8)
        put(index, Data(text.replacingOccurrences(of: "\"count\" : 24", with: "\"count\" : 23").utf8))
        expectRefused(.pack, "\(root)/pack", "train-0000", "does not match")
        put(index, Data("{".utf8))
        expectRefused(.pack, "\(root)/pack", "pack.json")
        expectRefused(.pack, "\(root)/arrays4", "no pack.json")
    }
}
