import CohortTensor
import Foundation

/// Multi-head self-attention over a sequence `[T, d]` (the peer's `attn`): one projection to
/// queries, keys and values, `[q | k | v] = x·Wᵀ + b` with `qkv.weight [3d, d]`, `qkv.bias [3d]`;
/// per head h of width `e = d / heads`, `Y_h = softmax(Q_h·K_hᵀ / √e + M)·V_h`, with M = -∞ above
/// the diagonal when causal (PyTorch's `scaled_dot_product_attention(is_causal=True)`); the heads'
/// outputs side by side, then `proj.weight [d, d]`, `proj.bias [d]`.
///
/// The projections are `Linear` layers at every position. The heads' products are batched
/// matrix products over (sample, head), reading queries, keys and values in place from the
/// `[T, 3d]` rows (`StridedMatrixProduct`). The softmax is one pass per row over the scores it
/// overwrites: scaled, the max subtracted before `exp` so that no score overflows, the masked
/// scores never computed. Kept for backward: the projections `[T, 3d]`, the heads' outputs
/// `[T, d]` and the probabilities `[heads, T, T]`.
///
/// Backward per head, with `P` the probabilities and `dY_h` the heads' output gradient:
/// `dV = Pᵀ·dY_h`, `dP = dY_h·Vᵀ`, `dS = P ⊙ (dP - rowsum(dP ⊙ P)) / √e`, `dQ = dS·K`,
/// `dK = dSᵀ·Q`; then the two projections' backward.
public final class Attention: Layer {
    public let length: Int, dimension: Int, heads: Int, causal: Bool
    public var inputShape: Shape { [length, dimension] }
    public var outputShape: Shape { [length, dimension] }
    private let qkv: Linear, proj: Linear
    /// The last forward's projections `[N, T, 3d]`.
    private var projections: UnsafePointer<Float>?
    /// `[N, T, d]`, `[N, heads, T, T]`; backward's `[N, T, 3d]` and `[N, heads, T, T]`.
    private let mixed: FloatBuffer, probabilities: FloatBuffer, projectionsGrad: FloatBuffer, scoresGrad: FloatBuffer
    /// `S = Q·Kᵀ`, `Y = P·V`, `dV = Pᵀ·dY`, `dP = dY·Vᵀ`, `dQ = dS·K`, `dK = dSᵀ·Q`, over (sample, head).
    private let scores, mix, valuesGrad, probabilitiesGrad, queriesGrad, keysGrad: StridedMatrixProduct

    public init(length: Int, dimension: Int, heads: Int, causal: Bool, maxBatch: Int) {
        precondition(heads > 0 && dimension % heads == 0, "heads must divide the width")
        self.length = length; self.dimension = dimension; self.heads = heads; self.causal = causal
        let (t, d, e) = (length, dimension, dimension / heads), rows = maxBatch * length
        qkv = Linear(inFeatures: d, outFeatures: 3 * d, maxBatch: maxBatch, positions: t)
        proj = Linear(inFeatures: d, outFeatures: d, maxBatch: maxBatch, positions: t)
        mixed = FloatBuffer(count: rows * d)
        probabilities = FloatBuffer(count: maxBatch * heads * t * t)
        projectionsGrad = FloatBuffer(count: rows * 3 * d)
        scoresGrad = FloatBuffer(count: maxBatch * heads * t * t)
        // Views over (sample, head): in the projections' rows, head h's columns start at h·e.
        let rowsOf3d = [t * 3 * d, e], rowsOfD = [t * d, e], square = [heads * t * t, t * t]
        func view(_ leading: Int, _ batch: [Int], transposed: Bool = false) -> StridedMatrixProduct.Layout {
            .rowMajor(leading: leading, transposed: transposed, batchStrides: batch)
        }
        let batch = [maxBatch, heads]
        scores = StridedMatrixProduct(batch: batch, n: t, a: view(3 * d, rowsOf3d), b: view(3 * d, rowsOf3d, transposed: true),
                                      c: view(t, square))
        mix = StridedMatrixProduct(batch: batch, n: e, a: view(t, square), b: view(3 * d, rowsOf3d), c: view(d, rowsOfD))
        valuesGrad = StridedMatrixProduct(batch: batch, n: e, a: view(t, square, transposed: true), b: view(d, rowsOfD),
                                          c: view(3 * d, rowsOf3d))
        probabilitiesGrad = StridedMatrixProduct(batch: batch, n: t, a: view(d, rowsOfD),
                                                 b: view(3 * d, rowsOf3d, transposed: true), c: view(t, square))
        queriesGrad = StridedMatrixProduct(batch: batch, n: e, a: view(t, square), b: view(3 * d, rowsOf3d),
                                           c: view(3 * d, rowsOf3d))
        keysGrad = StridedMatrixProduct(batch: batch, n: e, a: view(t, square, transposed: true), b: view(3 * d, rowsOf3d),
                                        c: view(3 * d, rowsOf3d))
    }

