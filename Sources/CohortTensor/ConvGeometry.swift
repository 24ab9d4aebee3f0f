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
    /// Inputs of one output value: one per (channel, kernel row, kernel column).
    public var patchSize: Int { channels * kernelH * kernelW }
    public var outPlane: Int { outHeight * outWidth }
    public var inPlane: Int { height * width }
}
