import CZlib
import CohortBase
import Foundation

/// A packed data set (`cohort data pack`, `--dataset pack`): decoded samples in shard files that
/// training maps read-only, so that the ranks of a node share one copy through the page cache
/// and memory does not grow with the data set.
///
/// `DIR/pack.json` (`Pack.Index`) names the sample shape and element type, the classes and their
/// names, the normalisation measured on the training split when it was packed, and each split's
/// shards in order, with their sample counts and CRC-32s. A shard `SPLIT-NNNNN.shard` is
///
///     bytes 0..<8     "COHORTSH"
///     8..<12, 12..<16 format version (1), element (0 uint8, 1 float32), little-endian UInt32
///     16..<24         sample count n                                   (UInt64)
///     24..<32         bytes per sample s                               (UInt64)
///     32..<40         offset of the labels, 64                         (UInt64)
///     40..<48         offset of the samples: 64 + 4n rounded up to 64  (UInt64)
///     48..<64         zero
///     labels          n Int32 labels, little-endian
///     samples         n samples of s bytes, each `[C, H, W]`, in the order of the source
///
/// and its CRC-32 (zlib's) covers every byte from 64 to its end. Opening a pack checks each
/// shard's header against the index and its size and CRC, so a damaged pack is refused before
/// training.
public enum Pack {
    static let magic = Array("COHORTSH".utf8)
    static let headerBytes = 64

    public struct Shard: Codable, Sendable, Equatable {
        public var file: String, count: Int, crc32: UInt32
    }

    public struct Split: Codable, Sendable, Equatable {
        public var count: Int, shards: [Shard]
    }

    public struct Index: Codable, Sendable, Equatable {
        public var format = "cohort-pack", version = 1
        public var shape: [Int], element: SampleElement, classes: Int
        public var classNames: [String]
        public var normalization: InputNormalization
        public var train: Split, test: Split

        enum CodingKeys: String, CodingKey {
            case format, version, shape, element, classes, classNames = "class_names", normalization, train, test
        }
    }

    // MARK: Writing

    /// Writes `splits` as a pack in `directory` (created; it must not hold one already), in
    /// shards of at most `shardBytes` of samples, and returns its index. `progress` hears of
    /// each shard written. Shards are written under temporary names and renamed, and the index
    /// last: an interrupted pack has no `pack.json`.
    @discardableResult
    public static func write(_ splits: DatasetSplits, to directory: String, shardBytes: Int = 256 << 20,
                             progress: ((String) -> Void)? = nil) throws -> Index {
        let indexPath = "\(directory)/pack.json"
        guard !FileManager.default.fileExists(atPath: indexPath) else {
            throw CohortError.refused("\(directory) already holds a pack (pack.json); choose another --out")
        }
        try createDirectory(directory)
        let train = try writeSplit(splits.train, "train", directory: directory, shardBytes: shardBytes, progress: progress)
        let test = try writeSplit(splits.test, "test", directory: directory, shardBytes: shardBytes, progress: progress)
        let index = Index(shape: splits.train.imageShape, element: splits.train.samples.element, classes: splits.train.classes,
                          classNames: splits.train.classNames, normalization: splits.train.normalization,
                          train: train, test: test)
        try JSONFile.write(index, to: indexPath)
        return index
    }

    static func writeSplit(_ data: ImageDataset, _ name: String, directory: String, shardBytes: Int,
                           progress: ((String) -> Void)?) throws -> Split {
        let perShard = max(1, shardBytes / max(1, data.samples.sampleBytes))
        var shards: [Shard] = []
        for first in stride(from: 0, to: data.count, by: perShard) {
            let range = first..<min(data.count, first + perShard)
            let file = String(format: "%@-%05d.shard", name, shards.count)
            let crc = try writeShard(data, range, to: "\(directory)/\(file)")
            shards.append(Shard(file: file, count: range.count, crc32: crc))
            progress?("\(file): \(range.count) samples")
        }
        return Split(count: data.count, shards: shards)
    }