    public var parameterSpecs: [ParameterSpec] {
        qkv.parameterSpecs.map { ParameterSpec("qkv.\($0.name)", $0.shape) }
            + proj.parameterSpecs.map { ParameterSpec("proj.\($0.name)", $0.shape) }
    }

    /// Multiply-adds ×2 of one sample: the two projections, `Q·Kᵀ` and `P·V` (`4·T²·d`; the
    /// masked half is computed too).
    public var forwardFLOPsPerSample: Int {
        qkv.forwardFLOPsPerSample + proj.forwardFLOPsPerSample + 4 * length * length * dimension
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        let offset = 3 * dimension * (dimension + 1)
        qkv.bind(parameters: parameters, gradients: gradients)
        proj.bind(parameters: parameters + offset, gradients: gradients + offset)
    }

    /// PyTorch's `nn.Linear` default for both projections: U(-1/√d, 1/√d) for weights and biases.
    public func initializeParameters(using rng: inout SplitMix64) {
        qkv.initializeParameters(using: &rng)
        proj.initializeParameters(using: &rng)
    }

    private var width: Int { dimension / heads }
    private var scale: Float { 1 / Float(width).squareRoot() }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let (t, d, e) = (length, dimension, width)
        let q = qkv.forward(x, batch: batch)
        projections = q
        let p = probabilities.pointer
        scores.run(batchSize: batch, m: t, k: e, a: q, b: q + d, c: p)
        for row in 0..<(batch * heads * t) {
            let i = row % t
            softmaxRow(p + row * t, valid: causal ? i + 1 : t, count: t)
        }
        mix.run(batchSize: batch, m: t, k: t, a: p, b: q + 2 * d, c: mixed.pointer)
        return proj.forward(mixed.pointer, batch: batch)
    }

    /// `row[0..<valid] ← softmax(scale · row[0..<valid])`, `row[valid..<count] ← 0` (the masked scores).
    @inline(__always)
    private func softmaxRow(_ row: UnsafeMutablePointer<Float>, valid: Int, count: Int) {
        var m = row[0]
        for j in 1..<valid { m = max(m, row[j]) }
        let s = scale
        var sum: Float = 0
        for j in 0..<valid {
            let e = expf((row[j] - m) * s)
            row[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<valid { row[j] *= inverse }
        if valid < count { (row + valid).update(repeating: 0, count: count - valid) }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let q = projections else { preconditionFailure("Attention.backward before forward") }
        let (t, d, e) = (length, dimension, width)
        let dMixed = proj.backward(dy, batch: batch, needsInputGradient: true)!
        let p = probabilities.pointer, ds = scoresGrad.pointer, dq = projectionsGrad.pointer
        valuesGrad.run(batchSize: batch, m: t, k: t, a: p, b: dMixed, c: dq + 2 * d)
        probabilitiesGrad.run(batchSize: batch, m: t, k: e, a: dMixed, b: q + 2 * d, c: ds)
        let s = scale
        for row in 0..<(batch * heads * t) {
            let pr = p + row * t, dr = ds + row * t, valid = causal ? row % t + 1 : t
            var dot: Float = 0
            for j in 0..<valid { dot += pr[j] * dr[j] }
            for j in 0..<valid { dr[j] = pr[j] * (dr[j] - dot) * s }
            if valid < t { (dr + valid).update(repeating: 0, count: t - valid) }
        }
        queriesGrad.run(batchSize: batch, m: t, k: t, a: ds, b: q + d, c: dq)
        keysGrad.run(batchSize: batch, m: t, k: t, a: ds, b: q, c: dq + d)
        return qkv.backward(dq, batch: batch, needsInputGradient: needsInputGradient)
    }
}
