import CDNNL

/// A 2-D convolution over a fixed batch, run by oneDNN's JIT kernels (Debian's libdnnl-dev):
/// forward, backward weights and backward data on Cohort's layouts: x and y (and dx, dy)
/// `N C H W` or channel-blocked (`ActivationLayout`), W `O C KH KW` (PyTorch's), b `O`.
///
/// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s - p + u, j·s - p + v]`
/// (without `b` when built `biased: false`, as PyTorch's `bias=False` before a batch norm).
///
/// The kernels work on the image directly (no unfolded patch matrix) in blocked layouts
/// that keep 16 channels in one AVX-512 register (`nChw16c` activations, `OIhw16i16o`
/// weights); each tensor whose layout differs from the kernel's is reordered inside (for
/// planar feature maps of 16-64 channels, about a quarter of the convolutions' time; a
/// network of convolutions and batch norms keeps its maps blocked instead), where
/// im2col + sgemm would spend as long unfolding, packing and folding back as on the product
/// (measurements: docs/performance.md).
///
/// With `precision` bf16 the kernels read x, W and dy rounded to bfloat16 (the reorders into
/// their layouts round them) and accumulate in float; y, dW, db and dx stay float, so master
/// weights, their gradients and everything between the convolutions are float, as under
/// PyTorch's autocast. AVX-512 BF16 CPUs run this with the `vdpbf16ps` dot products (twice
/// the multiply-adds of float per instruction); other AVX-512 CPUs in oneDNN's emulation.
///
/// One instance belongs to one layer of one replica and is used by one thread at a time.
/// Results are deterministic: the same batch and thread count give the same bits.
public final class ConvolutionKernels {
    /// oneDNN's OpenMP threads for every call, fixed when the primitives were built
    /// (their work split depends on it).
    private let threads: Int
    private let stream: dnnl_stream_t

    /// The forward's primitive descriptor: the hint the backward passes are built from.
    private let forwardPD: dnnl_primitive_desc_t
    private let forwardPass: Primitive
    private let source: Operand, forwardWeights: Operand, destination: Operand
    /// `nil` when built without a bias.
    private let bias: Operand?

    private let weightsPass: Primitive
    /// Backward weights reads x in the forward's layout when the two agree, else its own copy.
    private let weightsSource: Operand?
    private let weightsOutputGradient: Operand
    private let weightGradient: Operand
    private let biasGradient: Operand?

    /// Backward data, built on first use (the first layer never needs it in training).
    private var dataPass: BackwardData?

    private struct BackwardData {
        let primitive: Primitive
        let weights: Operand
        /// `nil` when it reads dy in backward weights' layout, already converted.
        let outputGradient: Operand?
        let inputGradient: Operand
    }

    private let descriptors: Descriptors

    /// The layouts and strides the primitives are built from: the caller's (float),
    /// and "any" for the kernels to choose their own: the inputs x, W, dy in the kernels'
    /// precision, the outputs y, dx, dW in float.
    private struct Descriptors {
        var x, weights, bias, y: dnnl_memory_desc_t
        var anyX, anyWeights, anyY, anyDX, anyDW, anyDY: dnnl_memory_desc_t
        let strides: [Int64], padding: [Int64]
    }

