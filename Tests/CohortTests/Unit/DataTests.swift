import CohortBase
@testable import CohortBench
@testable import CohortData
import CohortFetch
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Foundation
import Testing

/// Dataset readers on files the tests write, including each kind of bad input.
@Suite struct DataTests {
    let scratch = ScratchDirectory("cohort-data")
    var directory: String { scratch.path }

    func write(_ bytes: [UInt8], _ name: String, gzip: Bool = false) -> String {
        let path = "\(directory)/\(name)"
        if gzip {
            writeGzip(bytes, to: path)
        } else {
            put(path, Data(bytes))
        }
        return path
    }

    static func idxImages(count: Int, rows: Int = 4, columns: Int = 3) -> [UInt8] {
        var b: [UInt8] = [0, 0, 8, 3]
        for d in [count, rows, columns] { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b + (0..<(count * rows * columns)).map { UInt8($0 % 256) }
    }

    static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        let n = labels.count
        return [0, 0, 8, 1, UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + labels
    }

    func expectError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error mentioning \"\(fragment)\"", sourceLocation: sourceLocation)
        } catch let error as CohortError {
            #expect(error.description.contains(fragment), "\(error.description)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func idxPlainAndGzipReadTheSame() throws {
        let plain = try IDX.load(images: write(Self.idxImages(count: 5), "a-images"),
                                 labels: write(Self.idxLabels([0, 1, 2, 3, 9]), "a-labels"), name: "t")
        let gz = try IDX.load(images: write(Self.idxImages(count: 5), "b-images.gz", gzip: true),
                              labels: write(Self.idxLabels([0, 1, 2, 3, 9]), "b-labels.gz", gzip: true), name: "t")
        #expect(plain.count == 5 && plain.height == 4 && plain.width == 3 && plain.channels == 1)
        #expect(plain.pixels == gz.pixels && plain.labels == gz.labels)
        #expect(plain.labels == [0, 1, 2, 3, 9])
        #expect(Array(plain.pixels.prefix(13)) == (0..<13).map(UInt8.init))
    }

    @Test func idxSplitsFromADirectory() throws {
        _ = write(Self.idxImages(count: 6), "train-images-idx3-ubyte.gz", gzip: true)
        _ = write(Self.idxLabels([1, 2, 3, 4, 5, 6]), "train-labels-idx1-ubyte.gz", gzip: true)
        _ = write(Self.idxImages(count: 2), "t10k-images-idx3-ubyte")
        _ = write(Self.idxLabels([7, 8]), "t10k-labels-idx1-ubyte")
        let splits = try IDX.loadSplits(directory: directory, name: "mnist")
        #expect(splits.train.count == 6 && splits.test.count == 2)
    }

    @Test func idxBadInput() {
        expectError("no such file") { _ = try IDX.read("\(directory)/missing", dimensions: 3) }
        expectError("bad IDX magic") { _ = try IDX.read(write([1, 2, 3, 4, 0, 0, 0, 1], "magic"), dimensions: 1) }
        expectError("has 1 dimensions, expected 3") { _ = try IDX.read(write(Self.idxLabels([1]), "rank"), dimensions: 3) }
        expectError("truncated") { _ = try IDX.read(write(Array(Self.idxImages(count: 3).dropLast(5)), "short"), dimensions: 3) }
        expectError("header is truncated") { _ = try IDX.read(write([0, 0, 8, 3, 0, 0], "header"), dimensions: 3) }
        expectError("label 10") {
            _ = try IDX.load(images: write(Self.idxImages(count: 2), "i"), labels: write(Self.idxLabels([3, 10]), "l"), name: "t")
        }
        expectError("2 images but") {
            _ = try IDX.load(images: write(Self.idxImages(count: 2), "i2"), labels: write(Self.idxLabels([3]), "l2"), name: "t")
        }
        expectError("unexpected bytes") { _ = try IDX.read(write(Self.idxLabels([1, 2]) + [0], "extra"), dimensions: 1) }
    }

    @Test func truncatedGzipIsAnError() {
        let full = write(Self.idxImages(count: 50), "full.gz", gzip: true)
        let bytes = [UInt8](FileManager.default.contents(atPath: full)!)
        let cut = write(Array(bytes.prefix(bytes.count / 2)), "cut.gz")
        expectError("truncated") { _ = try IDX.read(cut, dimensions: 3) }
        var corrupt = bytes
        corrupt[bytes.count - 8] ^= 0xFF  // the CRC-32 of the gzip trailer
        expectError("corrupt gzip data") { _ = try IDX.read(write(corrupt, "corrupt.gz"), dimensions: 3) }
    }

    @Test func imageSizesMustMatchBetweenSplits() {
        _ = write(Self.idxImages(count: 2, rows: 4, columns: 3), "train-images-idx3-ubyte")
        _ = write(Self.idxLabels([1, 2]), "train-labels-idx1-ubyte")
        _ = write(Self.idxImages(count: 2, rows: 5, columns: 3), "t10k-images-idx3-ubyte")
        _ = write(Self.idxLabels([1, 2]), "t10k-labels-idx1-ubyte")
        expectError("test images are 5x3") { _ = try IDX.loadSplits(directory: directory, name: "mnist") }
    }

    static func cifarRecords(_ labels: [UInt8]) -> [UInt8] {
        labels.flatMap { label in [label] + (0..<3072).map { UInt8(($0 + Int(label)) % 256) } }
    }

    @Test func cifarReadsRecords() throws {
        let nested = "\(directory)/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: true)
        for (i, name) in (CIFAR10.trainFiles + CIFAR10.testFiles).enumerated() {
            put("\(nested)/\(name)", Data(Self.cifarRecords([UInt8(i), 9])))
        }
        let splits = try CIFAR10.loadSplits(directory: directory)
        #expect(splits.train.count == 10 && splits.test.count == 2)
        #expect(splits.train.labels == [0, 9, 1, 9, 2, 9, 3, 9, 4, 9])
        #expect(splits.train.imageShape == [3, 32, 32])
        // Pixel 0 of record 1 (label 9) is 9; normalised (9/255 - 0.5)/0.5.
        let x = FloatBuffer(count: 3072)
        var y: Int32 = 0
        try splits.train.fill(indices: [1], x: x.pointer, y: &y)
        #expect(y == 9)
        #expect(abs(x[0] - (9 / 255 - 0.5) / 0.5) < 1e-6)
    }

    @Test func cifarBadInput() throws {
        expectError("not a whole number") { _ = try CIFAR10.load(files: [write(Array(Self.cifarRecords([1]).dropLast()), "cut.bin")]) }
        expectError("label 12") { _ = try CIFAR10.load(files: [write(Self.cifarRecords([1, 12]), "label.bin")]) }
        expectError("empty file") { _ = try CIFAR10.load(files: [write([], "empty.bin")]) }
        expectError("missing data_batch_1.bin") { _ = try CIFAR10.loadSplits(directory: directory) }
    }

    @Test func searchPathOrder() throws {
        let env = ["COHORT_DATA": directory]
        #expect(DatasetSource.searchPath(for: .mnist, environment: env)
                == ["\(directory)/mnist", "./data/mnist", "/usr/share/datasets/mnist"])
        try FileManager.default.createDirectory(atPath: "\(directory)/fashion-mnist", withIntermediateDirectories: true)
        #expect(try DatasetSource.directory(for: .fashionMNIST, dataDirectory: nil, environment: env)
                == "\(directory)/fashion-mnist")
        #expect(try DatasetSource.directory(for: .mnist, dataDirectory: directory, environment: [:]) == directory)
        expectError("no such directory") { _ = try DatasetSource.directory(for: .mnist, dataDirectory: "\(directory)/nope") }
    }

    @Test func syntheticIsDeterministicAndBalanced() {
        let a = Synthetic.make(shape: [1, 28, 28], count: 500, seed: 3, split: 0)
        let b = Synthetic.make(shape: [1, 28, 28], count: 500, seed: 3, split: 0)
        let c = Synthetic.make(shape: [1, 28, 28], count: 500, seed: 4, split: 0)
        #expect(a.pixels == b.pixels && a.labels == b.labels)
        #expect(a.pixels != c.pixels)
        for k in 0..<10 { #expect(a.labels.filter { $0 == k }.count > 20) }
        #expect(Synthetic.make(shape: [3, 32, 32], count: 4, seed: 0, split: 1).imageShape == [3, 32, 32])
    }

    @Test func samplerSlicesOneGlobalPermutation() {
        let size = 103, batch = 12, world = 3
        var samplers = (0..<world).map { EpochSampler(datasetSize: size, globalBatch: batch, rank: $0, worldSize: world, seed: 5) }
        for r in 0..<world { samplers[r].startEpoch(2) }
        #expect(samplers[0].stepsPerEpoch == 8)  // 103 / 12, the last partial batch dropped
        var seen: [Int] = []
        for step in 0..<8 {
            for r in 0..<world { seen += samplers[r].indices(step: step) }
        }
        // Rank slices of each step, concatenated in rank order, are the permutation itself.
        #expect(seen == Array(samplers[0].permutation.prefix(96)))
        #expect(Set(samplers[0].permutation) == Set(0..<size))
        var single = EpochSampler(datasetSize: size, globalBatch: batch, rank: 0, worldSize: 1, seed: 5)
        single.startEpoch(2)
        #expect(single.permutation == samplers[1].permutation)
        single.startEpoch(3)
        #expect(single.permutation != samplers[1].permutation)
    }
}

