import CohortTensor

/// 2-D convolution over `N C H W` (PyTorch's `nn.Conv2d`, cross-correlation, no dilation or groups).
///
/// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s - p + u, j·s - p + v]`
/// with `W[O, C, KH, KW]`, `b[O]`. Initialisation: `W, b ~ U(-1/√(C·KH·KW), +…)`.
///
/// One sample at a time, so that its unfolded patches stay in the core's cache:
/// `im2col` unfolds sample n of `x` into `col[C·KH·KW, OH·OW]`, then `Y_n[O, OH·OW] = W · col + b`,
/// which is already sample n's block of the `N O OH OW` output. Backward unfolds the sample
/// again (cheaper than keeping the whole batch's patches and reading them back from memory)
/// and runs the same path in reverse: `dW += dY_n · colᵀ`, `dcol = Wᵀ · dY_n`, `dx_n = col2im(dcol)`.
public final class Conv2D: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!, biasGrad: UnsafeMutablePointer<Float>!
    /// One sample's `col[C·KH·KW, OH·OW]`, and `dcol` in backward.
    private let columns: FloatBuffer, columnGrad: FloatBuffer
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// The input of the last forward, unfolded again in backward.
    private var lastInput: UnsafePointer<Float>?
    /// `[OH·OW]` ones: `db += dY_n · 1` is then a matrix-vector product.
    private let ones: FloatBuffer

    public init(inChannels: Int, outChannels: Int, height: Int, width: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, maxBatch: Int) {
        geometry = ConvGeometry(channels: inChannels, height: height, width: width,
                                kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
                                padH: padding, padW: padding)
        precondition(geometry.outHeight > 0 && geometry.outWidth > 0, "convolution larger than its input")
        self.outChannels = outChannels
        inputShape = [inChannels, height, width]
        outputShape = [outChannels, geometry.outHeight, geometry.outWidth]
        columns = FloatBuffer(count: geometry.patchSize * geometry.outPlane)
        columnGrad = FloatBuffer(count: geometry.patchSize * geometry.outPlane)
        ones = FloatBuffer(count: geometry.outPlane)
        ones.pointer.update(repeating: 1, count: geometry.outPlane)
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
        let plane = geometry.outPlane, inSize = inputShape.elementCount, outSize = outputShape.elementCount
        let K = geometry.patchSize, col = columns.pointer
        lastInput = x
        for n in 0..<batch {
            im2col(x + n * inSize, batch: 1, geometry: geometry, into: col)
            let y = output.pointer + n * outSize
            for o in 0..<outChannels { (y + o * plane).update(repeating: bias[o], count: plane) }
            sgemm(m: outChannels, n: plane, k: K, a: weight, b: col, beta: 1, c: y)
        }
        return UnsafePointer(output.pointer)
    }

    /// Must follow the forward of the same batch: its input is read again.
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = lastInput else { preconditionFailure("Conv2D.backward before forward") }
        let plane = geometry.outPlane, inSize = inputShape.elementCount, outSize = outputShape.elementCount
        let K = geometry.patchSize, col = columns.pointer
        for n in 0..<batch {
            let dyn = dy + n * outSize
            // db[o] += Σ_i dY_n[o, i].
            sgemm(m: outChannels, n: 1, k: plane, a: dyn, b: ones.pointer, beta: 1, c: biasGrad)
            im2col(x + n * inSize, batch: 1, geometry: geometry, into: col)
            sgemm(transB: true, m: outChannels, n: K, k: plane, a: dyn, b: col, beta: 1, c: weightGrad)
            if needsInputGradient { transposeSample(dyn, into: inputGrad.pointer + n * inSize) }
        }
        return needsInputGradient ? UnsafePointer(inputGrad.pointer) : nil
    }

    /// The transposed convolution `dx = Wᵀ ⋆ dy` alone, parameter gradients untouched: the
    /// deconvnet's filtering step (Zeiler & Fergus), and the input gradient of backward.
    /// `dy[N, O, OH, OW]` -> `[N, C, H, W]`.
    public func transposed(_ dy: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let inSize = inputShape.elementCount, outSize = outputShape.elementCount
        for n in 0..<batch { transposeSample(dy + n * outSize, into: inputGrad.pointer + n * inSize) }
        return UnsafePointer(inputGrad.pointer)
    }

    /// One sample: `dcol = Wᵀ · dY_n`, `dx_n = col2im(dcol)`.
    private func transposeSample(_ dyn: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        sgemm(transA: true, m: geometry.patchSize, n: geometry.outPlane, k: outChannels, a: weight, b: dyn,
              c: columnGrad.pointer)
        col2im(columnGrad.pointer, batch: 1, geometry: geometry, into: dx)
    }
}