    /// `rectified`: the forward writes `max(y, 0)` (a ReLU fused into the kernel's stores).
    /// `biased`: whether there is a bias `b`. `precision`: what the kernels multiply (see above).
    /// `inputLayout`, `outputLayout`: how the caller's x and dx, and y and dy, lie.
    public init(geometry g: ConvGeometry, outChannels: Int, batch: Int, rectified: Bool = false, biased: Bool = true,
                precision: FloatFormat = .fp32, inputLayout: ActivationLayout = .planar,
                outputLayout: ActivationLayout = .planar) {
        threads = KernelThreads.openMPThreads
        KernelThreads.applyOpenMP(threads)
        var s: dnnl_stream_t?
        dnnl(dnnl_stream_create(&s, cpuEngine, dnnl_stream_default_flags.rawValue), "creating a stream")
        stream = s!

        let xDims = [batch, g.channels, g.height, g.width], yDims = [batch, outChannels, g.outHeight, g.outWidth]
        let weightDims = [outChannels, g.channels, g.kernelH, g.kernelW]
        let any = dnnl_format_tag_any
        var d = Descriptors(x: memoryDesc(xDims, inputLayout.tag), weights: memoryDesc(weightDims, dnnl_oihw),
                            bias: memoryDesc([outChannels], dnnl_x), y: memoryDesc(yDims, outputLayout.tag),
                            anyX: memoryDesc(xDims, any, precision), anyWeights: memoryDesc(weightDims, any, precision),
                            anyY: memoryDesc(yDims, any), anyDX: memoryDesc(xDims, any), anyDW: memoryDesc(weightDims, any),
                            anyDY: memoryDesc(yDims, any, precision),
                            strides: [Int64(g.strideH), Int64(g.strideW)], padding: [Int64(g.padH), Int64(g.padW)])

        var forward = dnnl_convolution_desc_t()
        withBias(&d.bias, biased) { bias in
            dnnl(dnnl_convolution_forward_desc_init(&forward, dnnl_forward_training, dnnl_convolution_direct,
                                                    &d.anyX, &d.anyWeights, bias, &d.anyY, d.strides, d.padding,
                                                    d.padding),
                 "describing the forward convolution")
        }
        forwardPD = primitiveDesc(&forward, hint: nil, rectified: rectified)
        forwardPass = Primitive(forwardPD)
        source = Operand(plain: d.x, native: forwardPD.md(dnnl_query_src_md), direction: .toNative)
        forwardWeights = Operand(plain: d.weights, native: forwardPD.md(dnnl_query_weights_md), direction: .toNative)
        bias = biased ? Operand(plain: d.bias, native: forwardPD.md(dnnl_query_weights_md, 1), direction: .toNative) : nil
        destination = Operand(plain: d.y, native: forwardPD.md(dnnl_query_dst_md), direction: .toPlain)

        var backwardWeights = dnnl_convolution_desc_t()
        withBias(&d.bias, biased) { bias in
            dnnl(dnnl_convolution_backward_weights_desc_init(&backwardWeights, dnnl_convolution_direct, &d.anyX,
                                                             &d.anyDW, bias, &d.anyDY, d.strides, d.padding,
                                                             d.padding),
                 "describing the backward-weights convolution")
        }
        let weightsPD = primitiveDesc(&backwardWeights, hint: forwardPD)
        defer { dnnl_primitive_desc_destroy(weightsPD) }
        weightsPass = Primitive(weightsPD)
        weightsSource = sameLayout(weightsPD.md(dnnl_query_src_md), source.nativeDesc)
            ? nil : Operand(plain: d.x, native: weightsPD.md(dnnl_query_src_md), direction: .toNative)
        weightsOutputGradient = Operand(plain: d.y, native: weightsPD.md(dnnl_query_diff_dst_md), direction: .toNative)
        weightGradient = Operand(plain: d.weights, native: weightsPD.md(dnnl_query_diff_weights_md),
                                 direction: .toPlain, accumulate: true)
        biasGradient = biased ? Operand(plain: d.bias, native: weightsPD.md(dnnl_query_diff_weights_md, 1),
                                        direction: .toPlain, accumulate: true) : nil
        descriptors = d
    }

    deinit {
        dnnl_primitive_desc_destroy(forwardPD)
        dnnl_stream_destroy(stream)
    }