/// Random crops and flips (`--augment`), pixel by pixel on a small image.
@Suite struct AugmentationTests {
    /// 2 channels of 3x4, pixel value 10·channel + 4·row + column + 1.
    let image = ImageDataset(name: "tiny", channels: 2, height: 3, width: 4,
                             pixels: (0..<2).flatMap { c in (0..<12).map { UInt8(10 * c + $0 + 1) } }, labels: [7])

    @Test func cropsFromThePaddingAndFlips() {
        // Window at (top 0, left 2) of the image padded by 1, flipped: output (y, x) reads
        // source (y - 1, (3 - x) + 1), and the padding is pixel 0.
        let choice = (top: 0, left: 2, flip: true)
        var out: [Int] = []
        for y in 0..<3 {
            for x in 0..<4 {
                let at = Augmentation.source(y: y, x: x, height: 3, width: 4, pad: 1, choice: choice)
                var pixel = 0
                if let at { pixel = 4 * at.y + at.x + 1 }
                out.append(pixel)
            }
        }
        #expect(out == [0, 0, 0, 0,
                        0, 4, 3, 2,
                        0, 8, 7, 6])
        // No shift and no flip is the image itself.
        let same = Augmentation.source(y: 2, x: 1, height: 3, width: 4, pad: 2, choice: (2, 2, false))
        #expect(same?.y == 2 && same?.x == 1)
    }

    @Test func fillAppliesTheChoiceOfEachSampleAndEpoch() throws {
        let augmentation = Augmentation(seed: 9, pad: 1, flip: true)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: 24), y = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { x.deallocate(); y.deallocate() }
        for epoch in 0..<20 {
            try image.fill(indices: [0], x: x, y: y, augmentation: augmentation, epoch: epoch)
            let choice = augmentation.choice(epoch: epoch, sample: 0)
            for c in 0..<2 {
                for r in 0..<3 {
                    for col in 0..<4 {
                        let at = Augmentation.source(y: r, x: col, height: 3, width: 4, pad: 1, choice: choice)
                        var pixel = 0
                        if let at { pixel = 10 * c + 4 * at.y + at.x + 1 }
                        let expected = Float(pixel) * (1 / Float(255))
                        #expect(x[c * 12 + r * 4 + col] == expected, "epoch \(epoch), channel \(c), (\(r), \(col))")
                    }
                }
            }
            #expect(y[0] == 7)
        }
    }

    /// Every offset in 0...2·pad and both flips occur, each about as often, and the choices
    /// are a function of (seed, epoch, sample); 28x28 sets are never flipped.
    @Test func choicesCoverEveryOffsetAndRepeat() {
        let augmentation = Augmentation.standard(channels: 3, seed: 1)
        #expect(augmentation.pad == 4 && augmentation.flip && !Augmentation.standard(channels: 1, seed: 1).flip)
        var tops = [Int](repeating: 0, count: 9), flips = 0
        for sample in 0..<9000 {
            let choice = augmentation.choice(epoch: 3, sample: sample)
            tops[choice.top] += 1
            flips += choice.flip ? 1 : 0
            #expect(choice == augmentation.choice(epoch: 3, sample: sample))
        }
        #expect(tops.allSatisfy { (850...1150).contains($0) }, "\(tops)")
        #expect((4200...4800).contains(flips), "\(flips)")
        #expect((0..<50).contains { augmentation.choice(epoch: 4, sample: $0) != augmentation.choice(epoch: 3, sample: $0) })
        #expect(Augmentation.standard(channels: 1, seed: 1).choice(epoch: 0, sample: 5).flip == false)
    }
}

