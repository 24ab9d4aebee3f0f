import CohortTensor

/// 2-D convolution over `N C H W` (PyTorch's `nn.Conv2d`, cross-correlation, no dilation or groups).
///
/// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s - p + u, j·s - p + v]`
/// with `W[O, C, KH, KW]`, `b[O]` (no `b` when `bias` is false: PyTorch's `bias=False`, as before
/// a batch norm, whose shift takes its place). Initialisation: `W, b ~ U(-1/√(C·KH·KW), +…)`.
///
/// The arithmetic is `ConvolutionKernels`' (oneDNN's direct kernels), one set per batch
/// size seen (training uses one; evaluation's last, shorter chunk another).
public final class Conv2D: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    /// Whether the layer adds a bias `b[O]`.
    public let hasBias: Bool
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, weightGrad: UnsafeMutablePointer<Float>!
    /// `nil` without a bias.
    private var bias: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// The input of the last forward, read again by backward.
    private var lastInput: UnsafePointer<Float>?
    private var kernelsByBatch: [Int: ConvolutionKernels] = [:]
    /// Set by `Network` when a ReLU follows: the forward writes `max(y, 0)` itself, saving the
    /// ReLU's pass over the whole output, and backward receives the gradient the ReLU masked.
    var rectifiesOutput = false
    /// How x and dx, and y and dy, lie; set by `Network` before the first pass.
    var inputLayout = ActivationLayout.planar, outputLayout = ActivationLayout.planar
    /// What the kernels multiply (`ConvolutionKernels`); parameters and gradients stay float.
    public let precision: FloatFormat

    /// `precision`: what the kernels should multiply; see `kernelPrecision` for layers on few channels.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true, maxBatch: Int,
                precision: FloatFormat = .fp32) {
        hasBias = bias
        self.precision = Self.kernelPrecision(precision, inChannels: inChannels)
        geometry = ConvGeometry(channels: inChannels, height: height, width: width,
                                kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
                                padH: padding, padW: padding)
        precondition(geometry.outHeight > 0 && geometry.outWidth > 0, "convolution larger than its input")
        self.outChannels = outChannels
        inputShape = [inChannels, height, width]
        outputShape = [outChannels, geometry.outHeight, geometry.outWidth]
        output = FloatBuffer(count: maxBatch * outputShape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
    }

    /// Input channels below which a convolution multiplies in fp32 even when bf16 is asked for.
    /// oneDNN's bf16 kernels take input channels in pairs within blocks of 16, so on an image's
    /// 3 channels most of each dot product is padding: the CNN's first layer ran 1.6-2.2 times
    /// slower in bf16 than in fp32, against 1.4 for the second (docs/performance.md).
    public static let bf16MinimumInputChannels = 16

    public static func kernelPrecision(_ requested: FloatFormat, inChannels: Int) -> FloatFormat {
        inChannels < bf16MinimumInputChannels ? .fp32 : requested
    }

    public var forwardFLOPsPerSample: Int { 2 * outChannels * geometry.patchSize * geometry.outPlane }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [outChannels, geometry.channels, geometry.kernelH, geometry.kernelW])]
            + (hasBias ? [ParameterSpec("bias", [outChannels])] : [])
    }

    private var weightCount: Int { outChannels * geometry.patchSize }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; weightGrad = gradients
        if hasBias { bias = parameters + weightCount; biasGrad = gradients + weightCount }
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        let bound = 1 / Float(geometry.patchSize).squareRoot()
        fillUniform(weight, count: weightCount, bound: bound, rng: &rng)
        if let bias { fillUniform(bias, count: outChannels, bound: bound, rng: &rng) }
    }

    private func kernels(batch: Int) -> ConvolutionKernels {
        if let k = kernelsByBatch[batch] { return k }
        let k = ConvolutionKernels(geometry: geometry, outChannels: outChannels, batch: batch,
                                   rectified: rectifiesOutput, biased: hasBias, precision: precision,
                                   inputLayout: inputLayout, outputLayout: outputLayout)
        kernelsByBatch[batch] = k
        return k
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        lastInput = x
        kernels(batch: batch).forward(x: x, weight: weight, bias: bias, y: output.pointer)
        return UnsafePointer(output.pointer)
    }

    /// Must follow the forward of the same batch: its input is read again.
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = lastInput else { preconditionFailure("Conv2D.backward before forward") }
        let k = kernels(batch: batch)
        k.backwardWeights(x: x, dy: dy, weightGradient: weightGrad, biasGradient: biasGrad)
        guard needsInputGradient else { return nil }
        k.backwardData(dy: dy, weight: weight, dx: inputGrad.pointer, reuseOutputGradient: true)
        return UnsafePointer(inputGrad.pointer)
    }

    /// The transposed convolution `dx = Wᵀ ⋆ dy` alone, parameter gradients untouched: the
    /// deconvnet's filtering step (Zeiler & Fergus, on planar maps), and the input gradient of backward.
    /// `dy[N, O, OH, OW]` -> `[N, C, H, W]`.
    public func transposed(_ dy: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        kernels(batch: batch).backwardData(dy: dy, weight: weight, dx: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
