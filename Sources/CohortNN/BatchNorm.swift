import CohortTensor

/// Batch normalisation over the channel dimension of `[C, H, W]` (PyTorch's `nn.BatchNorm2d`) or
/// of `[C]` and `[C, L]` (`nn.BatchNorm1d`), with PyTorch's defaults: momentum 0.1, eps 1e-5, an
/// affine `γ` (`weight`, initially 1) and `β` (`bias`, initially 0).
///
/// Training normalises each channel with the mean and biased variance of the batch's values of
/// it, over the `M = N·H·W` positions: `x̂ = (x - μ)/√(σ² + ε)`, `y = γ·x̂ + β`, and moves the running
/// statistics towards them, `r_μ ← (1 - m)·r_μ + m·μ`, `r_σ² ← (1 - m)·r_σ² + m·σ²·M/(M - 1)`
/// (unbiased), counting the batches in `num_batches_tracked`. Evaluation normalises with the
/// running statistics instead. Backward (training):
/// `dγ = Σ dy·x̂`, `dβ = Σ dy`, `dx = γ/√(σ² + ε) · (dy - dβ/M - x̂·dγ/M)`.
///
/// The per-channel sums are taken over each sample's plane in float lanes and added in double
/// (`planeMoments`), so `σ² = Σx²/M - μ²` keeps float's precision.
/// `statisticsSum`, when set, adds a vector of per-channel sums over every replica and rank
/// (`--sync-batchnorm`): the statistics are then the whole global batch's.
public final class BatchNorm: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let channels: Int
    /// Values of one channel in one sample: `H·W` (2-D), `L` or 1 (1-D).
    public let plane: Int
    public let momentum: Double, epsilon: Double
    private var gamma: UnsafeMutablePointer<Float>!, beta: UnsafeMutablePointer<Float>!
    private var gammaGrad: UnsafeMutablePointer<Float>!, betaGrad: UnsafeMutablePointer<Float>!
    private var runningMean: UnsafeMutablePointer<Float>!, runningVariance: UnsafeMutablePointer<Float>!
    /// PyTorch's `num_batches_tracked`, kept as a float in the buffer (exact up to 2^24 batches).
    private var batchesTracked: UnsafeMutablePointer<Float>!
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// The last training forward's input, mean and `1/√(σ² + ε)` per channel, and position count M.
    private var lastInput: UnsafePointer<Float>?
    private var mean: [Double], inverseDeviation: [Double]
    /// Per-channel sums of a pass, then the position count: `[2·C + 1]`, kept from pass to pass.
    private var sums: [Double]
    private var positions = 0
    private var training = true
    /// Set by `Network` when a ReLU follows: the forward writes `max(y, 0)` itself and the backward
    /// applies the ReLU's mask `[y > 0]` to the gradient it receives (the ReLU does neither).
    var rectifiesOutput = false

    /// Adds `values` (per-channel sums, and last the position count) over every replica and rank
    /// of the step, in place; `nil`: each replica normalises with its own micro-batch.
    public var statisticsSum: ((UnsafeMutableBufferPointer<Double>) -> Void)?

    public init(shape: Shape, maxBatch: Int, momentum: Double = 0.1, epsilon: Double = 1e-5) {
        precondition(!shape.isEmpty && shape.count <= 3, "batch norm normalises [C], [C, L] or [C, H, W]")
        inputShape = shape
        channels = shape[0]
        plane = shape.elementCount / shape[0]
        self.momentum = momentum; self.epsilon = epsilon
        output = FloatBuffer(count: maxBatch * shape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * shape.elementCount)
        mean = Array(repeating: 0, count: shape[0])
        inverseDeviation = Array(repeating: 0, count: shape[0])
        sums = Array(repeating: 0, count: 2 * shape[0] + 1)
    }

    public var parameterSpecs: [ParameterSpec] { [ParameterSpec("weight", [channels]), ParameterSpec("bias", [channels])] }
    public var bufferSpecs: [ParameterSpec] {
        [ParameterSpec("running_mean", [channels]), ParameterSpec("running_var", [channels]),
         ParameterSpec("num_batches_tracked", [], isCount: true)]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        gamma = parameters; beta = parameters + channels
        gammaGrad = gradients; betaGrad = gradients + channels
    }

    public func bind(buffers: UnsafeMutablePointer<Float>) {
        runningMean = buffers; runningVariance = buffers + channels; batchesTracked = buffers + 2 * channels
        runningMean.update(repeating: 0, count: channels)
        runningVariance.update(repeating: 1, count: channels)
        batchesTracked.pointee = 0
    }

    /// `γ = 1`, `β = 0`: PyTorch's `reset_parameters`, which draws no random numbers.
    public func initializeParameters(using rng: inout SplitMix64) {
        gamma.update(repeating: 1, count: channels)
        beta.update(repeating: 0, count: channels)
    }

    public func setTraining(_ training: Bool) { self.training = training }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let y = output.pointer
        if !training {
            for c in 0..<channels {
                let scale = Double(gamma[c]) / (Double(runningVariance[c]) + epsilon).squareRoot()
                normalize(x, into: y, channel: c, batch: batch, scale: Float(scale),
                          shift: Float(Double(beta[c]) - Double(runningMean[c]) * scale))
            }
            return UnsafePointer(y)
        }
        lastInput = x
        // Per channel Σx and Σx², then M: summed over the global batch under --sync-batchnorm.
        sums.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        for n in 0..<batch {
            for c in 0..<channels {
                let (s1, s2) = planeMoments(x + (n * channels + c) * plane, count: plane)
                sums[c] += s1; sums[channels + c] += s2
            }
        }
        sums[2 * channels] = Double(batch * plane)
        sums.withUnsafeMutableBufferPointer { statisticsSum?($0) }
        let m = sums[2 * channels]
        positions = Int(m)
        for c in 0..<channels {
            let mu = sums[c] / m, variance = max(sums[channels + c] / m - mu * mu, 0)
            mean[c] = mu
            inverseDeviation[c] = 1 / (variance + epsilon).squareRoot()
            runningMean[c] = Float((1 - momentum) * Double(runningMean[c]) + momentum * mu)
            let unbiased = m > 1 ? variance * m / (m - 1) : variance
            runningVariance[c] = Float((1 - momentum) * Double(runningVariance[c]) + momentum * unbiased)
            let scale = Double(gamma[c]) * inverseDeviation[c]
            normalize(x, into: y, channel: c, batch: batch, scale: Float(scale), shift: Float(Double(beta[c]) - mu * scale))
        }
        batchesTracked.pointee += 1
        return UnsafePointer(y)
    }

    /// `y = scale·x + shift` (rectified when a ReLU follows) over channel `c` of every sample.
    private func normalize(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, channel c: Int, batch: Int,
                           scale: Float, shift: Float) {
        for n in 0..<batch {
            let offset = (n * channels + c) * plane
            affine(x + offset, y + offset, count: plane, scale: scale, shift: shift, rectify: rectifiesOutput)
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = lastInput else { preconditionFailure("BatchNorm.backward before a training forward") }
        // Per channel Σg and Σg·x̂ (g = dy, masked by the fused ReLU), over the global batch under
        // --sync-batchnorm.
        let y = rectifiesOutput ? UnsafePointer(output.pointer) : nil
        sums.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        for n in 0..<batch {
            for c in 0..<channels {
                let offset = (n * channels + c) * plane
                let (s1, s2) = planeGradientSums(dy + offset, x + offset, rectified: y.map { $0 + offset },
                                                 mean: Float(mean[c]), count: plane)
                sums[c] += s1; sums[channels + c] += s2 * inverseDeviation[c]
            }
        }
        // The local sums are this replica's gradients of γ and β.
        for c in 0..<channels {
            betaGrad[c] += Float(sums[c])
            gammaGrad[c] += Float(sums[channels + c])
        }
        guard needsInputGradient else { return nil }
        sums.withUnsafeMutableBufferPointer { statisticsSum?($0) }
        let m = Double(positions)
        for c in 0..<channels {
            let k = Double(gamma[c]) * inverseDeviation[c]
            let meanDy = sums[c] / m, meanDyXhat = sums[channels + c] / m
            // dx = k·(g - meanG - x̂·meanGXhat), with x̂ = (x - μ)·invσ: dx = a·g + b·x + c0.
            let a = Float(k), b = Float(-k * meanDyXhat * inverseDeviation[c])
            let c0 = Float(-k * meanDy + k * meanDyXhat * inverseDeviation[c] * mean[c])
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                normalizationInputGradient(dy + offset, x + offset, rectified: y.map { $0 + offset },
                                           inputGrad.pointer + offset, count: plane, a: a, b: b, c: c0)
            }
        }
        return UnsafePointer(inputGrad.pointer)
    }
}
