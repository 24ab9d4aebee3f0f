/// Geometry of a 2-D convolution or pooling window over an `N C H W` input.
public struct ConvGeometry: Equatable, Sendable {
    public let channels: Int, height: Int, width: Int
    public let kernelH: Int, kernelW: Int
    public let strideH: Int, strideW: Int
    public let padH: Int, padW: Int

    public init(channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.padH = padH; self.padW = padW
    }

    /// `floor((H + 2p - k) / s) + 1`, as PyTorch.
    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernelH * kernelW }
    public var outPlane: Int { outHeight * outWidth }
    public var inPlane: Int { height * width }
}

/// Unfolds a batch of images into a column matrix `col[C*KH*KW, N*OH*OW]`:
/// `col[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*s - p + kh, ow*s - p + kw]`, zero outside the image.
/// With it, a convolution over the whole batch is one GEMM.
public func im2col(_ x: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                   into col: UnsafeMutablePointer<Float>) {
    let oh = g.outHeight, ow = g.outWidth, columns = batch * g.outPlane
    for c in 0..<g.channels {
        for kh in 0..<g.kernelH {
            for kw in 0..<g.kernelW {
                let row = col + ((c * g.kernelH + kh) * g.kernelW + kw) * columns
                let (first, end) = g.validOutputColumns(kernelColumn: kw)
                if let shift = g.planeShift(kernelRow: kh, kernelColumn: kw) {
                    for n in 0..<batch {
                        im2colShifted(x + (n * g.channels + c) * g.inPlane, into: row + n * g.outPlane,
                                      geometry: g, shift: shift, first: first, end: end)
                    }
                    continue
                }
                for n in 0..<batch {
                    let plane = x + (n * g.channels + c) * g.inPlane
                    let out = row + n * g.outPlane
                    for y in 0..<oh {
                        let iy = y * g.strideH - g.padH + kh
                        let dst = out + y * ow
                        guard iy >= 0 && iy < g.height, first < end else {
                            dst.update(repeating: 0, count: ow)
                            continue
                        }
                        let src = plane + iy * g.width - g.padW + kw
                        if first > 0 { dst.update(repeating: 0, count: first) }
                        if g.strideW == 1 {
                            (dst + first).update(from: src + first, count: end - first)
                        } else {
                            for xo in first..<end { dst[xo] = src[xo * g.strideW] }
                        }
                        if end < ow { (dst + end).update(repeating: 0, count: ow - end) }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back onto the input pixel it came from.
/// `dx` is overwritten (zeroed first). `col` is scratch: entries that read padding may be zeroed.
public func col2im(_ col: UnsafePointer<Float>, batch: Int, geometry g: ConvGeometry,
                   into dx: UnsafeMutablePointer<Float>) {
    dx.update(repeating: 0, count: batch * g.channels * g.inPlane)
    let oh = g.outHeight, ow = g.outWidth, columns = batch * g.outPlane
    for c in 0..<g.channels {
        for kh in 0..<g.kernelH {
            for kw in 0..<g.kernelW {
                let row = col + ((c * g.kernelH + kh) * g.kernelW + kw) * columns
                let (first, end) = g.validOutputColumns(kernelColumn: kw)
                guard first < end else { continue }
                if let shift = g.planeShift(kernelRow: kh, kernelColumn: kw) {
                    for n in 0..<batch {
                        col2imShifted(UnsafeMutablePointer(mutating: row + n * g.outPlane),
                                      into: dx + (n * g.channels + c) * g.inPlane,
                                      geometry: g, shift: shift, first: first, end: end)
                    }
                    continue
                }
                for n in 0..<batch {
                    let plane = dx + (n * g.channels + c) * g.inPlane
                    let src = row + n * g.outPlane
                    for y in 0..<oh {
                        let iy = y * g.strideH - g.padH + kh
                        if iy < 0 || iy >= g.height { continue }
                        let dst = plane + iy * g.width - g.padW + kw
                        let s = src + y * ow
                        for xo in first..<end { dst[xo * g.strideW] += s[xo] }
                    }
                }
            }
        }
    }
}

// "Same" convolutions with stride 1 (the CNN's 5×5, padding 2): output and input planes are
// both `H×W`, so for one kernel offset (kh, kw) the column row is the input plane shifted by
// `(kh - p)·W + (kw - p)` floats, except where that reads padding. One long copy replaces a
// short one per output row; the entries that read padding are then set to 0.

/// Column row of one sample and kernel offset, `dst[OH·OW]`, from its input plane `src[H·W]`.
private func im2colShifted(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                           geometry g: ConvGeometry, shift: PlaneShift, first: Int, end: Int) {
    let ow = g.outWidth
    guard shift.rows.lowerBound < shift.rows.upperBound, first < end else {
        dst.update(repeating: 0, count: g.outPlane)
        return
    }
    // From the first valid entry to the last; every read lies between two pixels of the plane.
    let start = shift.rows.lowerBound * ow + first, stop = (shift.rows.upperBound - 1) * ow + end
    (dst + start).update(from: src + (start + shift.offset), count: stop - start)
    dst.update(repeating: 0, count: start)
    (dst + stop).update(repeating: 0, count: g.outPlane - stop)
    for y in shift.rows {
        let line = dst + y * ow
        for xo in 0..<first { line[xo] = 0 }
        for xo in end..<ow { line[xo] = 0 }
    }
}

/// Adds one sample's column row `src[OH·OW]` back onto its gradient plane `dst[H·W]`.
private func col2imShifted(_ src: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                           geometry g: ConvGeometry, shift: PlaneShift, first: Int, end: Int) {
    let ow = g.outWidth
    guard shift.rows.lowerBound < shift.rows.upperBound else { return }
    // Entries that read padding carry no gradient to any pixel: clear them, then add in one pass.
    for y in shift.rows {
        let line = src + y * ow
        for xo in 0..<first { line[xo] = 0 }
        for xo in end..<ow { line[xo] = 0 }
    }
    let start = shift.rows.lowerBound * ow + first, stop = (shift.rows.upperBound - 1) * ow + end
    let out = dst + shift.offset
    for i in start..<stop { out[i] += src[i] }
}

/// For a "same", stride-1 convolution: the output rows whose input row is inside the image,
/// and the offset from an output index to its input index.
struct PlaneShift {
    let rows: Range<Int>
    let offset: Int
}

extension ConvGeometry {
    @inline(__always)
    func planeShift(kernelRow kh: Int, kernelColumn kw: Int) -> PlaneShift? {
        guard strideH == 1, strideW == 1, outHeight == height, outWidth == width else { return nil }
        // iy = y - padH + kh inside [0, H).
        let low = max(0, padH - kh), high = min(outHeight, height + padH - kh)
        return PlaneShift(rows: low..<max(low, high), offset: (kh - padH) * width + (kw - padW))
    }

    /// The output columns `first..<end` whose input column `xo·s - p + kw` lies inside
    /// the image: the rest read padding.
    @inline(__always)
    func validOutputColumns(kernelColumn kw: Int) -> (first: Int, end: Int) {
        // xo·s - p + kw >= 0  <=>  xo >= ceil((p - kw) / s);   xo·s - p + kw < W  <=>  xo <= (W - 1 + p - kw) / s
        let low = padW - kw
        let first = low <= 0 ? 0 : (low + strideW - 1) / strideW
        let highNumerator = width - 1 + padW - kw
        let end = highNumerator < 0 ? 0 : min(outWidth, highNumerator / strideW + 1)
        return (min(first, outWidth), max(end, 0))
    }
}
