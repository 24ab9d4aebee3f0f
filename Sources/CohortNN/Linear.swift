import CohortTensor

/// Fully connected layer: `y[N, O] = x[N, I] · Wᵀ + b`, with `W[O, I]`, `b[O]` (PyTorch's `nn.Linear`).
///
/// Initialisation: `W, b ~ U(-1/√I, 1/√I)`.
/// Backward: `dW += dyᵀ · x`, `db += Σ_n dy`, `dx = dy · W`.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!, biasGrad: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    private let output: FloatBuffer, inputGrad: FloatBuffer

    /// `inputShape` may be any per-sample shape with `inFeatures` elements (e.g. `[C, H, W]`).
    public init(inFeatures: Int, outFeatures: Int, maxBatch: Int, inputShape: Shape? = nil) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.inputShape = inputShape ?? [inFeatures]
        precondition(self.inputShape.elementCount == inFeatures)
        outputShape = [outFeatures]
        output = FloatBuffer(count: maxBatch * outFeatures)
        inputGrad = FloatBuffer(count: maxBatch * inFeatures)
    }

    public var forwardFLOPsPerSample: Int { 2 * inFeatures * outFeatures }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [outFeatures, inFeatures]), ParameterSpec("bias", [outFeatures])]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; bias = parameters + outFeatures * inFeatures
        weightGrad = gradients; biasGrad = gradients + outFeatures * inFeatures
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        let bound = 1 / Float(inFeatures).squareRoot()
        fillUniform(weight, count: outFeatures * inFeatures, bound: bound, rng: &rng)
        fillUniform(bias, count: outFeatures, bound: bound, rng: &rng)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        let y = output.pointer
        for n in 0..<batch { (y + n * outFeatures).update(from: bias, count: outFeatures) }
        sgemm(transB: true, m: batch, n: outFeatures, k: inFeatures, a: x, b: weight, beta: 1, c: y)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        sgemm(transA: true, m: outFeatures, n: inFeatures, k: batch, a: dy, b: x, beta: 1, c: weightGrad)
        accumulateColumnSums(dy, rows: batch, columns: outFeatures, into: biasGrad)
        guard needsInputGradient else { return nil }
        sgemm(m: batch, n: inFeatures, k: outFeatures, a: dy, b: weight, c: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
