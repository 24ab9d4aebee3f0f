import CBLAS
import CDNNL
import Glibc

// What the oneDNN-backed kernels share: the thread settings, the engine, and primitives
// and operands on Cohort's plain layouts.

// MARK: - Threads

/// Threads that the kernels use for each call from this process. oneDNN runs the products
/// that dominate (convolutions, the recurrent layers' step products) and gets them; OpenBLAS,
/// left with products done once per pass (input projections, weight gradients, linear
/// layers), runs on the calling thread. The two keep separate thread pools whose idle threads
/// spin for a while after each call, so with several threads each they would take turns on
/// the same cores (docs/performance.md has the figures). OpenMP keeps oneDNN's setting per
/// calling thread, so each kernel applies it again on the thread that runs it.
public enum KernelThreads {
    /// oneDNN's thread count for primitives built now; 0 (OpenMP's default, every core) until `set`.
    nonisolated(unsafe) private(set) static var openMPThreads = 0

    /// Threads per replica. Call before building models, from the main thread, before other
    /// threads run kernels.
    public static func set(_ count: Int) {
        openMPThreads = max(1, count)
        openblas_set_num_threads(1)
    }

    /// OpenBLAS's own threads, for a measurement of the machine (training keeps it at 1).
    public static func setBLAS(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }

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
func dnnl(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success { fatalError("oneDNN: \(what()) failed (status \(status.rawValue))") }
}

func sameLayout(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

/// oneDNN's CPU engine, shared by every primitive of the process (engines are thread-safe).
nonisolated(unsafe) let cpuEngine: dnnl_engine_t = {
    var engine: dnnl_engine_t?
    dnnl(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine")
    return engine!
}()

func memoryDesc(_ dims: [Int], _ tag: dnnl_format_tag_t, _ format: FloatFormat = .fp32) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    dnnl(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), format == .bf16 ? dnnl_bf16 : dnnl_f32,
                                      tag),
         "describing a tensor of shape \(dims)")
    return md
}

/// Attributes of every primitive here (the caller destroys them): a scratchpad that Cohort
/// provides, allocated once with the primitive (by default oneDNN keeps its own, shared and
/// grown on demand); `accumulate` adds the output to what the destination holds, `rectified`
/// then applies a ReLU.
func attributes(accumulate: Bool = false, rectified: Bool = false) -> dnnl_primitive_attr_t {
    var attr: dnnl_primitive_attr_t?
    dnnl(dnnl_primitive_attr_create(&attr), "creating attributes")
    dnnl(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting the scratchpad mode")
    if rectified || accumulate {
        var postOps: dnnl_post_ops_t?
        dnnl(dnnl_post_ops_create(&postOps), "creating post-ops")
        defer { dnnl_post_ops_destroy(postOps) }
        if accumulate { dnnl(dnnl_post_ops_append_sum(postOps, 1), "appending a sum") }
        if rectified { dnnl(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_relu, 0, 0), "appending a ReLU") }
        dnnl(dnnl_primitive_attr_set_post_ops(attr, postOps), "setting post-ops")
    }
    return attr!
}

/// The kernel oneDNN picks for operation descriptor `op`, with `attributes(accumulate:rectified:)`.
func primitiveDesc(_ op: UnsafeRawPointer, hint: dnnl_primitive_desc_t?, accumulate: Bool = false,
                   rectified: Bool = false) -> dnnl_primitive_desc_t {
    let attr = attributes(accumulate: accumulate, rectified: rectified)
    defer { dnnl_primitive_attr_destroy(attr) }
    var pd: dnnl_primitive_desc_t?
    dnnl(dnnl_primitive_desc_create(&pd, op, attr, cpuEngine, hint), "choosing a kernel")
    return pd!
}

extension dnnl_primitive_desc_t {
    func md(_ query: dnnl_query_t, _ index: Int32 = 0) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(self, query, index).pointee
    }
}

/// A primitive and its scratchpad.
final class Primitive {
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
final class Operand {
    enum Direction { case toNative, toPlain }
    /// Points at the caller's buffer, set on every call.
    let plain: dnnl_memory_t
    /// What the primitive reads or writes: its own copy, or `plain` when no reorder is needed.
    let native: dnnl_memory_t
    let nativeDesc: dnnl_memory_desc_t
    private let reorder: Primitive?
    private let storage: UnsafeMutableRawPointer?