/// MD5, the sums the data sets publish: RFC 1321's test suite, and lengths around the
/// 64-byte block and the 56-byte padding boundary against coreutils' md5sum.
@Suite struct MD5Tests {
    @Test func rfc1321TestSuite() {
        let cases = ["": "d41d8cd98f00b204e9800998ecf8427e", "a": "0cc175b9c0f1b6a831c399e269772661",
                     "abc": "900150983cd24fb0d6963f7d28e17f72", "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
                     "abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
                     "12345678901234567890123456789012345678901234567890123456789012345678901234567890":
                        "57edf4a22be3c955ac49da2e2107b67a"]
        for (text, sum) in cases { #expect(MD5.hex(Array(text.utf8)) == sum, "\"\(text)\"") }
    }

    @Test func blockBoundariesAgreeWithMd5sum() throws {
        let scratch = ScratchDirectory("cohort-md5")
        for length in [55, 56, 57, 63, 64, 65, 127, 128, 1000] {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 11) % 256) }
            let path = "\(scratch.path)/\(length)"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let reference = try runProcess("/usr/bin/md5sum", [path]).stdout.prefix(32)
            var md5 = MD5()
            md5.update(bytes.prefix(length / 3))
            md5.update(bytes.dropFirst(length / 3))
            #expect(md5.hexDigest() == reference, "\(length) bytes")
        }
    }
}
