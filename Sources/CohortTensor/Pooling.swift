/// Max pooling over `N C H W`, remembering where each maximum came from.
///
/// `y[n, c, oh, ow] = max over the window of x`; `argmax` keeps the offset of the winner
/// inside its input plane, so backward routes each gradient to exactly one input.
/// Ties go to the first element in row-major window order, as in PyTorch; padded
/// positions never win.
public func maxPoolForward(_ x: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                           into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
    let oh = g.outHeight, ow = g.outWidth
    if g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0 {
        maxPool2x2(x, planes: batch * g.channels, geometry: g, into: y, argmax: argmax)
        return
    }
    for plane in 0..<(batch * g.channels) {
        let src = x + plane * g.inPlane
        let dst = y + plane * g.outPlane
        let arg = argmax + plane * g.outPlane
        for oy in 0..<oh {
            for ox in 0..<ow {
                let (rows, columns) = g.window(row: oy, column: ox)
                var best = -Float.infinity
                var bestIndex = -1
                for ky in rows {
                    for kx in columns {
                        let v = src[ky * g.width + kx]
                        if v > best || bestIndex < 0 || v.isNaN { best = v; bestIndex = ky * g.width + kx }
                    }
                }
                dst[oy * ow + ox] = best
                arg[oy * ow + ox] = Int32(bestIndex)
            }
        }
    }
}

/// The CNN's 2×2, stride-2 pooling without the general window loops; same results
/// and tie rule (first in row-major window order; NaN wins).
private func maxPool2x2(_ x: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
                        into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
    let oh = g.outHeight, ow = g.outWidth, w = g.width
    for plane in 0..<planes {
        let src = x + plane * g.inPlane
        let dst = y + plane * g.outPlane
        let arg = argmax + plane * g.outPlane
        for oy in 0..<oh {
            let top = src + 2 * oy * w, bottom = top + w
            for ox in 0..<ow {
                let i = 2 * ox
                var best = top[i], at = 2 * oy * w + i
                if top[i + 1] > best || top[i + 1].isNaN { best = top[i + 1]; at = 2 * oy * w + i + 1 }
                if bottom[i] > best || bottom[i].isNaN { best = bottom[i]; at = (2 * oy + 1) * w + i }
                if bottom[i + 1] > best || bottom[i + 1].isNaN { best = bottom[i + 1]; at = (2 * oy + 1) * w + i + 1 }
                dst[oy * ow + ox] = best
                arg[oy * ow + ox] = Int32(at)
            }
        }
    }
}

/// Sends each output gradient to the input that won its window; `dx` is overwritten.
/// With `reluOutput` (the pooling's own output `y`, when its input came from a ReLU), the
/// ReLU's backward is applied on the way: a winner gets `dy · [y > 0]`, which is the ReLU
/// mask at that input, and every other input gets 0 from both.
public func maxPoolBackward(_ dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, batch: Int,
                            geometry g: ConvGeometry, into dx: UnsafeMutablePointer<Float>,
                            reluOutput: UnsafePointer<Float>? = nil) {
    if g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0
        && g.height % 2 == 0 && g.width % 2 == 0 {
        maxPool2x2Backward(dy, argmax: argmax, planes: batch * g.channels, geometry: g, into: dx, reluOutput: reluOutput)
        return
    }
    dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
    for plane in 0..<(batch * g.channels) {
        let d = dx + plane * g.inPlane
        let src = dy + plane * g.outPlane
        let arg = argmax + plane * g.outPlane
        if let y = reluOutput.map({ $0 + plane * g.outPlane }) {
            for i in 0..<g.outPlane where y[i] > 0 { d[Int(arg[i])] += src[i] }
        } else {
            for i in 0..<g.outPlane { d[Int(arg[i])] += src[i] }
        }
    }
}

/// Four windows' values, each repeated for its window's two columns: `[p0, p0, p1, p1, ..., p3, p3]`.
@inline(__always)
private func spreadOverColumns<T: SIMDScalar>(_ p: UnsafePointer<T>) -> SIMD8<T> {
    SIMD8(p[0], p[0], p[1], p[1], p[2], p[2], p[3], p[3])
}

/// 2×2 windows that tile the input exactly: each input is written once (its window's
/// gradient or 0), so `dx` needs no clearing first. Eight inputs of a row at a time (four
/// windows): each window's gradient and winner are spread over its two columns and compared
/// with the inputs' own indices, selects instead of a branch on where the winner sits (which a
/// CPU cannot predict: a branch per window was most of this pass's time).
private func maxPool2x2Backward(_ dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int,
                                geometry g: ConvGeometry, into dx: UnsafeMutablePointer<Float>,
                                reluOutput: UnsafePointer<Float>?) {
    let oh = g.outHeight, ow = g.outWidth, w = g.width
    let columns = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    for plane in 0..<planes {
        let d = dx + plane * g.inPlane
        for oy in 0..<oh {
            let row = plane * g.outPlane + oy * ow
            let src = dy + row, arg = argmax + row, y = reluOutput.map { $0 + row }
            let top = 2 * oy * w, bottom = top + w
            var x = 0
            while x + 8 <= w {
                let o = x >> 1
                var grad = spreadOverColumns(src + o)
                if let y { grad.replace(with: 0, where: spreadOverColumns(y + o) .<= 0) }
                let winner = spreadOverColumns(arg + o)
                let topIndex = columns &+ Int32(top + x), bottomIndex = columns &+ Int32(bottom + x)
                UnsafeMutableRawPointer(d + top + x).storeBytes(of: grad.replacing(with: 0, where: winner .!= topIndex),
                                                                as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(d + bottom + x).storeBytes(of: grad.replacing(with: 0, where: winner .!= bottomIndex),
                                                                   as: SIMD8<Float>.self)
                x += 8
            }
            while x < w {
                let o = x >> 1, winner = Int(arg[o])
                let grad = y.map { $0[o] > 0 ? src[o] : 0 } ?? src[o]
                d[top + x] = winner == top + x ? grad : 0
                d[bottom + x] = winner == bottom + x ? grad : 0
                x += 1
            }
        }
    }
}

/// Average pooling over `N C H W`: `y = (1/(kH·kW)) Σ_window x`, padded positions counted as
/// zeros (PyTorch's `avg_pool2d` with `count_include_pad=True`, its default).
public func averagePoolForward(_ x: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                               into y: UnsafeMutablePointer<Float>) {
    let scale = 1 / Float(g.kernelH * g.kernelW)
    for plane in 0..<(batch * g.channels) {
        let src = x + plane * g.inPlane, dst = y + plane * g.outPlane
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let (rows, columns) = g.window(row: oy, column: ox)
                var sum: Float = 0
                for ky in rows { for kx in columns { sum += src[ky * g.width + kx] } }
                dst[oy * g.outWidth + ox] = sum * scale
            }
        }
    }
}

/// Backward of `averagePoolForward`: each input gets `dy/(kH·kW)` from every window that holds
/// it; `dx` is overwritten.
public func averagePoolBackward(_ dy: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                                into dx: UnsafeMutablePointer<Float>) {
    let scale = 1 / Float(g.kernelH * g.kernelW)
    dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
    for plane in 0..<(batch * g.channels) {
        let src = dy + plane * g.outPlane, d = dx + plane * g.inPlane
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let (rows, columns) = g.window(row: oy, column: ox)
                let share = src[oy * g.outWidth + ox] * scale
                for ky in rows { for kx in columns { d[ky * g.width + kx] += share } }
            }
        }
    }
}
