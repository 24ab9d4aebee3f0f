// Batch norm's passes over one channel's plane of one sample: sums in 16 float lanes (the
// plane of a 32x32 map is 1,024 values, whose float sum keeps ~1e-6 of relative precision),
// returned in double for the sums over samples and ranks.

/// `(Σx, Σx²)` of `count` values, Σx² taken as `Σ(x - m)² + count·m²` around the plane's own mean
/// m, so that a large mean does not cancel the variance away in float.
public func planeMoments(_ x: UnsafePointer<Float>, count: Int) -> (sum: Double, squares: Double) {
    let sum = laneSum(count) { i in load16(x + i) } tail: { x[$0] }
    let m = Float(sum / Double(count))
    let centered = laneSum(count) { i in let d = load16(x + i) - SIMD16(repeating: m); return d * d } tail: {
        let d = x[$0] - m; return d * d
    }
    return (sum, centered + Double(count) * Double(m) * Double(m))
}

/// `(Σg, Σg·(x - mean))` with `g = dy`, or with `rectified` (the layer's output `y`, rectified in
/// the forward pass) `g = dy·[y > 0]`: the sums of batch norm's backward.
public func planeGradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rectified y: UnsafePointer<Float>?,
                              mean: Float, count: Int) -> (sum: Double, projected: Double) {
    let mu = SIMD16<Float>(repeating: mean), zero = SIMD16<Float>(repeating: 0)
    if let y {
        let s = laneSum(count) { i in load16(dy + i).replacing(with: 0, where: load16(y + i) .<= zero) } tail: {
            y[$0] > 0 ? dy[$0] : 0
        }
        let p = laneSum(count) { i in
            (load16(dy + i) * (load16(x + i) - mu)).replacing(with: 0, where: load16(y + i) .<= zero)
        } tail: { y[$0] > 0 ? dy[$0] * (x[$0] - mean) : 0 }
        return (s, p)
    }
    let s = laneSum(count) { i in load16(dy + i) } tail: { dy[$0] }
    let p = laneSum(count) { i in load16(dy + i) * (load16(x + i) - mu) } tail: { dy[$0] * (x[$0] - mean) }
    return (s, p)
}

/// `y = scale·x + shift`, or its `max(·, 0)` when `rectify`.
public func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float,
                   rectify: Bool) {
    if rectify {
        for i in 0..<count { let v = x[i] * scale + shift; y[i] = v > 0 ? v : 0 }
    } else {
        for i in 0..<count { y[i] = x[i] * scale + shift }
    }
}

/// Batch norm's input gradient `dx = a·g + b·x + c` with g as in `planeGradientSums`.
public func normalizationInputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                       rectified y: UnsafePointer<Float>?, _ dx: UnsafeMutablePointer<Float>,
                                       count: Int, a: Float, b: Float, c: Float) {
    if let y {
        for i in 0..<count { dx[i] = a * (y[i] > 0 ? dy[i] : 0) + b * x[i] + c }
    } else {
        for i in 0..<count { dx[i] = a * dy[i] + b * x[i] + c }
    }
}

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// `Σ_i f(i)` over `count` values, 16 at a time in float lanes (`lanes(i)` for values i..<i+16),
/// the rest one at a time (`tail(i)`); the lanes added last, in double.
@inline(__always)
private func laneSum(_ count: Int, _ lanes: (Int) -> SIMD16<Float>, tail: (Int) -> Float) -> Double {
    var acc = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= count {
        acc += lanes(i)
        i += 16
    }
    var total = 0.0
    for k in 0..<16 { total += Double(acc[k]) }
    while i < count {
        total += Double(tail(i))
        i += 1
    }
    return total
}
