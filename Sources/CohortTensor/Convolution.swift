import CBLAS
import CDNNL
import Glibc

/// A 2-D convolution over a fixed batch, run by oneDNN's JIT kernels (Debian's libdnnl-dev):
/// forward, backward weights and backward data on Cohort's plain layouts, x and y
/// `N C H W`, W `O C KH KW` (PyTorch's), b `O`.
///
/// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i·s - p + u, j·s - p + v]`
///
/// The kernels work on the image directly (no unfolded patch matrix) in blocked layouts
/// that keep 16 channels in one AVX-512 register (`nChw16c` activations, `OIhw16i16o`
/// weights); each tensor is reordered between Cohort's layout and the kernel's inside
/// (a few percent of the convolution's time). Against im2col + OpenBLAS sgemm, which
/// spent as long unfolding, packing and folding back (col2im) as the CNN's other layers
/// together, `cohort bench --model cnn` went from 3072 to 4535 samples/s (272 to 402
/// effective GFLOP/s) on a 2-core AVX-512 machine.
///
/// One instance belongs to one layer of one replica and is used by one thread at a time.
/// Results are deterministic: the same batch and thread count give the same bits.
public final class ConvolutionKernels {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let batch: Int
    /// oneDNN's OpenMP threads for every call, fixed when the primitives were built
    /// (their work split depends on it).
    private let threads: Int
    private let stream: dnnl_stream_t

    private let forwardPass: Primitive
    private let source: Operand, forwardWeights: Operand, bias: Operand, destination: Operand

    private let weightsPass: Primitive
    /// Backward weights reads x in the forward's layout when the two agree, else its own copy.
    private let weightsSource: Operand?
    private let weightsOutputGradient: Operand
    private let weightGradient: Operand, biasGradient: Operand

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

    /// The layouts and strides the primitives are built from: Cohort's plain ones, and
    /// "any" for the kernels to choose their own.
    private struct Descriptors {
        var x, weights, bias, y: dnnl_memory_desc_t
        var anyX, anyWeights, anyY: dnnl_memory_desc_t
        let strides: [Int64], padding: [Int64]
        var forwardPD: dnnl_primitive_desc_t?
    }

    /// `rectified`: the forward writes `max(y, 0)` (a ReLU fused into the kernel's stores).
    public init(geometry g: ConvGeometry, outChannels: Int, batch: Int, rectified: Bool = false) {
        self.geometry = g
        self.outChannels = outChannels
        self.batch = batch
        threads = KernelThreads.openMPThreads
        KernelThreads.applyOpenMP(threads)
        var s: dnnl_stream_t?
        dnnl(dnnl_stream_create(&s, cpuEngine, dnnl_stream_default_flags.rawValue), "creating a stream")
        stream = s!

        let xDims = [batch, g.channels, g.height, g.width], yDims = [batch, outChannels, g.outHeight, g.outWidth]
        let weightDims = [outChannels, g.channels, g.kernelH, g.kernelW]
        var d = Descriptors(x: memoryDesc(xDims, dnnl_nchw), weights: memoryDesc(weightDims, dnnl_oihw),
                            bias: memoryDesc([outChannels], dnnl_x), y: memoryDesc(yDims, dnnl_nchw),
                            anyX: memoryDesc(xDims, dnnl_format_tag_any),
                            anyWeights: memoryDesc(weightDims, dnnl_format_tag_any),
                            anyY: memoryDesc(yDims, dnnl_format_tag_any),
                            strides: [Int64(g.strideH), Int64(g.strideW)], padding: [Int64(g.padH), Int64(g.padW)],
                            forwardPD: nil)

        var forward = dnnl_convolution_desc_t()
        dnnl(dnnl_convolution_forward_desc_init(&forward, dnnl_forward_training, dnnl_convolution_direct,
                                                &d.anyX, &d.anyWeights, &d.bias, &d.anyY, d.strides, d.padding,
                                                d.padding),
             "describing the forward convolution")
        let forwardPD = primitiveDesc(&forward, hint: nil, rectified: rectified)
        d.forwardPD = forwardPD
        forwardPass = Primitive(forwardPD)
        source = Operand(plain: d.x, native: forwardPD.md(dnnl_query_src_md), direction: .toNative)
        forwardWeights = Operand(plain: d.weights, native: forwardPD.md(dnnl_query_weights_md), direction: .toNative)
        bias = Operand(plain: d.bias, native: forwardPD.md(dnnl_query_weights_md, 1), direction: .toNative)
        destination = Operand(plain: d.y, native: forwardPD.md(dnnl_query_dst_md), direction: .toPlain)

        var backwardWeights = dnnl_convolution_desc_t()
        dnnl(dnnl_convolution_backward_weights_desc_init(&backwardWeights, dnnl_convolution_direct, &d.anyX,
                                                         &d.anyWeights, &d.bias, &d.anyY, d.strides, d.padding,
                                                         d.padding),
             "describing the backward-weights convolution")
        let weightsPD = primitiveDesc(&backwardWeights, hint: forwardPD)
        defer { dnnl_primitive_desc_destroy(weightsPD) }
        weightsPass = Primitive(weightsPD)
        weightsSource = sameLayout(weightsPD.md(dnnl_query_src_md), source.nativeDesc)
            ? nil : Operand(plain: d.x, native: weightsPD.md(dnnl_query_src_md), direction: .toNative)
        weightsOutputGradient = Operand(plain: d.y, native: weightsPD.md(dnnl_query_diff_dst_md), direction: .toNative)
        weightGradient = Operand(plain: d.weights, native: weightsPD.md(dnnl_query_diff_weights_md),
                                 direction: .toPlain, accumulate: true)
        biasGradient = Operand(plain: d.bias, native: weightsPD.md(dnnl_query_diff_weights_md, 1),
                               direction: .toPlain, accumulate: true)
        descriptors = d
    }

