import CohortTensor

/// Layer normalisation over the last dimension (PyTorch's `nn.LayerNorm(d)`): each row `x` of
/// d values becomes `y = (x - μ) / √(σ² + ε) · w + b`, with μ and the biased variance σ² of
/// that row. Parameters `weight [d]` (ones) and `bias [d]` (zeros); ε 1e-5 by default.
///
/// Backward, with `x̂ = (x - μ)·r`, `r = 1/√(σ² + ε)` and `g = dy·w`:
/// `dx = r·(g - mean(g) - x̂·mean(g·x̂))`, `dw += Σ dy·x̂`, `db += Σ dy` over the rows.
public final class LayerNorm: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let dimension: Int, epsilon: Float
    /// Rows per sample: the positions of a sequence `[T, d]`, or 1 for a vector `[d]`.
    private let rowsPerSample: Int
    private var weight: UnsafeMutablePointer<Float>!, bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!, biasGrad: UnsafeMutablePointer<Float>!
    /// The last forward's x̂ `[rows, d]` and r `[rows]`, which backward reads.
    private let normalized: FloatBuffer, reciprocalDeviation: FloatBuffer
    private let output: FloatBuffer, inputGrad: FloatBuffer

    public init(shape: Shape, epsilon: Float = 1e-5, maxBatch: Int) {
        precondition(!shape.isEmpty && shape.last! > 0)
        inputShape = shape
        dimension = shape.last!
        rowsPerSample = shape.elementCount / dimension
        self.epsilon = epsilon
        let values = maxBatch * shape.elementCount
        normalized = FloatBuffer(count: values)
        reciprocalDeviation = FloatBuffer(count: maxBatch * rowsPerSample)
        output = FloatBuffer(count: values)
        inputGrad = FloatBuffer(count: values)
    }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [dimension]), ParameterSpec("bias", [dimension])]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; bias = parameters + dimension
        weightGrad = gradients; biasGrad = gradients + dimension
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        weight.update(repeating: 1, count: dimension)
        bias.update(repeating: 0, count: dimension)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let d = dimension, inverse = 1 / Float(d)
        for row in 0..<(batch * rowsPerSample) {
            let xs = x + row * d, xh = normalized.pointer + row * d, ys = output.pointer + row * d
            // Two passes, the mean first, so that the variance does not lose digits to cancellation.
            let mean = rowSum(d) { xs[$0] } * inverse
            let squares = rowSum(d) { let c = xs[$0] - mean; return c * c }
            let r = 1 / (squares * inverse + epsilon).squareRoot()
            reciprocalDeviation.pointer[row] = r
            for i in 0..<d {
                let v = (xs[i] - mean) * r
                xh[i] = v
                ys[i] = v * weight[i] + bias[i]
            }
        }
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        let d = dimension, inverse = 1 / Float(d)
        for row in 0..<(batch * rowsPerSample) {
            let g = dy + row * d, xh = normalized.pointer + row * d
            for i in 0..<d {
                weightGrad[i] += g[i] * xh[i]
                biasGrad[i] += g[i]
            }
            guard needsInputGradient else { continue }
            let (w, gSum) = (weight!, rowSum(d) { g[$0] * weight[$0] })
            let gxSum = rowSum(d) { g[$0] * w[$0] * xh[$0] }
            let (gMean, gxMean, r) = (gSum * inverse, gxSum * inverse, reciprocalDeviation.pointer[row])
            let dx = inputGrad.pointer + row * d
            for i in 0..<d { dx[i] = r * (g[i] * weight[i] - gMean - xh[i] * gxMean) }
        }
        return needsInputGradient ? UnsafePointer(inputGrad.pointer) : nil
    }
}

/// `Σ_{i < d} term(i)` in eight running sums (i mod 8), added pairwise at the end: the order
/// a vector unit adds in, so the compiler keeps the loop in vector registers.
@inline(__always)
func rowSum(_ d: Int, _ term: (Int) -> Float) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= d {
        lanes += SIMD8(term(i), term(i + 1), term(i + 2), term(i + 3), term(i + 4), term(i + 5), term(i + 6), term(i + 7))
        i += 8
    }
    var sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    while i < d { sum += term(i); i += 1 }
    return sum
}
