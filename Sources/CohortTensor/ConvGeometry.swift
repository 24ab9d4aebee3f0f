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

    /// A square pooling window (stride the window unless given), padding at most half the window,
    /// so that every window holds at least one real input.
    public static func pooling(channels: Int, height: Int, width: Int, kernel: Int, stride: Int?, padding: Int)
        -> ConvGeometry {
        precondition(padding >= 0 && padding <= kernel / 2, "pooling padding must be at most half the window")
        let s = stride ?? kernel
        let g = ConvGeometry(channels: channels, height: height, width: width, kernelH: kernel, kernelW: kernel,
                             strideH: s, strideW: s, padH: padding, padW: padding)
        precondition(g.outHeight > 0 && g.outWidth > 0, "pooling window larger than its input")
        return g
    }

    /// The input rows and columns inside output `(row, column)`'s window, padding left out.
    public func window(row: Int, column: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let y0 = row * strideH - padH, x0 = column * strideW - padW
        return (max(0, y0)..<min(height, y0 + kernelH), max(0, x0)..<min(width, x0 + kernelW))
    }

    /// `floor((H + 2p - k) / s) + 1`, as PyTorch.
    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Inputs of one output value: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernelH * kernelW }
    public var outPlane: Int { outHeight * outWidth }
    public var inPlane: Int { height * width }
}