    deinit {
        if let pd = descriptors.forwardPD { dnnl_primitive_desc_destroy(pd) }
        dnnl_stream_destroy(stream)
    }

    /// `y = conv(x, W) + b` (or its `max(·, 0)` when built `rectified`), all `batch` samples.
    public func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>,
                        y: UnsafeMutablePointer<Float>) {
        KernelThreads.applyOpenMP(threads)
        forwardPass.run((cohort_dnnl_arg_src, source.load(x, stream)),
                        (cohort_dnnl_arg_weights, forwardWeights.load(weight, stream)),
                        (cohort_dnnl_arg_bias, bias.load(b, stream)),
                        (cohort_dnnl_arg_dst, destination.target(y)), on: stream)
        destination.store(stream)
    }

    /// `dW += Σ_n dy_n ⋆ x_n`, `db[o] += Σ_{n,i,j} dy[n, o, i, j]`. Must follow the forward of
    /// the same `x`, whose converted copy it reads.
    public func backwardWeights(x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                weightGradient dW: UnsafeMutablePointer<Float>,
                                biasGradient db: UnsafeMutablePointer<Float>) {
        KernelThreads.applyOpenMP(threads)
        let xMemory = weightsSource?.load(x, stream) ?? source.native
        weightsPass.run((cohort_dnnl_arg_src, xMemory),
                        (cohort_dnnl_arg_diff_dst, weightsOutputGradient.load(dy, stream)),
                        (cohort_dnnl_arg_diff_weights, weightGradient.target(dW)),
                        (cohort_dnnl_arg_diff_bias, biasGradient.target(db)), on: stream)
        weightGradient.store(stream)
        biasGradient.store(stream)
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
        dnnl(dnnl_convolution_backward_data_desc_init(&data, dnnl_convolution_direct, &d.anyX, &d.anyWeights, &d.anyY,
                                                      d.strides, d.padding, d.padding),
             "describing the backward-data convolution")
        let pd = primitiveDesc(&data, hint: d.forwardPD)
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

// MARK: - Threads

/// Threads that the kernels use for each call from this process: OpenBLAS's (one setting
/// for the process) and oneDNN's (OpenMP keeps the setting per calling thread, so each
/// `ConvolutionKernels` applies it again on the thread that runs it).
public enum KernelThreads {
    nonisolated(unsafe) private static var openMPCount = 0

    /// `convolution` threads for oneDNN, `matrix` for OpenBLAS. Call before building models,
    /// from the main thread, before other threads run kernels.
    public static func set(convolution: Int, matrix: Int) {
        openMPCount = max(1, convolution)
        openblas_set_num_threads(Int32(max(1, matrix)))
    }

    /// oneDNN's thread count for primitives built now; 0 (OpenMP's default, every core) until `set`.
    static var openMPThreads: Int { openMPCount }

    static func applyOpenMP(_ count: Int) {
        if count > 0, let setThreads = ompSetNumThreads { setThreads(Int32(count)) }
    }

    /// OpenMP's `omp_set_num_threads`, from the libgomp that libdnnl loads (looked up at run
    /// time so that linking needs no OpenMP development files).
    private static let ompSetNumThreads: (@convention(c) (Int32) -> Void)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Void).self)
    }()
}

