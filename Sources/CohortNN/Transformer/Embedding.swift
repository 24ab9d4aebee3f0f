import CohortTensor

/// A table of learned vectors indexed by token (PyTorch's `nn.Embedding`): tokens `[T]`, each a
/// whole number in `0..<vocabulary` carried as a float, -> `[T, d]` with `y[t] = W[x[t]]`.
///
/// Parameter `weight [V, d]`, initialised N(0, 1) as PyTorch does. Backward adds each position's
/// gradient to its token's row, `dW[x[t]] += dy[t]`; tokens have no gradient.
public final class Embedding: Layer {
    public let vocabulary: Int, dimension: Int, length: Int
    public let inputShape: Shape, outputShape: Shape
    private var weight: UnsafeMutablePointer<Float>!, weightGrad: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    private let output: FloatBuffer

    public init(vocabulary: Int, dimension: Int, length: Int, maxBatch: Int) {
        self.vocabulary = vocabulary; self.dimension = dimension; self.length = length
        inputShape = [length]; outputShape = [length, dimension]
        output = FloatBuffer(count: maxBatch * length * dimension)
    }

    public var parameterSpecs: [ParameterSpec] { [ParameterSpec("weight", [vocabulary, dimension])] }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters; weightGrad = gradients
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        for i in 0..<(vocabulary * dimension) { weight[i] = rng.normal(std: 1) }
    }

    /// The token at `value`. A text's tokens are always in the table (`TextCorpus` makes them from
    /// its own vocabulary); the clamp keeps a caller's out-of-range input from reading or writing
    /// outside it.
    @inline(__always) private func token(_ value: Float) -> Int { min(max(Int(value), 0), vocabulary - 1) }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        let y = output.pointer
        for p in 0..<(batch * length) {
            (y + p * dimension).update(from: weight + token(x[p]) * dimension, count: dimension)
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Embedding.backward before forward") }
        for p in 0..<(batch * length) {
            let row = weightGrad + token(x[p]) * dimension, g = dy + p * dimension
            for i in 0..<dimension { row[i] += g[i] }
        }
        return nil
    }
}

/// Learned positions added to a sequence: `[T, d] -> [T, d]`, `y[t] = x[t] + P[t]` for the
/// first T rows of `P [L, d]`, L ≥ T (the peer's `x + pos[:T]`). Its one tensor takes the
/// layer's own name (`pos`, a bare `nn.Parameter`), initialised N(0, 0.02).
/// Backward: `dP[t] += Σ_n dy[n, t]`, `dx = dy`.
public final class Positions: Layer {
    public let length: Int, positions: Int, dimension: Int
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    private var table: UnsafeMutablePointer<Float>!, tableGrad: UnsafeMutablePointer<Float>!
    private let output: FloatBuffer

    /// `positions` (L): the rows the table holds, at least the sequence's `length` (T).
    public init(length: Int, dimension: Int, positions: Int? = nil, maxBatch: Int) {
        precondition((positions ?? length) >= length, "fewer positions than the sequence has")
        self.length = length; self.dimension = dimension; self.positions = positions ?? length
        inputShape = [length, dimension]
        output = FloatBuffer(count: maxBatch * length * dimension)
    }

    public var parameterSpecs: [ParameterSpec] { [ParameterSpec("", [positions, dimension])] }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        table = parameters; tableGrad = gradients
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        for i in 0..<(positions * dimension) { table[i] = rng.normal(std: 0.02) }
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let y = output.pointer, size = length * dimension
        for n in 0..<batch {
            let xs = x + n * size, ys = y + n * size
            for i in 0..<size { ys[i] = xs[i] + table[i] }
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        let size = length * dimension
        for n in 0..<batch {
            let g = dy + n * size
            for i in 0..<size { tableGrad[i] += g[i] }
        }
        return needsInputGradient ? dy : nil
    }
}
