import CohortTensor

/// 2-D convolution over `N C H W` (PyTorch's `nn.Conv2d`, cross-correlation, no dilation or groups).
///
/// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s - p + u, j·s - p + v]`
/// with `W[O, C, KH, KW]`, `b[O]`. Initialisation: `W, b ~ U(-1/√(C·KH·KW), +…)`.
///
/// The whole batch is one GEMM: `im2col` unfolds `x` into `col[C·KH·KW, N·OH·OW]`,
/// then `Y[O, N·OH·OW] = W · col`, transposed into `N O OH OW`. Backward runs the same
/// path in reverse: `dW += dY · colᵀ`, `dcol = Wᵀ · dY`, `dx = col2im(dcol)`.
public final class Conv2D: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!, biasGrad: UnsafeMutablePointer<Float>!
    /// `col[C·KH·KW, N·OH·OW]` of the last forward, kept for dW.
    private let columns: FloatBuffer
    /// `[O, N·OH·OW]` scratch: the GEMM output in forward, dY in backward.
    private let channelMajor: FloatBuffer
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// dcol in backward.
    private let columnGrad: FloatBuffer

    public init(inChannels: Int, outChannels: Int, height: Int, width: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, maxBatch: Int) {
        geometry = ConvGeometry(channels: inChannels, height: height, width: width,
                                kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
                                padH: padding, padW: padding)
        precondition(geometry.outHeight > 0 && geometry.outWidth > 0, "convolution larger than its input")
        self.outChannels = outChannels
        inputShape = [inChannels, height, width]
        outputShape = [outChannels, geometry.outHeight, geometry.outWidth]
        columns = FloatBuffer(count: geometry.patchSize * maxBatch * geometry.outPlane)
        columnGrad = FloatBuffer(count: geometry.patchSize * maxBatch * geometry.outPlane)
        channelMajor = FloatBuffer(count: outChannels * maxBatch * geometry.outPlane)
        output = FloatBuffer(count: maxBatch * outputShape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
    }

    public var forwardFLOPsPerSample: Int { 2 * outChannels * geometry.patchSize * geometry.outPlane }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [outChannels, geometry.channels, geometry.kernelH, geometry.kernelW]),
         ParameterSpec("bias", [outChannels])]
    }

    private var weightCount: Int { outChannels * geometry.patchSize }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; bias = parameters + weightCount
        weightGrad = gradients; biasGrad = gradients + weightCount
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        let bound = 1 / Float(geometry.patchSize).squareRoot()
        fillUniform(weight, count: weightCount, bound: bound, rng: &rng)
        fillUniform(bias, count: outChannels, bound: bound, rng: &rng)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let plane = geometry.outPlane, cols = batch * plane
        im2col(x, batch: batch, geometry: geometry, into: columns.pointer)
        sgemm(m: outChannels, n: cols, k: geometry.patchSize, a: weight, b: columns.pointer, c: channelMajor.pointer)
        // [O, N, OH·OW] -> [N, O, OH·OW], adding the bias on the way.
        for o in 0..<outChannels {
            let b = bias[o]
            let src = channelMajor.pointer + o * cols
            for n in 0..<batch {
                let s = src + n * plane, d = output.pointer + (n * outChannels + o) * plane
                for i in 0..<plane { d[i] = s[i] + b }
            }
        }
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        let plane = geometry.outPlane, cols = batch * plane
        // [N, O, OH·OW] -> dY[O, N·OH·OW]; db[o] += Σ dY[o, :].
        for o in 0..<outChannels {
            let dst = channelMajor.pointer + o * cols
            var sum: Float = 0
            for n in 0..<batch {
                let s = dy + (n * outChannels + o) * plane, d = dst + n * plane
                for i in 0..<plane { d[i] = s[i]; sum += s[i] }
            }
            biasGrad[o] += sum
        }
        sgemm(transB: true, m: outChannels, n: geometry.patchSize, k: cols,
              a: channelMajor.pointer, b: columns.pointer, beta: 1, c: weightGrad)
        guard needsInputGradient else { return nil }
        sgemm(transA: true, m: geometry.patchSize, n: cols, k: outChannels,
              a: weight, b: channelMajor.pointer, c: columnGrad.pointer)
        col2im(columnGrad.pointer, batch: batch, geometry: geometry, into: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