// MARK: - oneDNN plumbing

/// Every oneDNN call here gets arguments Cohort built itself; an error means a broken
/// installation or a bug, never bad user input.
private func dnnl(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success { fatalError("oneDNN: \(what()) failed (status \(status.rawValue))") }
}

private func sameLayout(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

/// oneDNN's CPU engine, shared by every primitive of the process (engines are thread-safe).
nonisolated(unsafe) private let cpuEngine: dnnl_engine_t = {
    var engine: dnnl_engine_t?
    dnnl(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine")
    return engine!
}()

private func memoryDesc(_ dims: [Int], _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    dnnl(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), dnnl_f32, tag),
         "describing a tensor of shape \(dims)")
    return md
}

/// A primitive descriptor whose scratchpad Cohort provides, allocated once with the primitive
/// (by default oneDNN keeps its own, shared and grown on demand); `rectified` appends a ReLU.
private func primitiveDesc(_ op: UnsafeRawPointer, hint: dnnl_primitive_desc_t?, rectified: Bool = false)
    -> dnnl_primitive_desc_t {
    var attr: dnnl_primitive_attr_t?
    dnnl(dnnl_primitive_attr_create(&attr), "creating attributes")
    defer { dnnl_primitive_attr_destroy(attr) }
    dnnl(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting the scratchpad mode")
    if rectified {
        var postOps: dnnl_post_ops_t?
        dnnl(dnnl_post_ops_create(&postOps), "creating post-ops")
        defer { dnnl_post_ops_destroy(postOps) }
        dnnl(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_relu, 0, 0), "appending a ReLU")
        dnnl(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
    }
    var pd: dnnl_primitive_desc_t?
    dnnl(dnnl_primitive_desc_create(&pd, op, attr, cpuEngine, hint), "choosing a convolution kernel")
    return pd!
}

extension dnnl_primitive_desc_t {
    fileprivate func md(_ query: dnnl_query_t, _ index: Int32 = 0) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(self, query, index).pointee
    }
}

/// A primitive and its scratchpad.
private final class Primitive {
    let handle: dnnl_primitive_t
    let scratchpad: dnnl_memory_t?
    private let storage: UnsafeMutableRawPointer?

    init(_ pd: dnnl_primitive_desc_t) {
        var p: dnnl_primitive_t?
        dnnl(dnnl_primitive_create(&p, pd), "building a primitive")
        handle = p!
        var md = pd.md(dnnl_query_scratchpad_md)
        let size = dnnl_memory_desc_get_size(&md)
        if size > 0 {
            let s = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            var m: dnnl_memory_t?
            dnnl(dnnl_memory_create(&m, &md, cpuEngine, s), "creating a scratchpad")
            storage = s; scratchpad = m
        } else {
            storage = nil; scratchpad = nil
        }
    }

    deinit {
        dnnl_primitive_destroy(handle)
        if let scratchpad { dnnl_memory_destroy(scratchpad) }
        storage?.deallocate()
    }

    typealias Argument = (index: Int32, memory: dnnl_memory_t)

