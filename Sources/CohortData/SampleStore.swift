import CohortBase
import Foundation

/// How one value of a stored sample is kept: a byte (pixels, 0...255) or a float.
public enum SampleElement: String, Codable, Sendable {
    case uint8, float32

    public var byteCount: Int { self == .uint8 ? 1 : 4 }
    /// What a stored value is multiplied by before normalisation: pixels are scaled to [0, 1].
    public var unitScale: Float { self == .uint8 ? 1 / 255 : 1 }
}

/// Where a data set's samples live: `count` samples of `sampleSize` values of `element` each,
/// in a sample's `[C, H, W]` order. A store in memory or in a memory map hands out pointers into
/// itself; a store of encoded images decodes into the caller's scratch space. Stores are read by
/// several threads at once (the loader's, the replicas'), so `sample` must not mutate them.
public protocol SampleStore: AnyObject, Sendable {
    var count: Int { get }
    var sampleSize: Int { get }
    var element: SampleElement { get }
    /// Whether samples are read from memory or a map (and so cannot fail), not decoded on demand.
    var isDecoded: Bool { get }
    /// Sample `index`'s values: a pointer into the store, or into `scratch` (room for
    /// `sampleSize` values of `element`) where the sample is made on demand. Valid as long as
    /// the store and `scratch` are. Throws when an encoded sample cannot be decoded.
    func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer
}

extension SampleStore {
    public var isDecoded: Bool { true }
    public var sampleBytes: Int { sampleSize * element.byteCount }

    /// Sample `index`'s values as floats, as stored (pixels 0...255, not normalised).
    public func values(_ index: Int) throws -> [Float] {
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, sampleBytes), alignment: 64)
        defer { scratch.deallocate() }
        let p = try sample(index, scratch: scratch)
        switch element {
        case .uint8: return (0..<sampleSize).map { Float(p.load(fromByteOffset: $0, as: UInt8.self)) }
        case .float32: return Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: sampleSize))
        }
    }
}

/// Samples held in memory, one contiguous run of bytes (`[count, sampleSize]` of `element`).
public final class MemorySamples: SampleStore, @unchecked Sendable {
    public let count: Int, sampleSize: Int, element: SampleElement
    private let bytes: [UInt8]

    public init(bytes: [UInt8], sampleSize: Int, element: SampleElement = .uint8) {
        precondition(sampleSize > 0 && bytes.count % (sampleSize * element.byteCount) == 0,
                     "bytes do not hold whole samples")
        self.bytes = bytes; self.sampleSize = sampleSize; self.element = element
        count = bytes.count / (sampleSize * element.byteCount)
    }

    /// Float samples (`[count, sampleSize]`).
    public convenience init(floats: [Float], sampleSize: Int) {
        self.init(bytes: floats.withUnsafeBytes { Array($0) }, sampleSize: sampleSize, element: .float32)
    }

    /// Samples of `element` made from values as stored (pixels 0...255 for `uint8`).
    public convenience init(values: [Float], sampleSize: Int, element: SampleElement) {
        switch element {
        case .uint8: self.init(bytes: values.map { UInt8($0) }, sampleSize: sampleSize)
        case .float32: self.init(floats: values, sampleSize: sampleSize)
        }
    }

    public func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer {
        bytes.withUnsafeBytes { UnsafeRawPointer($0.baseAddress! + index * sampleSize * element.byteCount) }
    }
}

/// Samples in read-only memory-mapped files: runs of decoded samples, each a part of one file
/// (a `.npy` array's data, a pack's shard). Nothing is copied: the pages come from the page
/// cache, which the ranks of a node share, and only the samples read are ever paged in.
public final class MappedSamples: SampleStore, @unchecked Sendable {
    /// `count` samples from byte `offset` of `file`.
    public struct Run: Sendable {
        public let file: MappedFile, offset: Int, count: Int
        public init(file: MappedFile, offset: Int, count: Int) { self.file = file; self.offset = offset; self.count = count }
    }

    public let count: Int, sampleSize: Int, element: SampleElement
    public let runs: [Run]
    /// The index of each run's first sample, and `count` at the end.
    private let starts: [Int]

    public init(runs: [Run], sampleSize: Int, element: SampleElement) {
        precondition(runs.allSatisfy { $0.offset + $0.count * sampleSize * element.byteCount <= $0.file.size },
                     "a run ends beyond its file")
        self.runs = runs; self.sampleSize = sampleSize; self.element = element
        var starts = [0]
        for run in runs { starts.append(starts.last! + run.count) }
        self.starts = starts
        count = starts.last!
    }

    public func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer {
        // The run holding `index`: the last start at or below it (binary search).
        var low = 0, high = runs.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if starts[mid] <= index { low = mid } else { high = mid - 1 }
        }
        let run = runs[low]
        return run.file.base + run.offset + (index - starts[low]) * sampleSize * element.byteCount
    }
}

/// A file mapped read-only into memory (`mmap(PROT_READ, MAP_SHARED)`), unmapped when the last
/// reference goes. A zero-byte file maps to no memory and has no bytes to read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer
    private let mapped: Bool

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CohortError.failure("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CohortError.failure("\(path): cannot stat (\(String(cString: strerror(errno))))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw CohortError.failure("\(path): not a regular file") }
        size = Int(info.st_size)
        guard size > 0 else {
            base = UnsafeRawPointer(bitPattern: 0x1000)!  // never read: size is 0
            mapped = false
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            throw CohortError.failure("\(path): cannot map (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(address)
        mapped = true
    }

    /// `size` bytes of zeroed anonymous memory, to be written once through `base` (an inflated array).
    public init(anonymous size: Int) throws {
        path = "(memory)"
        self.size = size
        guard size > 0 else {
            base = UnsafeRawPointer(bitPattern: 0x1000)!
            mapped = false
            return
        }
        guard let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              address != MAP_FAILED else {
            throw CohortError.failure("cannot allocate \(size) bytes (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(address)
        mapped = true
    }

    /// Bytes `range` of the file, copied.
    public func bytes(_ range: Range<Int>) -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= size)
        return Array(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}
