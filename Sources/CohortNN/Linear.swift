import CohortTensor

/// Fully connected layer: `y[N, O] = x[N, I] · Wᵀ + b`, with `W[O, I]`, `b[O]` (PyTorch's `nn.Linear`).
/// On a sequence `[T, I]` it maps every position, `[T, I] -> [T, O]` (as `nn.Linear` maps the
/// last dimension): the N·T rows are one product.
///
/// Initialisation: `W, b ~ U(-1/√I, 1/√I)`. `bias: false` leaves `b` out (`bias=False`).
/// Backward: `dW += dyᵀ · x`, `db += Σ_rows dy`, `dx = dy · W`. The three products are oneDNN's
/// (`StridedMatrixProduct`), W read in place as Wᵀ where needed.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    /// Rows per sample: a sequence's positions, or 1.
    public let positions: Int
    public let hasBias: Bool
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, bias: UnsafeMutablePointer<Float>?
    private var weightGrad: UnsafeMutablePointer<Float>!, biasGrad: UnsafeMutablePointer<Float>?
    private var input: UnsafePointer<Float>?
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// `y = x·Wᵀ + b`, `dW += dyᵀ·x`, `dx = dy·W`.
    private let forwardProduct: StridedMatrixProduct, weightGradProduct: StridedMatrixProduct
    private let inputGradProduct: StridedMatrixProduct

    /// `inputShape` may be any per-sample shape with `inFeatures` elements (e.g. `[C, H, W]`);
    /// with `positions` T, it is `[T, inFeatures]` and each position is mapped.
    public init(inFeatures: Int, outFeatures: Int, maxBatch: Int, inputShape: Shape? = nil, positions: Int = 1,
                bias: Bool = true) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.positions = positions
        hasBias = bias
        self.inputShape = inputShape ?? (positions == 1 ? [inFeatures] : [positions, inFeatures])
        precondition(self.inputShape.elementCount == inFeatures * positions)
        outputShape = positions == 1 ? [outFeatures] : [positions, outFeatures]
        output = FloatBuffer(count: maxBatch * positions * outFeatures)
        inputGrad = FloatBuffer(count: maxBatch * positions * inFeatures)
        forwardProduct = StridedMatrixProduct(n: outFeatures, a: .rowMajor(leading: inFeatures),
                                              b: .rowMajor(leading: inFeatures, transposed: true),
                                              c: .rowMajor(leading: outFeatures), bias: bias)
        weightGradProduct = StridedMatrixProduct(n: inFeatures, a: .rowMajor(leading: outFeatures, transposed: true),
                                                 b: .rowMajor(leading: inFeatures), c: .rowMajor(leading: inFeatures),
                                                 accumulate: true)
        inputGradProduct = StridedMatrixProduct(n: inFeatures, a: .rowMajor(leading: outFeatures),
                                                b: .rowMajor(leading: inFeatures), c: .rowMajor(leading: inFeatures))
    }

    public var forwardFLOPsPerSample: Int { 2 * positions * inFeatures * outFeatures }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight", [outFeatures, inFeatures])] + (hasBias ? [ParameterSpec("bias", [outFeatures])] : [])
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; weightGrad = gradients
        if hasBias { bias = parameters + outFeatures * inFeatures; biasGrad = gradients + outFeatures * inFeatures }
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        let bound = 1 / Float(inFeatures).squareRoot()
        fillUniform(weight, count: outFeatures * inFeatures, bound: bound, rng: &rng)
        if let bias { fillUniform(bias, count: outFeatures, bound: bound, rng: &rng) }
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        forwardProduct.run(m: batch * positions, k: inFeatures, a: x, b: weight, c: output.pointer,
                           bias: bias.map { UnsafePointer($0) })
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let rows = batch * positions
        weightGradProduct.run(m: outFeatures, k: rows, a: dy, b: x, c: weightGrad)
        if let biasGrad { accumulateColumnSums(dy, rows: rows, columns: outFeatures, into: biasGrad) }
        guard needsInputGradient else { return nil }
        inputGradProduct.run(m: rows, k: outFeatures, a: dy, b: weight, c: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
