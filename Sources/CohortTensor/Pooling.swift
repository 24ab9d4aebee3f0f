/// Max pooling over `N C H W`, remembering where each maximum came from.
///
/// `y[n, c, oh, ow] = max over the window of x`; `argmax` keeps the offset of the winner
/// inside its input plane, so backward routes each gradient to exactly one input.
/// Ties go to the first element in row-major window order, as in PyTorch; padded
/// positions never win.
public func maxPoolForward(_ x: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                           into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
    let oh = g.outHeight, ow = g.outWidth
    for plane in 0..<(batch * g.channels) {
        let src = x + plane * g.inPlane
        let dst = y + plane * g.outPlane
        let arg = argmax + plane * g.outPlane
        for oy in 0..<oh {
            let y0 = oy * g.strideH - g.padH
            for ox in 0..<ow {
                let x0 = ox * g.strideW - g.padW
                var best = -Float.infinity
                var bestIndex = -1
                for ky in max(0, y0)..<min(g.height, y0 + g.kernelH) {
                    for kx in max(0, x0)..<min(g.width, x0 + g.kernelW) {
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

/// Sends each output gradient to the input that won its window; `dx` is overwritten.
public func maxPoolBackward(_ dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, batch: Int,
                            geometry g: ConvGeometry, into dx: UnsafeMutablePointer<Float>) {
    dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
    for plane in 0..<(batch * g.channels) {
        let d = dx + plane * g.inPlane
        let src = dy + plane * g.outPlane
        let arg = argmax + plane * g.outPlane
        for i in 0..<g.outPlane { d[Int(arg[i])] += src[i] }
    }
}
