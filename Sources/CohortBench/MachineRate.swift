import CohortBase
import CohortTensor

/// The machine's own sgemm rate, measured on the spot: square products of `size`
/// repeated for at least `seconds`, with `threads` BLAS threads. The limit that a
/// model's effective GFLOP/s is compared with.
public func measureSGEMMGFLOPs(threads: Int, size: Int = 1024, seconds: Double = 0.5) -> Double {
    KernelThreads.setBLAS(threads)
    defer { KernelThreads.setBLAS(1) }
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
