import CBLAS
import Foundation

/// Row-major single-precision matrix multiply through CBLAS:
/// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`.
///
/// `lda`, `ldb`, `ldc` default to the tight row strides of the stored (untransposed) matrices.
@inline(__always)
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                  b: UnsafePointer<Float>, ldb: Int? = nil,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // BLAS leaves C scaled by beta; do the same without calling it with k = 0.
        for i in 0..<m { for j in 0..<n { c[i * (ldc ?? n) + j] *= beta } }
        return
    }
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc ?? n))
}

/// The machine's own sgemm rate, measured on the spot: square products of `size`
/// repeated for at least `seconds`, with `threads` BLAS threads. The limit that a
/// model's effective GFLOP/s is compared with.
public func measureSGEMMGFLOPs(threads: Int, size: Int = 1024, seconds: Double = 0.5) -> Double {
    let previous = openblas_get_num_threads()
    openblas_set_num_threads(Int32(threads))
    defer { openblas_set_num_threads(previous) }
    let a = FloatBuffer(count: size * size), b = FloatBuffer(count: size * size), c = FloatBuffer(count: size * size)
    for i in 0..<(size * size) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
    sgemm(m: size, n: size, k: size, a: a.pointer, b: b.pointer, c: c.pointer)  // warm-up: threads, pages
    var repetitions = 0
    let start = monotonicSeconds()
    var elapsed = 0.0
    while elapsed < seconds {
        sgemm(m: size, n: size, k: size, a: a.pointer, b: b.pointer, c: c.pointer)
        repetitions += 1
        elapsed = monotonicSeconds() - start
    }
    return 2 * Double(size * size * size) * Double(repetitions) / elapsed / 1e9
}

/// Seconds from a monotonic clock (for timing phases; not wall-clock dates).
@inline(__always)
public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
