import CohortTensor
import Foundation

/// Multi-head self-attention over a sequence `[T, d]` (the peer's `attn`): one projection to
/// queries, keys and values, `[q | k | v] = x·Wᵀ + b` with `qkv.weight [3d, d]`, `qkv.bias [3d]`;
/// per head h of width `e = d / heads`, `Y_h = softmax(Q_h·K_hᵀ / √e + M)·V_h`, with M = -∞ above
/// the diagonal when causal (PyTorch's `scaled_dot_product_attention(is_causal=True)`); the heads'
/// outputs side by side, then `proj.weight [d, d]`, `proj.bias [d]`.
///
/// Every product is a matrix product over one sample's positions (queries, keys and values are
/// read in place from the `[T, 3d]` rows, with their row stride). The softmax is one pass per row
/// over the scores it overwrites: the max subtracted before `exp`, so no score overflows, and the
/// masked scores never computed. Kept for backward: the input, the `[T, 3d]` projections, the
/// heads' outputs `[T, d]` and the probabilities `[heads, T, T]`, which backward needs.
///
/// Backward per head, with `P` the probabilities and `dY_h` the heads' output gradient:
/// `dV = Pᵀ·dY_h`, `dP = dY_h·Vᵀ`, `dS = P ⊙ (dP - rowsum(dP ⊙ P)) / √e`, `dQ = dS·K`,
/// `dK = dSᵀ·Q`; then the two projections' backward as `Linear`'s.
public final class Attention: Layer {
    public let length: Int, dimension: Int, heads: Int, causal: Bool
    public var inputShape: Shape { [length, dimension] }
    public var outputShape: Shape { [length, dimension] }
    private var qkvWeight: UnsafeMutablePointer<Float>!, qkvBias: UnsafeMutablePointer<Float>!
    private var projWeight: UnsafeMutablePointer<Float>!, projBias: UnsafeMutablePointer<Float>!
    private var qkvWeightGrad: UnsafeMutablePointer<Float>!, qkvBiasGrad: UnsafeMutablePointer<Float>!
    private var projWeightGrad: UnsafeMutablePointer<Float>!, projBiasGrad: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    /// `[N, T, 3d]`, `[N, T, d]`, `[N, heads, T, T]`, `[N, T, d]`.
    private let projections: FloatBuffer, mixed: FloatBuffer, probabilities: FloatBuffer, output: FloatBuffer
    /// Backward's `[N, T, d]`, `[N, T, 3d]`, one head's `[T, T]`, and `[N, T, d]`.
    private let mixedGrad: FloatBuffer, projectionsGrad: FloatBuffer, scoresGrad: FloatBuffer, inputGrad: FloatBuffer

    public init(length: Int, dimension: Int, heads: Int, causal: Bool, maxBatch: Int) {
        precondition(heads > 0 && dimension % heads == 0, "heads must divide the width")
        self.length = length; self.dimension = dimension; self.heads = heads; self.causal = causal
        let rows = maxBatch * length
        projections = FloatBuffer(count: rows * 3 * dimension)
        mixed = FloatBuffer(count: rows * dimension)
        probabilities = FloatBuffer(count: maxBatch * heads * length * length)
        output = FloatBuffer(count: rows * dimension)
        mixedGrad = FloatBuffer(count: rows * dimension)
        projectionsGrad = FloatBuffer(count: rows * 3 * dimension)
        scoresGrad = FloatBuffer(count: length * length)
        inputGrad = FloatBuffer(count: rows * dimension)
    }

    public var parameterSpecs: [ParameterSpec] {
        let d = dimension
        return [ParameterSpec("qkv.weight", [3 * d, d]), ParameterSpec("qkv.bias", [3 * d]),
                ParameterSpec("proj.weight", [d, d]), ParameterSpec("proj.bias", [d])]
    }

    /// Multiply-adds ×2 of one sample: the two projections, `Q·Kᵀ` and `P·V` (`4·T²·d`; the
    /// masked half is computed too).
    public var forwardFLOPsPerSample: Int {
        2 * length * (3 * dimension * dimension + dimension * dimension) + 4 * length * length * dimension
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        let d = dimension
        qkvWeight = parameters; qkvBias = parameters + 3 * d * d
        projWeight = qkvBias + 3 * d; projBias = projWeight + d * d
        qkvWeightGrad = gradients; qkvBiasGrad = gradients + 3 * d * d
        projWeightGrad = qkvBiasGrad + 3 * d; projBiasGrad = projWeightGrad + d * d
    }

