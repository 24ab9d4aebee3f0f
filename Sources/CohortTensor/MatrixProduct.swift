import CDNNL

/// `C[M, N] += A[M, K] · B[K, N]`, row-major, for a fixed shape and a `B` that stays the same
/// over many products: a recurrent layer's `W_hh` over the steps of one sequence. `prepare`
/// converts B once into the blocked layout of oneDNN's brgemm kernel; each `multiplyAdd` then
/// reads A and C where they are. OpenBLAS would pack B again on every call, which for the
/// recurrent models' small `[batch, H] × [H, gates·H]` steps costs about as much as the
/// product itself (docs/performance.md).
///
/// With `precision` bf16 the kernel reads A and B rounded to bfloat16 (the conversions into
/// its layouts round them) and accumulates in float into a float C, as PyTorch's autocast
/// multiplies; the recurrent layers then also run their input projection on one (a single
/// product per `prepare`), since OpenBLAS has no bf16 GEMM.
///
/// One instance per layer, shape and replica, used by one thread at a time; deterministic.
public final class MatrixProductKernel {
    private let threads: Int
    private let stream: dnnl_stream_t
    private let product: Primitive
    private let a: Operand, b: Operand, c: Operand
    /// B in the kernel's layout, valid after `prepare`.
    private var preparedB: dnnl_memory_t?

    /// `transposedB`: B is stored as its transpose, `[N, K]` row-major (PyTorch's `weight[out, in]`).
    public init(m: Int, k: Int, n: Int, transposedB: Bool, precision: FloatFormat = .fp32) {
        threads = KernelThreads.openMPThreads
        KernelThreads.applyOpenMP(threads)
        var s: dnnl_stream_t?
        dnnl(dnnl_stream_create(&s, cpuEngine, dnnl_stream_default_flags.rawValue), "creating a stream")
        stream = s!
        let aDesc = memoryDesc([m, k], dnnl_ab), bDesc = memoryDesc([k, n], transposedB ? dnnl_ba : dnnl_ab)
        var kernelA = memoryDesc([m, k], dnnl_ab, precision), cDesc = memoryDesc([m, n], dnnl_ab)
        var anyB = memoryDesc([k, n], dnnl_format_tag_any, precision)
        var description = dnnl_matmul_desc_t()
        dnnl(dnnl_matmul_desc_init(&description, &kernelA, &anyB, nil, &cDesc), "describing a matrix product")
        let pd = primitiveDesc(&description, hint: nil, accumulate: true)
        defer { dnnl_primitive_desc_destroy(pd) }
        product = Primitive(pd)
        a = Operand(plain: aDesc, native: pd.md(dnnl_query_src_md), direction: .toNative)
        b = Operand(plain: bDesc, native: pd.md(dnnl_query_weights_md), direction: .toNative)
        c = Operand(plain: cDesc, native: pd.md(dnnl_query_dst_md), direction: .toPlain)
    }

    deinit { dnnl_stream_destroy(stream) }

    /// Converts `b` for the products that follow; call again whenever B changes.
    public func prepare(b pointer: UnsafePointer<Float>) {
        KernelThreads.applyOpenMP(threads)
        preparedB = b.load(pointer, stream)
    }

    /// `C += A · B` with the B of the last `prepare`, on the thread that called it (which
    /// `prepare` set to the kernel's thread count, once for all the steps of a pass).
    public func multiplyAdd(a x: UnsafePointer<Float>, c y: UnsafeMutablePointer<Float>) {
        guard let preparedB else { preconditionFailure("MatrixProductKernel.multiplyAdd before prepare") }
        product.run((cohort_dnnl_arg_src, a.load(x, stream)), (cohort_dnnl_arg_weights, preparedB),
                    (cohort_dnnl_arg_dst, c.target(y)), on: stream)
        c.store(stream)
    }
}