    init(plain plainDesc: dnnl_memory_desc_t, native nativeDesc: dnnl_memory_desc_t, direction: Direction,
         accumulate: Bool = false) {
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
        let attr = attributes(accumulate: accumulate)
        defer { dnnl_primitive_attr_destroy(attr) }
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

// MARK: - Instruction sets

/// The instruction set of the kernels oneDNN runs in this process: the CPU's best, or a lower
/// one where `DNNL_MAX_CPU_ISA` (or `ONEDNN_MAX_CPU_ISA`) limits it, e.g. to test the AVX2
/// kernels on an AVX-512 machine.
public enum OneDNNISA {
    /// oneDNN's name for it, as `DNNL_MAX_CPU_ISA` takes it (`AVX2`, `AVX512_CORE_BF16`, ...).
    public static let name: String = {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "SSE41"
        case dnnl_cpu_isa_avx: return "AVX"
        case dnnl_cpu_isa_avx2: return "AVX2"
        case dnnl_cpu_isa_avx2_vnni: return "AVX2_VNNI"
        case dnnl_cpu_isa_avx512_mic, dnnl_cpu_isa_avx512_mic_4ops: return "AVX512_MIC"
        case dnnl_cpu_isa_avx512_core: return "AVX512_CORE"
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX512_CORE_VNNI"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX512_CORE_BF16"
        case dnnl_cpu_isa_avx512_core_amx: return "AVX512_CORE_AMX"
        case let other: return "ISA 0x\(String(other.rawValue, radix: 16))"
        }
    }()

    /// Whether the process runs under a limit set in the environment.
    static var limitVariable: String? {
        ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"].first { getenv($0) != nil }
    }
}

// MARK: - bf16 support

/// Whether this CPU runs oneDNN's bfloat16 kernels (`--precision bf16`), and how.
public enum BF16Support: Sendable {
    /// AVX-512 BF16 (`avx512_bf16`): the dot products in hardware.
    case native
    /// AVX-512 without BF16: oneDNN emulates the dot products with float instructions, and
    /// the kernels run slower than in float.
    case emulated
    /// No bfloat16 kernels on this CPU.
    case unavailable

    /// Decided once per process: the CPU's flags, and whether oneDNN builds a bf16 convolution.
    public static let current: BF16Support = {
        guard oneDNNBuildsBF16Convolution() else { return .unavailable }
        return cpuFlags().contains("avx512_bf16") ? .native : .emulated
    }()

    /// Why there are no bf16 kernels here (nil where there are): the instruction set oneDNN
    /// runs, and what limits it.
    public static var missing: String? {
        guard current == .unavailable else { return nil }
        let limit = OneDNNISA.limitVariable.map { " (limited by \($0)=\(String(cString: getenv($0))))" } ?? ""
        return "oneDNN runs \(OneDNNISA.name) kernels here\(limit), and its bfloat16 kernels need AVX-512"
    }

    /// The words of /proc/cpuinfo's first `flags` line (empty where there is none).
    private static func cpuFlags() -> Set<Substring> {
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?, capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            if text.hasPrefix("flags") { return Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })) }
        }
        return []
    }

    /// Tries to build the primitive descriptor of a small bf16 convolution.
    private static func oneDNNBuildsBF16Convolution() -> Bool {
        var x = memoryDesc([1, 16, 8, 8], dnnl_format_tag_any, .bf16), w = memoryDesc([16, 16, 3, 3], dnnl_format_tag_any, .bf16)
        var b = memoryDesc([16], dnnl_x), y = memoryDesc([1, 16, 8, 8], dnnl_format_tag_any)
        var op = dnnl_convolution_desc_t()
        guard dnnl_convolution_forward_desc_init(&op, dnnl_forward_training, dnnl_convolution_direct, &x, &w, &b, &y,
                                                 [1, 1], [1, 1], [1, 1]) == dnnl_success else { return false }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &op, nil, cpuEngine, nil) == dnnl_success, let pd else { return false }
        dnnl_primitive_desc_destroy(pd)
        return true
    }
}
