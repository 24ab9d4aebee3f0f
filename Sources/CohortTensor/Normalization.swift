// Batch norm's passes over one channel's plane of one sample: sums in 16 float lanes (the
// plane of a 32x32 map is 1,024 values, whose float sum keeps ~1e-6 of relative precision),
// returned in double for the sums over samples and ranks.

/// A per-channel affine map `y = scale[c]·x + shift[c]`, its pointers at a plane's first channel.
public struct ChannelAffine {
    public let scale: UnsafePointer<Float>, shift: UnsafePointer<Float>

    public init(scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        self.scale = scale
        self.shift = shift
    }

    /// The map from channel `first` on.
    public func from(_ first: Int) -> ChannelAffine { ChannelAffine(scale: scale + first, shift: shift + first) }

    /// Channel `c`'s scale and shift.
    public func at(_ c: Int) -> (scale: Float, shift: Float) { (scale[c], shift[c]) }
}

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

/// `(Σg, Σg·(x - mean))` with `g = dy`, or, when the forward pass rectified its output
/// `y = max(scale·x + shift, 0)`, with `g = dy·[y > 0]`: the sums of batch norm's backward. The mask
/// is taken again from x with the forward's float operations (`rectifiedBy: (scale, shift)`),
/// which gives the same bits as reading y and spares reading it.
public func planeGradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                              rectifiedBy map: (scale: Float, shift: Float)?,
                              mean: Float, count: Int) -> (sum: Double, projected: Double) {
    let mu = SIMD16<Float>(repeating: mean), zero = SIMD16<Float>(repeating: 0)
    if let map {
        let a = SIMD16<Float>(repeating: map.scale), b = SIMD16<Float>(repeating: map.shift)
        let s = laneSum(count) { i in load16(dy + i).replacing(with: 0, where: load16(x + i) * a + b .<= zero) } tail: {
            x[$0] * map.scale + map.shift > 0 ? dy[$0] : 0
        }
        let p = laneSum(count) { i in
            (load16(dy + i) * (load16(x + i) - mu)).replacing(with: 0, where: load16(x + i) * a + b .<= zero)
        } tail: { x[$0] * map.scale + map.shift > 0 ? dy[$0] * (x[$0] - mean) : 0 }
        return (s, p)
    }
    let s = laneSum(count) { i in load16(dy + i) } tail: { dy[$0] }
    let p = laneSum(count) { i in load16(dy + i) * (load16(x + i) - mu) } tail: { dy[$0] * (x[$0] - mean) }
    return (s, p)
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
// `positions` runs of `block` values, value l of a run belonging to the block's channel l. A run
// is one vector (`BlockRun`: `SIMD16<Float>` for blocks of 16, `SIMD8<Float>` for 8, the widths
// oneDNN picks, `ActivationLayout.preferredBlock`), so each pass is a vector operation per
// position. Each channel's values are added in the order `laneSum` adds a planar plane's
// (`PlanarOrderSum`), and the elementwise passes are the planar ones' float operations lane by
// lane, so the blocked and the planar layouts give the same bits.

/// Each channel's `Σx` into `sums[l]` and `Σx²` into `squares[l]`, as `planeMoments` gives them.
public func blockedPlaneMoments(_ x: UnsafePointer<Float>, positions: Int, block: Int,
                                sums: UnsafeMutablePointer<Double>, squares: UnsafeMutablePointer<Double>) {
    switch block {
    case 16: moments(x, positions, sums, squares, SIMD16<Float>.self)
    case 8: moments(x, positions, sums, squares, SIMD8<Float>.self)
    default: unsupported(block)
    }
}

@inline(__always)
private func moments<V: BlockRun>(_ x: UnsafePointer<Float>, _ positions: Int, _ sums: UnsafeMutablePointer<Double>,
                                  _ squares: UnsafeMutablePointer<Double>, _: V.Type) {
    let n = V.width
    var sum = PlanarOrderSum<V>()
    for p in 0..<positions { sum.add(V(x + p * n), at: p, of: positions) }
    sum.finish(into: sums)
    var mean = V.zero
    for l in 0..<n { mean[l] = Float(sums[l] / Double(positions)) }
    var centered = PlanarOrderSum<V>()
    for p in 0..<positions { let d = V(x + p * n) - mean; centered.add(d * d, at: p, of: positions) }
    centered.finish(into: squares)
    for l in 0..<n { squares[l] += Double(positions) * Double(mean[l]) * Double(mean[l]) }
}

/// Each channel's `Σg` into `sums[l]` and `Σg·(x - mean[l])` into `projected[l]`, with g as in
/// `planeGradientSums`, as it gives them (both in one pass).
public func blockedPlaneGradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                     rectifiedBy map: ChannelAffine?, mean: UnsafePointer<Float>,
                                     positions: Int, block: Int,
                                     sums: UnsafeMutablePointer<Double>, projected: UnsafeMutablePointer<Double>) {
    switch block {
    case 16: gradientSums(dy, x, map, mean, positions, sums, projected, SIMD16<Float>.self)
    case 8: gradientSums(dy, x, map, mean, positions, sums, projected, SIMD8<Float>.self)
    default: unsupported(block)
    }
}

