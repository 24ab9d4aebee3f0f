import CDNNL

/// `C[b] = A[b] · B[b] (+ bias)` for every index b of a batch of any number of dimensions (none
/// for one product), each matrix a strided view of the caller's memory, through oneDNN's matrix
/// product: a transposed operand is the same memory with its strides swapped, and a head of
/// attention is a view into the rows of the projections `[N, T, 3d]`. One call runs the whole
/// batch (oneDNN's JIT GEMM, for these shapes 10-25% faster than OpenBLAS on one product and
/// 2-3 times on a batch of small ones; docs/performance.md).
///
/// With `accumulate` the product is added to C (gradients); with `bias` a row `[n]` is added to
/// every row of C. N and the strides are fixed; each call gives the first batch dimension's
/// size, M and K (a batch of samples changes them), and a primitive is made for each shape met.
/// Deterministic; each call runs on the calling thread with the kernels' thread count.
public final class StridedMatrixProduct {
    /// How one operand lies: the strides, in floats, of its rows, its columns and each batch dimension.
    public struct Layout: Sendable {
        public var rowStride: Int, columnStride: Int, batchStrides: [Int]
        public init(rowStride: Int, columnStride: Int, batchStrides: [Int] = []) {
            self.rowStride = rowStride; self.columnStride = columnStride; self.batchStrides = batchStrides
        }

        /// A row-major `[rows, columns]` matrix with rows `leading` floats apart, or its transpose.
        public static func rowMajor(leading: Int, transposed: Bool = false, batchStrides: [Int] = []) -> Layout {
            transposed ? Layout(rowStride: 1, columnStride: leading, batchStrides: batchStrides)
                : Layout(rowStride: leading, columnStride: 1, batchStrides: batchStrides)
        }
    }

    private let batch: [Int], n: Int
    private let a: Layout, b: Layout, c: Layout
    private let accumulate: Bool, hasBias: Bool
    private let threads: Int
    private let stream: dnnl_stream_t
    /// By shape (the first batch dimension's size, M, K): the primitive and its memories.
    private var kernels: [[Int]: Kernel] = [:]

    /// `batch`: the batch dimensions' sizes (each call gives the first one's).
    public init(batch: [Int] = [], n: Int, a: Layout, b: Layout, c: Layout, accumulate: Bool = false, bias: Bool = false) {
        precondition(a.batchStrides.count == batch.count && b.batchStrides.count == batch.count
                     && c.batchStrides.count == batch.count, "a batch stride for each batch dimension")
        self.batch = batch; self.n = n; self.a = a; self.b = b; self.c = c
        self.accumulate = accumulate; hasBias = bias
        threads = KernelThreads.openMPThreads
        var s: dnnl_stream_t?
        dnnl(dnnl_stream_create(&s, cpuEngine, dnnl_stream_default_flags.rawValue), "creating a stream")
        stream = s!
    }

    deinit { dnnl_stream_destroy(stream) }

    /// `C = A·B (+ bias)`, or `C += A·B`, A `[m, k]`, B `[k, n]`, for `batchSize` of the first
    /// batch dimension (ignored without batch dimensions).
    public func run(batchSize: Int = 1, m: Int, k: Int, a x: UnsafePointer<Float>, b y: UnsafePointer<Float>,
                    c z: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil) {
        precondition(m > 0 && k > 0 && (bias != nil) == hasBias)
        let shape = [batch.isEmpty ? 0 : batchSize, m, k]
        let kernel = kernels[shape] ?? makeKernel(shape)
        KernelThreads.applyOpenMP(threads)
        kernel.run(a: x, b: y, c: z, bias: bias, stream: stream)
    }

    private func makeKernel(_ shape: [Int]) -> Kernel {
        let batch = self.batch.isEmpty ? [] : [shape[0]] + self.batch.dropFirst()
        let (rows, k) = (shape[1], shape[2])
        func desc(_ dims: [Int], _ layout: Layout) -> dnnl_memory_desc_t {
            var md = dnnl_memory_desc_t()
            let strides = layout.batchStrides + [layout.rowStride, layout.columnStride]
            dnnl(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims.map(Int64.init), dnnl_f32,
                                                  strides.map(Int64.init)),
                 "describing a matrix view \(dims)")
            return md
        }
        let kernel = Kernel(a: desc(batch + [rows, k], a), b: desc(batch + [k, n], b), c: desc(batch + [rows, n], c),
                            bias: hasBias ? desc(batch.map { _ in 1 } + [1, n], Layout(rowStride: n, columnStride: 1,
                                                                                       batchStrides: batch.map { _ in n }))
                                : nil,
                            accumulate: accumulate)
        kernels[shape] = kernel
        return kernel
    }

    /// One shape's primitive and the memories whose handles each call sets.
    private final class Kernel {
        let primitive: Primitive
        let a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t, bias: dnnl_memory_t?

        init(a ad: dnnl_memory_desc_t, b bd: dnnl_memory_desc_t, c cd: dnnl_memory_desc_t, bias biasDesc: dnnl_memory_desc_t?,
             accumulate: Bool) {
            var (ad, bd, cd) = (ad, bd, cd)
            var description = dnnl_matmul_desc_t()
            if var biasDesc {
                dnnl(dnnl_matmul_desc_init(&description, &ad, &bd, &biasDesc, &cd), "describing a matrix product")
            } else {
                dnnl(dnnl_matmul_desc_init(&description, &ad, &bd, nil, &cd), "describing a matrix product")
            }
            let pd = primitiveDesc(&description, hint: nil, accumulate: accumulate)
            defer { dnnl_primitive_desc_destroy(pd) }
            primitive = Primitive(pd)
            func memory(_ md: inout dnnl_memory_desc_t) -> dnnl_memory_t {
                var handle: dnnl_memory_t?
                dnnl(dnnl_memory_create(&handle, &md, cpuEngine, nil), "creating a memory object")
                return handle!
            }
            a = memory(&ad); b = memory(&bd); c = memory(&cd)
            if var biasDesc { bias = memory(&biasDesc) } else { bias = nil }
        }

        deinit { [a, b, c].forEach { dnnl_memory_destroy($0) }; bias.map { dnnl_memory_destroy($0) } }

        func run(a x: UnsafePointer<Float>, b y: UnsafePointer<Float>, c z: UnsafeMutablePointer<Float>,
                 bias: UnsafePointer<Float>?, stream: dnnl_stream_t) {
            dnnl(dnnl_memory_set_data_handle_v2(a, UnsafeMutableRawPointer(mutating: x), stream), "setting a handle")
            dnnl(dnnl_memory_set_data_handle_v2(b, UnsafeMutableRawPointer(mutating: y), stream), "setting a handle")
            dnnl(dnnl_memory_set_data_handle_v2(c, z, stream), "setting a handle")
            if let bias, let memory = self.bias {
                dnnl(dnnl_memory_set_data_handle_v2(memory, UnsafeMutableRawPointer(mutating: bias), stream), "setting a handle")
                primitive.run((cohort_dnnl_arg_src, a), (cohort_dnnl_arg_weights, b), (cohort_dnnl_arg_dst, c),
                              (cohort_dnnl_arg_bias, memory), on: stream)
            } else {
                primitive.run((cohort_dnnl_arg_src, a), (cohort_dnnl_arg_weights, b), (cohort_dnnl_arg_dst, c), on: stream)
            }
        }
    }
}
