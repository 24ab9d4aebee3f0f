import Foundation

/// A small, fast, seedable generator (SplitMix64) whose streams are identical on
/// every platform and every rank: the same seed gives the same initial weights,
/// permutations and synthetic data everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A stream for a (seed, purpose, index) triple, e.g. the permutation of epoch `index`.
    /// Each component is hashed in turn, so nearby triples give unrelated streams.
    public init(seed: UInt64, stream: UInt64, index: UInt64 = 0) {
        var a = SplitMix64(seed: seed)
        var b = SplitMix64(seed: a.next() ^ (stream &* 0xD1B5_4A32_D192_ED03))
        var c = SplitMix64(seed: b.next() ^ (index &* 0x8CB9_2BA7_2F3D_8DD7))
        state = c.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (every value exactly representable).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * nextUnitFloat() }

    /// Normal with mean 0 and deviation `std`, by Box–Muller from two uniforms (the second
    /// value is dropped, so every draw takes two steps of the stream).
    public mutating func normal(std: Float) -> Float {
        let u1 = 1 - Double(next() >> 11) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53  // u1 in (0, 1]
        return std * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's method).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A permutation of `0..<count` by Fisher–Yates from this stream: position i (from the
    /// last down) swapped with one of `0...i`.
    public mutating func permutation(of count: Int) -> [Int] {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, nextIndex(below: i + 1)) }
        return order
    }
}