@inline(__always)
private func gradientSums<V: BlockRun>(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ map: ChannelAffine?,
                                       _ mean: UnsafePointer<Float>, _ positions: Int, _ sums: UnsafeMutablePointer<Double>,
                                       _ projected: UnsafeMutablePointer<Double>, _: V.Type) {
    let n = V.width, mu = V(mean)
    var s = PlanarOrderSum<V>(), q = PlanarOrderSum<V>()
    if let map {
        let a = V(map.scale), b = V(map.shift)
        for p in 0..<positions {
            let d = V(dy + p * n), r = V(x + p * n) * a + b
            // The product masked after it is taken, as the planar pass does.
            s.add(d.kept(where: r), at: p, of: positions)
            q.add((d * (V(x + p * n) - mu)).kept(where: r), at: p, of: positions)
        }
    } else {
        for p in 0..<positions {
            let d = V(dy + p * n)
            s.add(d, at: p, of: positions)
            q.add(d * (V(x + p * n) - mu), at: p, of: positions)
        }
    }
    s.finish(into: sums)
    q.finish(into: projected)
}

/// `y = scale[l]·x + shift[l]` channel by channel, or its `max(·, 0)` when `rectify`, over a plane
/// of `positions` runs of `block` channels (1: a planar plane, one channel).
public func planeAffine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, positions: Int, block: Int,
                        _ map: ChannelAffine, rectify: Bool) {
    switch block {
    case 16: affine(x, y, positions, map, rectify, SIMD16<Float>.self)
    case 8: affine(x, y, positions, map, rectify, SIMD8<Float>.self)
    case 1: affine(x, y, positions, map, rectify, Float.self)
    default: unsupported(block)
    }
}

@inline(__always)
private func affine<V: BlockRun>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ positions: Int,
                                 _ map: ChannelAffine, _ rectify: Bool, _: V.Type) {
    let n = V.width, a = V(map.scale), b = V(map.shift)
    if rectify {
        for p in 0..<positions { let v = V(x + p * n) * a + b; v.kept(where: v).store(y + p * n) }
    } else {
        for p in 0..<positions { (V(x + p * n) * a + b).store(y + p * n) }
    }
}

/// Batch norm's input gradient `dx = a[l]·g + b[l]·x + c[l]` channel by channel, with g as in
/// `planeGradientSums`, over a plane of `positions` runs of `block` channels (1: planar).
public func planeInputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rectifiedBy map: ChannelAffine?,
                               _ dx: UnsafeMutablePointer<Float>, positions: Int, block: Int,
                               a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafePointer<Float>) {
    switch block {
    case 16: inputGradient(dy, x, map, dx, positions, a, b, c, SIMD16<Float>.self)
    case 8: inputGradient(dy, x, map, dx, positions, a, b, c, SIMD8<Float>.self)
    case 1: inputGradient(dy, x, map, dx, positions, a, b, c, Float.self)
    default: unsupported(block)
    }
}

@inline(__always)
private func inputGradient<V: BlockRun>(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ map: ChannelAffine?,
                                        _ dx: UnsafeMutablePointer<Float>, _ positions: Int, _ a: UnsafePointer<Float>,
                                        _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _: V.Type) {
    let n = V.width, va = V(a), vb = V(b), vc = V(c)
    if let map {
        let scale = V(map.scale), shift = V(map.shift)
        for p in 0..<positions {
            let v = V(x + p * n)
            let g = V(dy + p * n).kept(where: v * scale + shift)
            (va * g + vb * v + vc).store(dx + p * n)
        }
    } else {
        for p in 0..<positions { (va * V(dy + p * n) + vb * V(x + p * n) + vc).store(dx + p * n) }
    }
}

/// One plane of a residual block's output `y = u + v`, or `max(u + v, 0)` when `rectify`, where
/// `u = scale·body + shift` is the body's closing batch norm applied as the sum reads it, and `v`
/// the shortcut's output, or `scale'·shortcut + shift'` when a batch norm closes it too. The float
/// operations are those of the batch norms' pass (`planeAffine`) followed by the
/// sum's, so the bits are the same as writing the normalised maps first, in one pass instead of up
/// to three. `block`: 1 for a planar plane (one channel), else the layout's channel block.
public func residualPlaneSum(body: UnsafePointer<Float>, _ bodyMap: ChannelAffine, shortcut: UnsafePointer<Float>,
                             _ shortcutMap: ChannelAffine?, into y: UnsafeMutablePointer<Float>, positions: Int,
                             block: Int, rectify: Bool) {
    switch block {
    case 16: residualSum(body, bodyMap, shortcut, shortcutMap, y, positions, rectify, SIMD16<Float>.self)
    case 8: residualSum(body, bodyMap, shortcut, shortcutMap, y, positions, rectify, SIMD8<Float>.self)
    case 1: residualSum(body, bodyMap, shortcut, shortcutMap, y, positions, rectify, Float.self)
    default: unsupported(block)
    }
}