    /// PyTorch's `nn.Linear` default for both projections: U(-1/√d, 1/√d) for weights and biases.
    public func initializeParameters(using rng: inout SplitMix64) {
        let d = dimension, bound = 1 / Float(d).squareRoot()
        fillUniform(qkvWeight, count: 3 * d * d, bound: bound, rng: &rng)
        fillUniform(qkvBias, count: 3 * d, bound: bound, rng: &rng)
        fillUniform(projWeight, count: d * d, bound: bound, rng: &rng)
        fillUniform(projBias, count: d, bound: bound, rng: &rng)
    }

    private var width: Int { dimension / heads }
    private var scale: Float { 1 / Float(width).squareRoot() }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        let (t, d, e) = (length, dimension, width), rows = batch * t
        let qkv = projections.pointer
        for r in 0..<rows { (qkv + r * 3 * d).update(from: qkvBias, count: 3 * d) }
        sgemm(transB: true, m: rows, n: 3 * d, k: d, a: x, b: qkvWeight, beta: 1, c: qkv)
        for n in 0..<batch {
            for h in 0..<heads {
                let q = qkv + n * t * 3 * d + h * e, k = q + d, v = q + 2 * d
                let p = probabilities.pointer + (n * heads + h) * t * t
                sgemm(transB: true, m: t, n: t, k: e, alpha: scale, a: q, lda: 3 * d, b: k, ldb: 3 * d, c: p)
                for i in 0..<t { softmaxRow(p + i * t, valid: causal ? i + 1 : t, count: t) }
                sgemm(m: t, n: e, k: t, a: p, b: v, ldb: 3 * d, c: mixed.pointer + n * t * d + h * e, ldc: d)
            }
        }
        let y = output.pointer
        for r in 0..<rows { (y + r * d).update(from: projBias, count: d) }
        sgemm(transB: true, m: rows, n: d, k: d, a: mixed.pointer, b: projWeight, beta: 1, c: y)
        return UnsafePointer(y)
    }

    /// `row[0..<valid] ← softmax(row[0..<valid])`, `row[valid..<count] ← 0` (the masked scores).
    @inline(__always)
    private func softmaxRow(_ row: UnsafeMutablePointer<Float>, valid: Int, count: Int) {
        var m = row[0]
        for j in 1..<valid { m = max(m, row[j]) }
        var sum: Float = 0
        for j in 0..<valid {
            let e = expf(row[j] - m)
            row[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<valid { row[j] *= inverse }
        if valid < count { (row + valid).update(repeating: 0, count: count - valid) }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Attention.backward before forward") }
        let (t, d, e) = (length, dimension, width), rows = batch * t
        // The output projection.
        sgemm(transA: true, m: d, n: d, k: rows, a: dy, b: mixed.pointer, beta: 1, c: projWeightGrad)
        accumulateColumnSums(dy, rows: rows, columns: d, into: projBiasGrad)
        sgemm(m: rows, n: d, k: d, a: dy, b: projWeight, c: mixedGrad.pointer)
        // The heads.
        let qkv = projections.pointer, dqkv = projectionsGrad.pointer, ds = scoresGrad.pointer
        for n in 0..<batch {
            for h in 0..<heads {
                let q = qkv + n * t * 3 * d + h * e, k = q + d, v = q + 2 * d
                let dq = dqkv + n * t * 3 * d + h * e, dk = dq + d, dv = dq + 2 * d
                let p = probabilities.pointer + (n * heads + h) * t * t
                let dyh = mixedGrad.pointer + n * t * d + h * e
                sgemm(transA: true, m: t, n: e, k: t, a: p, b: dyh, ldb: d, c: dv, ldc: 3 * d)
                sgemm(transB: true, m: t, n: t, k: e, a: dyh, lda: d, b: v, ldb: 3 * d, c: ds)
                for i in 0..<t {
                    let pr = p + i * t, dr = ds + i * t, valid = causal ? i + 1 : t
                    var dot: Float = 0
                    for j in 0..<valid { dot += pr[j] * dr[j] }
                    for j in 0..<valid { dr[j] = pr[j] * (dr[j] - dot) * scale }
                    if valid < t { (dr + valid).update(repeating: 0, count: t - valid) }
                }
                sgemm(m: t, n: e, k: t, a: ds, b: k, ldb: 3 * d, c: dq, ldc: 3 * d)
                sgemm(transA: true, m: t, n: e, k: t, a: ds, b: q, ldb: 3 * d, c: dk, ldc: 3 * d)
            }
        }
        // The input projection.
        sgemm(transA: true, m: 3 * d, n: d, k: rows, a: dqkv, b: x, beta: 1, c: qkvWeightGrad)
        accumulateColumnSums(dqkv, rows: rows, columns: 3 * d, into: qkvBiasGrad)
        guard needsInputGradient else { return nil }
        sgemm(m: rows, n: d, k: 3 * d, a: dqkv, b: qkvWeight, c: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
