import CohortBase
import Foundation

/// The bytes of a text file as tokens (`--dataset text --data-file FILE`), as the peer
/// `torch_lm.py` reads them: the vocabulary is the sorted set of byte values present, token i
/// the i-th smallest; the first 90% of the tokens train and the rest validate.
///
/// A sample is a window of T + 1 tokens: inputs the first T (`[T]`, the token numbers as
/// floats), targets the T after them (every position has one). Training windows start at every
/// offset `0 ..< n - T - 1` of the training part (the peer's `randint(0, n - T - 1)`), and a
/// step draws its offsets (`EpochSampler`'s draws); validation takes `windows` fixed windows
/// evenly spaced through the validation part (`validationOffsets`).
public struct TextCorpus: Sendable {
    /// The byte values present, ascending: token i is `vocabulary[i]`.
    public let vocabulary: [UInt8]
    /// Each byte of the file as its token.
    public let tokens: [UInt8]
    /// The first `split` tokens train (the peer's `int(len * 0.9)`).
    public let split: Int

    /// `bytes` as tokens; refused when the file is too short for one window of `blockSize` + 1
    /// in each part.
    public init(bytes: [UInt8], source: String, blockSize: Int) throws {
        var present = [Bool](repeating: false, count: 256)
        for b in bytes { present[Int(b)] = true }
        vocabulary = (0..<256).filter { present[$0] }.map(UInt8.init)
        var lookup = [UInt8](repeating: 0, count: 256)
        for (token, byte) in vocabulary.enumerated() { lookup[Int(byte)] = UInt8(token) }
        tokens = bytes.map { lookup[Int($0)] }
        split = Int(Double(bytes.count) * 0.9)
        guard split - blockSize - 1 >= 1, bytes.count - split - blockSize - 1 >= 0 else {
            throw CohortError.settings("\(source): \(bytes.count) bytes are too few for windows of --block-size "
                                       + "\(blockSize) + 1 in both the first 90% (training) and the last 10% (validation)")
        }
    }

    /// The file at `path`, read whole.
    public init(path: String, blockSize: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CohortError.settings("--data-file \(path): cannot read the file")
        }
        guard !data.isEmpty else { throw CohortError.settings("--data-file \(path): the file is empty") }
        try self.init(bytes: [UInt8](data), source: "--data-file \(path)", blockSize: blockSize)
    }

    /// The offsets in the validation part of `windows` windows of T + 1 tokens, evenly spaced from
    /// its start to the last that fits, as the peer's `torch.linspace(0, n - T - 1, windows).long()`
    /// computes them: PyTorch's CPU kernel steps in double, the first half from the start and the
    /// second from the end, rounds each to its float32 result, and `long()` truncates that.
    public static func validationOffsets(count n: Int, blockSize t: Int, windows: Int) -> [Int] {
        let end = Double(n - t - 1)
        guard windows > 1 else { return [0] }
        let step = end / Double(windows - 1)
        let half = windows / 2
        return (0..<windows).map { i in
            let value = i < half ? Double(i) * step : end - Double(windows - 1 - i) * step
            return Int(Float(value))
        }
    }

    /// The training and validation sets of windows of `blockSize` + 1 tokens; the vocabulary's
    /// bytes name the classes (`"\n"` written as it is).
    public func splits(name: String, blockSize: Int, validationWindows: Int) -> DatasetSplits {
        let storage = TokenStorage(tokens)
        let train = TokenWindows(storage: storage, start: 0, offsets: nil, count: split - blockSize - 1,
                                 length: blockSize, vocabulary: vocabulary)
        let validation = TokenWindows(storage: storage, start: split,
                                      offsets: Self.validationOffsets(count: tokens.count - split, blockSize: blockSize,
                                                                      windows: validationWindows),
                                      count: validationWindows, length: blockSize, vocabulary: vocabulary)
        let names = vocabulary.map { String(decoding: [$0], as: UTF8.self) }
        func dataset(_ windows: TokenWindows) -> ImageDataset {
            ImageDataset(name: name, windows: windows, classNames: names)
        }
        return DatasetSplits(train: dataset(train), test: dataset(validation))
    }
}

/// The tokens, shared by the training and validation windows.
final class TokenStorage: Sendable {
    let tokens: [UInt8]
    init(_ tokens: [UInt8]) { self.tokens = tokens }
}

/// Windows of T + 1 tokens of one part of a text: window i starts at `start + offsets[i]` (or
/// `start + i`). As samples, the first T tokens as floats; as targets, the T after them.
public final class TokenWindows: SampleStore, @unchecked Sendable {
    public let count: Int
    /// T: tokens per window's input (and targets).
    public let length: Int
    /// Token i is byte `vocabulary[i]`.
    public let vocabulary: [UInt8]
    private let storage: TokenStorage, start: Int, offsets: [Int]?

    init(storage: TokenStorage, start: Int, offsets: [Int]?, count: Int, length: Int, vocabulary: [UInt8]) {
        self.storage = storage; self.start = start; self.offsets = offsets
        self.count = count; self.length = length; self.vocabulary = vocabulary
    }

    public var sampleSize: Int { length }
    public var element: SampleElement { .float32 }

    /// Where window `index` starts in the tokens.
    @inline(__always) private func first(_ index: Int) -> Int { start + (offsets?[index] ?? index) }

    public func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer {
        let x = scratch.assumingMemoryBound(to: Float.self)
        fill(index, x: x, y: nil)
        return UnsafeRawPointer(x)
    }

    /// Window `index`'s inputs into `x[T]` and, if given, its targets into `y[T]`.
    public func fill(_ index: Int, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Int32>?) {
        storage.tokens.withUnsafeBufferPointer { tokens in
            let at = first(index)
            for t in 0..<length { x[t] = Float(tokens[at + t]) }
            if let y { for t in 0..<length { y[t] = Int32(tokens[at + t + 1]) } }
        }
    }

    /// The vocabulary's bytes of `tokens` (text a model generated).
    public func bytes(of tokens: [Int]) -> [UInt8] { tokens.map { vocabulary[$0] } }
}
