/// How floats are stored or sent: IEEE single precision, or bfloat16 (its upper 16 bits: the
/// same 8-bit exponent and range, 7 bits of mantissa, a relative rounding error of 2^-9).
public enum FloatFormat: String, CaseIterable, Codable, Sendable {
    case fp32, bf16

    /// Bytes per value.
    public var bytes: Int { self == .fp32 ? 4 : 2 }
}

/// bfloat16 values as `UInt16` bit patterns, and conversions to and from `Float`.
public enum BFloat16 {
    /// `x` rounded to the nearest bfloat16, ties to even (as PyTorch's and oneDNN's
    /// conversions); infinities stay, a NaN stays a (quiet) NaN, a float beyond the largest
    /// bfloat16 rounds to infinity.
    @inline(__always)
    public static func rounded(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// The float a bfloat16 stands for (exact).
    @inline(__always)
    public static func float(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// `target[i] = rounded(source[i])` for `count` values.
    public static func round(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count { target[i] = rounded(source[i]) }
    }

    /// `target[i] = float(source[i])` for `count` values.
    public static func widen(_ source: UnsafePointer<UInt16>, into target: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { target[i] = float(source[i]) }
    }
}
