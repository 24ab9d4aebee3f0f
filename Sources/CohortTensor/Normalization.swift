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

// The same passes over one plane of a channel-blocked batch (`ActivationLayout.blocked(b)`):
// `positions` runs of `block` values, value l of a run belonging to the block's channel l. Each
// channel's values are added in the order `laneSum` adds a planar plane's, so the blocked and the
// planar layouts give the same bits. The loops over a run's `block` values are what the compiler
// turns into vector instructions.

/// Each channel's `Σx` into `sums[l]` and `Σx²` into `squares[l]`, as `planeMoments` gives them.
public func blockedPlaneMoments(_ x: UnsafePointer<Float>, positions: Int, block: Int,
                                sums: UnsafeMutablePointer<Double>, squares: UnsafeMutablePointer<Double>) {
    planarOrderSums(positions, block: block, into: sums) { p, acc in
        let v = x + p * block
        for l in 0..<block { acc[l] += v[l] }
    } tail: { p, l in x[p * block + l] }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { mean in
        for l in 0..<block { mean[l] = Float(sums[l] / Double(positions)) }
        planarOrderSums(positions, block: block, into: squares) { p, acc in
            let v = x + p * block
            for l in 0..<block { let d = v[l] - mean[l]; acc[l] += d * d }
        } tail: { p, l in let d = x[p * block + l] - mean[l]; return d * d }
        for l in 0..<block { squares[l] += Double(positions) * Double(mean[l]) * Double(mean[l]) }
    }
}

/// Each channel's `Σg` into `sums[l]` and `Σg·(x - mean[l])` into `projected[l]`, with g as in
/// `planeGradientSums`, as it gives them.
public func blockedPlaneGradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                     rectified y: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                     positions: Int, block: Int,
                                     sums: UnsafeMutablePointer<Double>, projected: UnsafeMutablePointer<Double>) {
    if let y {
        planarOrderSums(positions, block: block, into: sums) { p, acc in
            let d = dy + p * block, r = y + p * block
            for l in 0..<block { acc[l] += r[l] > 0 ? d[l] : 0 }
        } tail: { p, l in y[p * block + l] > 0 ? dy[p * block + l] : 0 }
        planarOrderSums(positions, block: block, into: projected) { p, acc in
            let d = dy + p * block, v = x + p * block, r = y + p * block
            for l in 0..<block { acc[l] += r[l] > 0 ? d[l] * (v[l] - mean[l]) : 0 }
        } tail: { p, l in let i = p * block + l; return y[i] > 0 ? dy[i] * (x[i] - mean[l]) : 0 }
    } else {
        planarOrderSums(positions, block: block, into: sums) { p, acc in
            let d = dy + p * block
            for l in 0..<block { acc[l] += d[l] }
        } tail: { p, l in dy[p * block + l] }
        planarOrderSums(positions, block: block, into: projected) { p, acc in
            let d = dy + p * block, v = x + p * block
            for l in 0..<block { acc[l] += d[l] * (v[l] - mean[l]) }
        } tail: { p, l in let i = p * block + l; return dy[i] * (x[i] - mean[l]) }
    }
}

/// `y = scale[l]·x + shift[l]` channel by channel, or its `max(·, 0)` when `rectify`.
public func blockedAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, positions: Int, block: Int,
                          scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, rectify: Bool) {
    for p in 0..<positions {
        let v = x + p * block, out = y + p * block
        if rectify {
            for l in 0..<block { let a = v[l] * scale[l] + shift[l]; out[l] = a > 0 ? a : 0 }
        } else {
            for l in 0..<block { out[l] = v[l] * scale[l] + shift[l] }
        }
    }
}

/// `dx = a[l]·g + b[l]·x + c[l]` channel by channel, with g as in `planeGradientSums`.
public func blockedInputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rectified y: UnsafePointer<Float>?,
                                 _ dx: UnsafeMutablePointer<Float>, positions: Int, block: Int,
                                 a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafePointer<Float>) {
    for p in 0..<positions {
        let d = dy + p * block, v = x + p * block, out = dx + p * block
        if let y {
            let r = y + p * block
            for l in 0..<block { out[l] = a[l] * (r[l] > 0 ? d[l] : 0) + b[l] * v[l] + c[l] }
        } else {
            for l in 0..<block { out[l] = a[l] * d[l] + b[l] * v[l] + c[l] }
        }
    }
}

/// Each channel l's sum over a blocked plane into `total[l]`, in `laneSum`'s order: while whole
/// groups of 16 positions remain, position p into float lane p mod 16 (`add(p, lanes)` adds the
/// position's `block` values to the lane's `block` accumulators), the 16 lanes then in double in
/// lane order, then the remaining positions one by one in double (`tail(p, l)`).
@inline(__always)
private func planarOrderSums(_ positions: Int, block: Int, into total: UnsafeMutablePointer<Double>,
                             _ add: (Int, UnsafeMutablePointer<Float>) -> Void, tail: (Int, Int) -> Float) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * block) { buffer in
        let lanes = buffer.baseAddress!
        buffer.initialize(repeating: 0)
        let whole = positions / 16 * 16
        for p in 0..<whole { add(p, lanes + (p % 16) * block) }
        for l in 0..<block {
            var sum = 0.0
            for k in 0..<16 { sum += Double(lanes[k * block + l]) }
            for p in whole..<positions { sum += Double(tail(p, l)) }
            total[l] = sum
        }
    }
}