    /// `y = conv(x, W) + b` (or its `max(·, 0)` when built `rectified`), all `batch` samples;
    /// `b` is `nil` exactly when built without a bias.
    public func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>) {
        precondition((b == nil) == (bias == nil), "a bias given to a convolution built without one, or none given")
        KernelThreads.applyOpenMP(threads)
        forwardPass.run((cohort_dnnl_arg_src, source.load(x, stream)),
                        (cohort_dnnl_arg_weights, forwardWeights.load(weight, stream)),
                        (cohort_dnnl_arg_dst, destination.target(y)),
                        bias.map { (cohort_dnnl_arg_bias, $0.load(b!, stream)) }, on: stream)
        destination.store(stream)
    }

    /// `dW += Σ_n dy_n ⋆ x_n`, `db[o] += Σ_{n,i,j} dy[n, o, i, j]` (`db` `nil` without a bias).
    /// Must follow the forward of the same `x`, whose converted copy it reads.
    public func backwardWeights(x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                weightGradient dW: UnsafeMutablePointer<Float>,
                                biasGradient db: UnsafeMutablePointer<Float>?) {
        precondition((db == nil) == (biasGradient == nil), "a bias gradient for a convolution without a bias, or none")
        KernelThreads.applyOpenMP(threads)
        let xMemory = weightsSource?.load(x, stream) ?? source.native
        weightsPass.run((cohort_dnnl_arg_src, xMemory),
                        (cohort_dnnl_arg_diff_dst, weightsOutputGradient.load(dy, stream)),
                        (cohort_dnnl_arg_diff_weights, weightGradient.target(dW)),
                        biasGradient.map { (cohort_dnnl_arg_diff_bias, $0.target(db!)) }, on: stream)
        weightGradient.store(stream)
        biasGradient?.store(stream)
    }

    /// The transposed convolution `dx = Wᵀ ⋆ dy` (overwrites dx). Right after `backwardWeights`
    /// of the same `dy`, `reuseOutputGradient` skips converting dy a second time.
    public func backwardData(dy: UnsafePointer<Float>, weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                             reuseOutputGradient: Bool = false) {
        KernelThreads.applyOpenMP(threads)
        let pass = dataPass ?? makeBackwardData()
        dataPass = pass
        let dyMemory = pass.outputGradient?.load(dy, stream)
            ?? (reuseOutputGradient ? weightsOutputGradient.native : weightsOutputGradient.load(dy, stream))
        pass.primitive.run((cohort_dnnl_arg_diff_dst, dyMemory),
                           (cohort_dnnl_arg_weights, pass.weights.load(weight, stream)),
                           (cohort_dnnl_arg_diff_src, pass.inputGradient.target(dx)), on: stream)
        pass.inputGradient.store(stream)
    }

    private func makeBackwardData() -> BackwardData {
        var d = descriptors
        var data = dnnl_convolution_desc_t()
        dnnl(dnnl_convolution_backward_data_desc_init(&data, dnnl_convolution_direct, &d.anyDX, &d.anyWeights, &d.anyDY,
                                                      d.strides, d.padding, d.padding),
             "describing the backward-data convolution")
        let pd = primitiveDesc(&data, hint: forwardPD)
        defer { dnnl_primitive_desc_destroy(pd) }
        let dataY = pd.md(dnnl_query_diff_dst_md)
        let weights = Operand(plain: d.weights, native: pd.md(dnnl_query_weights_md), direction: .toNative)
        let outputGradient = sameLayout(dataY, weightsOutputGradient.nativeDesc)
            ? nil : Operand(plain: d.y, native: dataY, direction: .toNative)
        let inputGradient = Operand(plain: d.x, native: pd.md(dnnl_query_diff_src_md), direction: .toPlain)
        return BackwardData(primitive: Primitive(pd), weights: weights, outputGradient: outputGradient,
                            inputGradient: inputGradient)
    }
}

/// oneDNN's descriptors take the bias's as a pointer that is null for "no bias".
private func withBias(_ desc: inout dnnl_memory_desc_t, _ biased: Bool, _ body: (UnsafePointer<dnnl_memory_desc_t>?) -> Void) {
    if biased { withUnsafePointer(to: &desc) { body($0) } } else { body(nil) }
}