@inline(__always)
private func residualSum<V: BlockRun>(_ u: UnsafePointer<Float>, _ uMap: ChannelAffine, _ v: UnsafePointer<Float>,
                                      _ vMap: ChannelAffine?, _ y: UnsafeMutablePointer<Float>, _ positions: Int,
                                      _ rectify: Bool, _: V.Type) {
    let n = V.width, a = V(uMap.scale), b = V(uMap.shift)
    switch (vMap, rectify) {
    case let (vMap?, true):
        let c = V(vMap.scale), d = V(vMap.shift)
        for p in 0..<positions { let s = (V(u + p * n) * a + b) + (V(v + p * n) * c + d); s.kept(where: s).store(y + p * n) }
    case let (vMap?, false):
        let c = V(vMap.scale), d = V(vMap.shift)
        for p in 0..<positions { ((V(u + p * n) * a + b) + (V(v + p * n) * c + d)).store(y + p * n) }
    case (nil, true):
        for p in 0..<positions { let s = (V(u + p * n) * a + b) + V(v + p * n); s.kept(where: s).store(y + p * n) }
    case (nil, false):
        for p in 0..<positions { ((V(u + p * n) * a + b) + V(v + p * n)).store(y + p * n) }
    }
}

private func unsupported(_ block: Int) -> Never {
    preconditionFailure("channel blocks of \(block): only 8 and 16 are kept (ActivationLayout.preferredBlock)")
}

/// One run of a blocked plane as a vector (or a planar plane's value as a `Float`). The requirements are met by each vector type's own
/// operations (`SIMD16<Float>`'s are single instructions), which generic `SIMD` code would not
/// reach: it compiles to a loop over the lanes.
private protocol BlockRun {
    static var width: Int { get }
    static var zero: Self { get }
    /// The run at `p`.
    init(_ p: UnsafePointer<Float>)
    func store(_ p: UnsafeMutablePointer<Float>)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    /// Lane l of self where `r[l] > 0`, else 0 (a ReLU's mask, or a ReLU with `r` = self).
    func kept(where r: Self) -> Self
    subscript(l: Int) -> Float { get set }
}

extension SIMD16: BlockRun where Scalar == Float {
    @inline(__always) static var width: Int { 16 }
    @inline(__always) static var zero: SIMD16<Float> { SIMD16() }
    @inline(__always) init(_ p: UnsafePointer<Float>) { self = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: SIMD16<Float>.self) }
    @inline(__always) func kept(where r: SIMD16<Float>) -> SIMD16<Float> { replacing(with: 0, where: .!(r .> SIMD16())) }
}

extension SIMD8: BlockRun where Scalar == Float {
    @inline(__always) static var width: Int { 8 }
    @inline(__always) static var zero: SIMD8<Float> { SIMD8() }
    @inline(__always) init(_ p: UnsafePointer<Float>) { self = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: SIMD8<Float>.self) }
    @inline(__always) func kept(where r: SIMD8<Float>) -> SIMD8<Float> { replacing(with: 0, where: .!(r .> SIMD8())) }
}

/// A planar plane's value as a run of one channel.
extension Float: BlockRun {
    @inline(__always) static var width: Int { 1 }
    @inline(__always) static var zero: Float { 0 }
    @inline(__always) init(_ p: UnsafePointer<Float>) { self = p.pointee }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { p.pointee = self }
    @inline(__always) func kept(where r: Float) -> Float { r > 0 ? self : 0 }
    @inline(__always) subscript(l: Int) -> Float {
        get { self }
        set { self = newValue }
    }
}

/// Each channel's sum over a blocked plane in `laneSum`'s order: while whole groups of 16
/// positions remain, position p's run into float lane p mod 16; then the 16 lanes in double in
/// lane order, then the remaining positions one by one in double.
private struct PlanarOrderSum<V: BlockRun> {
    private var lanes = (V.zero, V.zero, V.zero, V.zero, V.zero, V.zero, V.zero, V.zero,
                         V.zero, V.zero, V.zero, V.zero, V.zero, V.zero, V.zero, V.zero)
    private var tail = [V]()

    @inline(__always)
    mutating func add(_ run: V, at p: Int, of positions: Int) {
        guard p < positions / 16 * 16 else { tail.append(run); return }
        withUnsafeMutableBytes(of: &lanes) { raw in
            let lane = raw.baseAddress!.assumingMemoryBound(to: V.self) + p % 16
            lane.pointee = lane.pointee + run
        }
    }

    @inline(__always)
    func finish(into total: UnsafeMutablePointer<Double>) {
        withUnsafeBytes(of: lanes) { raw in
            let lanes = raw.baseAddress!.assumingMemoryBound(to: V.self)
            for l in 0..<V.width {
                var sum = 0.0
                for k in 0..<16 { sum += Double(lanes[k][l]) }
                for run in tail { sum += Double(run[l]) }
                total[l] = sum
            }
        }
    }
}
