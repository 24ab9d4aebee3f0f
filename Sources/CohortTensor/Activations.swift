/// Sigmoid and tanh over whole arrays, eight lanes at a time: the recurrent cells
/// spend most of their elementwise time in these, and libm's scalar `expf`/`tanhf`
/// calls cost more than the arithmetic around them.
///
/// Accuracy: within a few float ulps of the exact values (the tests compare cells with
/// PyTorch to 1e-5), finite for every finite input.

/// `e^x` for 8 lanes (Cephes `expf`): `x = k·ln2 + r`, `|r| <= ln2/2`, `e^r` by a
/// degree-6 polynomial, `2^k` built in the exponent bits. Inputs are clamped to
/// [-87.3, 88.3], where the result is a normal float.
///
/// `k` is rounded with the 1.5·2²³ trick: adding it leaves `k` in the low mantissa
/// bits, so neither a rounding call nor a float-to-int conversion is needed (both are
/// per-lane library calls for Swift's SIMD types on baseline x86-64).
@inline(__always)
public func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var v = x
    v.replace(with: -87.3, where: v .< -87.3)
    v.replace(with: 88.3, where: v .> 88.3)
    let magic: Float = 12_582_912  // 1.5 · 2^23
    let shifted = v * 1.442_695_04 + magic
    let k = shifted - magic  // round(v / ln2)
    // r = v - k·ln2, with ln2 split in two so that k·ln2_hi is exact.
    let r = (v - k * 0.693_359_375) - k * -2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let er = p * (r * r) + r + 1
    let integerK = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let exponent = (integerK &+ 127) &<< 23
    return er * unsafeBitCast(exponent, to: SIMD8<Float>.self)
}

/// `σ(x) = 1 / (1 + e^-x)` for 8 lanes.
@inline(__always)
public func sigmoid8(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + exp8(-x)) }

/// `tanh(x)` for 8 lanes (Cephes `tanhf`): an odd polynomial for |x| < 0.625, where
/// `1 - 2/(e^{2|x|} + 1)` would lose digits to cancellation, that formula elsewhere.
@inline(__always)
public func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var a = x
    a.replace(with: -x, where: x .< 0)
    let z = x * x
    var p = SIMD8<Float>(repeating: -5.704_988_72e-3)
    p = p * z + 2.063_908_88e-2
    p = p * z - 5.373_971_56e-2
    p = p * z + 1.333_144_22e-1
    p = p * z - 3.333_328_19e-1
    let small = p * z * x + x
    let large = 1 - 2 / (exp8(2 * a) + 1)
    var result = large
    result.replace(with: -large, where: x .< 0)
    result.replace(with: small, where: a .< 0.625)
    return result
}

/// Applies an 8-lane function to `count` floats in place; the tail goes through the
/// same function in a zero-padded vector, so every element gets the same formula.
@inline(__always)
func apply8(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    map8(UnsafePointer(p), p, count: count, f)
}

/// `p[i] ← σ(p[i])` for `count` elements.
public func sigmoidInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) { apply8(p, count: count, sigmoid8) }

/// `p[i] ← tanh(p[i])` for `count` elements.
public func tanhInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) { apply8(p, count: count, tanh8) }

/// The standard normal distribution's `Φ(x)` and density `φ(x) = e^(-x²/2)/√(2π)` for 8 lanes.
/// `Φ` comes from the complementary error function of `|x|/√2` by Abramowitz and Stegun's
/// 7.1.26 (`erfc z ≈ t·(a₁ + a₂t + … + a₅t⁴)·e^(-z²)`, `t = 1/(1 + p·z)`, absolute error below
/// 1.5e-7 for every z ≥ 0), taken as `1 - erfc/2` or `erfc/2` by the sign of x, so that neither
/// tail loses digits to cancellation.
@inline(__always)
public func normalCDF8(_ x: SIMD8<Float>) -> (cdf: SIMD8<Float>, density: SIMD8<Float>) {
    var z = x * 0.707_106_78
    z.replace(with: -z, where: z .< 0)
    let t = 1 / (1 + 0.327_591_1 * z)
    var p = SIMD8<Float>(repeating: 1.061_405_429)
    p = p * t - 1.453_152_027
    p = p * t + 1.421_413_741
    p = p * t - 0.284_496_736
    p = p * t + 0.254_829_592
    let gauss = exp8(-0.5 * x * x)  // e^(-z²) = e^(-x²/2)
    let halfTail = 0.5 * p * t * gauss
    var cdf = 1 - halfTail
    cdf.replace(with: halfTail, where: x .< 0)
    return (cdf, gauss * 0.398_942_28)
}

/// `y = GELU(x)` for `count` elements: exactly `x·Φ(x)` (PyTorch's default), or with `tanh` the
/// approximation `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (`approximate="tanh"`). With `slope`,
/// also `GELU'(x)` there, which backward then only multiplies: `Φ(x) + x·φ(x)`, or the tanh
/// form's `(1 + τ)/2 + x/2·(1 - τ²)·√(2/π)·(1 + 3·0.044715·x²)` with `τ` its tanh.
public func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, slope: UnsafeMutablePointer<Float>?,
                        count: Int, tanh: Bool) {
    func values(_ v: SIMD8<Float>) -> (y: SIMD8<Float>, slope: SIMD8<Float>) {
        if tanh {
            let cube: SIMD8<Float> = v * v * v
            let tau = tanh8(0.797_884_56 * (v + 0.044_715 * cube))
            let half: SIMD8<Float> = 0.5 * (1 + tau)
            let inner: SIMD8<Float> = 0.797_884_56 * (1 + 0.134_145 * v * v)
            return (v * half, half + 0.5 * v * (1 - tau * tau) * inner)
        }
        let (cdf, density) = normalCDF8(v)
        return (v * cdf, cdf + v * density)
    }
    guard let slope else { return map8(x, y, count: count) { values($0).y } }
    let input = UnsafeRawPointer(x), output = UnsafeMutableRawPointer(y), slopes = UnsafeMutableRawPointer(slope)
    var i = 0
    while i + 8 <= count {
        let (value, derivative) = values(input.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
        output.storeBytes(of: value, toByteOffset: i * 4, as: SIMD8<Float>.self)
        slopes.storeBytes(of: derivative, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    guard i < count else { return }
    var tail = SIMD8<Float>(repeating: 0)
    for j in 0..<(count - i) { tail[j] = x[i + j] }
    let (value, derivative) = values(tail)
    for j in 0..<(count - i) { y[i + j] = value[j]; slope[i + j] = derivative[j] }
}

/// `y[i] = f(x[i])` eight lanes at a time; the tail through the same function, zero-padded.
@inline(__always)
func map8(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
          _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    let input = UnsafeRawPointer(x), output = UnsafeMutableRawPointer(y)
    var i = 0
    while i + 8 <= count {
        output.storeBytes(of: f(input.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)), toByteOffset: i * 4,
                          as: SIMD8<Float>.self)
        i += 8
    }
    guard i < count else { return }
    var tail = SIMD8<Float>(repeating: 0)
    for j in 0..<(count - i) { tail[j] = x[i + j] }
    let out = f(tail)
    for j in 0..<(count - i) { y[i + j] = out[j] }
}