    /// Runs on the calling thread (CPU streams are synchronous). Up to four arguments and
    /// the scratchpad, listed on the stack.
    func run(_ a: Argument, _ b: Argument, _ c: Argument? = nil, _ d: Argument? = nil, on stream: dnnl_stream_t) {
        withUnsafeTemporaryAllocation(of: dnnl_exec_arg_t.self, capacity: 5) { list in
            var n = 0
            func add(_ argument: Argument?) {
                guard let argument else { return }
                list[n] = dnnl_exec_arg_t(arg: argument.index, memory: argument.memory)
                n += 1
            }
            add(a); add(b); add(c); add(d)
            add(scratchpad.map { (cohort_dnnl_arg_scratchpad, $0) })
            dnnl(dnnl_primitive_execute(handle, stream, Int32(n), list.baseAddress), "running a primitive")
        }
    }
}

/// One tensor argument of a primitive: Cohort's plain layout on the caller's side, the
/// primitive's own on the kernel's, and a reorder between them when the two differ (or,
/// for gradients that are added to the caller's, always: a reorder with a sum post-op).
private final class Operand {
    enum Direction { case toNative, toPlain }
    let direction: Direction
    /// Points at the caller's buffer, set on every call.
    let plain: dnnl_memory_t
    /// What the primitive reads or writes: its own copy, or `plain` when no reorder is needed.
    let native: dnnl_memory_t
    let nativeDesc: dnnl_memory_desc_t
    private let reorder: Primitive?
    private let storage: UnsafeMutableRawPointer?

    init(plain plainDesc: dnnl_memory_desc_t, native nativeDesc: dnnl_memory_desc_t, direction: Direction,
         accumulate: Bool = false) {
        self.direction = direction
        self.nativeDesc = nativeDesc
        var p = plainDesc, n = nativeDesc
        var plainMemory: dnnl_memory_t?
        dnnl(dnnl_memory_create(&plainMemory, &p, cpuEngine, nil), "creating a memory object")
        plain = plainMemory!
        if sameLayout(p, n) && !accumulate {
            native = plain; reorder = nil; storage = nil
            return
        }
        let s = UnsafeMutableRawPointer.allocate(byteCount: max(dnnl_memory_desc_get_size(&n), 1), alignment: 64)
        var nativeMemory: dnnl_memory_t?
        dnnl(dnnl_memory_create(&nativeMemory, &n, cpuEngine, s), "creating a memory object")
        native = nativeMemory!; storage = s
        var attr: dnnl_primitive_attr_t?, postOps: dnnl_post_ops_t?
        dnnl(dnnl_primitive_attr_create(&attr), "creating attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        dnnl(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting the scratchpad mode")
        if accumulate {
            dnnl(dnnl_post_ops_create(&postOps), "creating post-ops")
            dnnl(dnnl_post_ops_append_sum(postOps, 1), "appending a sum")
            dnnl(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
            dnnl_post_ops_destroy(postOps)
        }
        var pd: dnnl_primitive_desc_t?
        if direction == .toNative {
            dnnl(dnnl_reorder_primitive_desc_create(&pd, &p, cpuEngine, &n, cpuEngine, attr), "describing a reorder")
        } else {
            dnnl(dnnl_reorder_primitive_desc_create(&pd, &n, cpuEngine, &p, cpuEngine, attr), "describing a reorder")
        }
        reorder = Primitive(pd!)
        dnnl_primitive_desc_destroy(pd)
    }

    deinit {
        if native != plain { dnnl_memory_destroy(native) }
        dnnl_memory_destroy(plain)
        storage?.deallocate()
    }

    /// An input: points at `pointer`, converted into the primitive's layout if needed.
    func load(_ pointer: UnsafePointer<Float>, _ stream: dnnl_stream_t) -> dnnl_memory_t {
        dnnl(dnnl_memory_set_data_handle_v2(plain, UnsafeMutableRawPointer(mutating: pointer), stream),
             "setting a handle")
        reorder?.run((cohort_dnnl_arg_from, plain), (cohort_dnnl_arg_to, native), on: stream)
        return native
    }

    /// An output: where the primitive writes before `store` brings it to `pointer`.
    func target(_ pointer: UnsafeMutablePointer<Float>) -> dnnl_memory_t {
        dnnl(dnnl_memory_set_data_handle_v2(plain, pointer, nil), "setting a handle")
        return native
    }

    func store(_ stream: dnnl_stream_t) {
        reorder?.run((cohort_dnnl_arg_from, native), (cohort_dnnl_arg_to, plain), on: stream)
    }
}