    /// One shard of samples `range`; returns its CRC-32.
    static func writeShard(_ data: ImageDataset, _ range: Range<Int>, to path: String) throws -> UInt32 {
        let n = range.count, sampleBytes = data.samples.sampleBytes
        let samplesOffset = (headerBytes + 4 * n + 63) / 64 * 64
        var header = [UInt8](repeating: 0, count: headerBytes)
        header.replaceSubrange(0..<8, with: magic)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { header.replaceSubrange(offset..<(offset + $0.count), with: $0) }
        }
        put(UInt32(1), at: 8); put(UInt32(data.samples.element == .uint8 ? 0 : 1), at: 12)
        put(UInt64(n), at: 16); put(UInt64(sampleBytes), at: 24); put(UInt64(headerBytes), at: 32)
        put(UInt64(samplesOffset), at: 40)
        var body = [UInt8](repeating: 0, count: samplesOffset - headerBytes)
        for (k, i) in range.enumerated() {
            withUnsafeBytes(of: data.labels[i].littleEndian) { body.replaceSubrange((4 * k)..<(4 * k + 4), with: $0) }
        }
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw CohortError.failure("\(temporary): cannot create the file")
        }
        var crc = crc32(0, nil, 0)
        do {
            try handle.write(contentsOf: Data(header))
            crc = update(crc, body)
            try handle.write(contentsOf: Data(body))
            // Samples in chunks of about 4 MiB.
            let perChunk = max(1, (4 << 20) / max(1, sampleBytes))
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, sampleBytes), alignment: 64)
            defer { scratch.deallocate() }
            var chunk = [UInt8]()
            chunk.reserveCapacity(perChunk * sampleBytes)
            for i in range {
                let p = try data.samples.sample(i, scratch: scratch)
                chunk.append(contentsOf: UnsafeRawBufferPointer(start: p, count: sampleBytes))
                if chunk.count >= perChunk * sampleBytes || i == range.upperBound - 1 {
                    crc = update(crc, chunk)
                    try handle.write(contentsOf: Data(chunk))
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error as? CohortError ?? CohortError.failure("\(path): cannot write (\(error))")
        }
        guard rename(temporary, path) == 0 else { throw CohortError.failure("\(path): cannot rename \(temporary) to it") }
        return UInt32(crc)
    }

    static func update(_ crc: uLong, _ bytes: [UInt8]) -> uLong {
        bytes.withUnsafeBufferPointer { update(crc, UnsafeRawBufferPointer($0)) }
    }

    static func update(_ crc: uLong, _ bytes: UnsafeRawBufferPointer) -> uLong {
        var crc = crc, at = 0
        while at < bytes.count {
            let n = min(bytes.count - at, 1 << 30)
            crc = crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + at, uInt(n))
            at += n
        }
        return crc
    }

    // MARK: Reading

    /// The pack in `directory`, every shard checked; `normalize` replaces the packed normalisation.
    public static func load(_ directory: String, normalize: InputNormalization? = nil) throws -> DatasetSplits {
        let indexPath = "\(directory)/pack.json"
        guard FileManager.default.fileExists(atPath: indexPath) else {
            throw CohortError.failure("\(directory): no pack.json (make a pack with `cohort data pack SOURCE --out DIR`)")
        }
        let index = try JSONFile.read(Index.self, path: indexPath)
        guard index.format == "cohort-pack", index.version == 1 else {
            throw CohortError.failure("\(indexPath): format \(index.format) version \(index.version) (cohort-pack 1 is read)")
        }
        guard index.shape.count == 3, index.shape.allSatisfy({ $0 > 0 }), index.shape.reduce(1, *) < 1 << 40,
              index.classes > 0, index.classNames.count == index.classes else {
            throw CohortError.failure("\(indexPath): a damaged index (shape \(index.shape), \(index.classes) classes, "
                                      + "\(index.classNames.count) class names)")
        }
        let normalization = normalize ?? index.normalization
        try normalization.check(channels: index.shape[0], source: directory)
        func split(_ split: Split, _ name: String) throws -> ImageDataset {
            var runs: [MappedSamples.Run] = [], labels: [Int32] = []
            for shard in split.shards {
                let (run, shardLabels) = try open(shard, in: directory, index: index)
                runs.append(run)
                labels += shardLabels
            }
            guard labels.count == split.count else {
                throw CohortError.failure("\(indexPath): \(name) has \(split.count) samples, its shards \(labels.count)")
            }
            return ImageDataset(name: URL(fileURLWithPath: directory).lastPathComponent, shape: index.shape,
                                samples: MappedSamples(runs: runs, sampleSize: index.shape.reduce(1, *), element: index.element),
                                labels: labels, classes: index.classes, classNames: index.classNames,
                                normalization: normalization)
        }
        let train = try split(index.train, "train"), test = try split(index.test, "test")
        guard train.count > 0, test.count > 0 else { throw CohortError.failure("\(indexPath): an empty \(train.count == 0 ? "train" : "test") split") }
        return DatasetSplits(train: train, test: test)
    }

    /// One shard mapped and checked against the index: its header, size, CRC-32 and labels.
    static func open(_ shard: Shard, in directory: String, index: Index) throws -> (MappedSamples.Run, [Int32]) {
        guard !shard.file.contains("/"), shard.count >= 0 else {
            throw CohortError.failure("\(directory)/pack.json: a damaged shard entry \(shard.file)")
        }
        let path = "\(directory)/\(shard.file)"
        let file = try MappedFile(path: path)
        func fail(_ why: String) -> CohortError { .failure("\(path): \(why); the pack is damaged, make it again") }
        guard file.size >= headerBytes, file.bytes(0..<8) == magic else { throw fail("not a Cohort shard (no COHORTSH header)") }
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: UInt64(littleEndian: file.base.loadUnaligned(fromByteOffset: at, as: UInt64.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: file.base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        let sampleBytes = index.shape.reduce(1, *) * index.element.byteCount
        let n = u64(16), samplesOffset = (headerBytes + 4 * shard.count + 63) / 64 * 64
        guard u32(8) == 1, u32(12) == (index.element == .uint8 ? 0 : 1), n == shard.count, u64(24) == sampleBytes,
              u64(32) == headerBytes, u64(40) == samplesOffset else {
            throw fail("its header (\(n) samples of \(u64(24)) bytes) does not match pack.json (\(shard.count) of \(sampleBytes))")
        }
        guard file.size == samplesOffset + n * sampleBytes else {
            throw fail("\(file.size) bytes, its header says \(samplesOffset + n * sampleBytes) (truncated?)")
        }
        let crc = update(crc32(0, nil, 0), UnsafeRawBufferPointer(start: file.base + headerBytes, count: file.size - headerBytes))
        guard UInt32(crc) == shard.crc32 else {
            throw fail("CRC-32 \(String(format: "%08x", UInt32(crc))), pack.json says \(String(format: "%08x", shard.crc32))")
        }
        let labels = (0..<n).map { Int32(littleEndian: file.base.loadUnaligned(fromByteOffset: headerBytes + 4 * $0, as: Int32.self)) }
        if let bad = labels.firstIndex(where: { !(0..<Int32(index.classes)).contains($0) }) {
            throw fail("sample \(bad) has label \(labels[bad]), not in 0..<\(index.classes)")
        }
        return (MappedSamples.Run(file: file, offset: samplesOffset, count: n), labels)
    }
}
