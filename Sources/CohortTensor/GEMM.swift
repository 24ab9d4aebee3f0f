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
