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
/// (`planeMoments`; `blockedPlaneMoments` where the maps lie channel-blocked, `layout`), so
/// `σ² = Σx²/M - μ²` keeps float's precision.
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
    private let inputGrad: FloatBuffer
    /// Allocated on first use: unused when the output is folded into a residual sum.
    private lazy var output = FloatBuffer(count: maxBatch * inputShape.elementCount)
    private let maxBatch: Int
    /// The last training forward's input, mean and `1/√(σ² + ε)` per channel, and position count M.
    private var lastInput: UnsafePointer<Float>?
    private var mean: [Double], inverseDeviation: [Double]
    /// Per channel: the mean in float (what the gradient sums centre on), the affine map of the
    /// last forward `y = scale·x + shift`, and backward's `dx = a·g + b·x + c`.
    private var floatMean: [Float]
    private let scale: FloatBuffer, shift: FloatBuffer
    private var gradientA: [Float], gradientB: [Float], gradientC: [Float]
    /// Per-channel sums of a pass, then the position count: `[2·C + 1]`, kept from pass to pass.
    private var sums: [Double]
    private var positions = 0
    private var training = true
    /// Set by `Network` when a ReLU follows: the forward writes `max(y, 0)` itself and the backward
    /// applies the ReLU's mask `[y > 0]` to the gradient it receives (the ReLU does neither).
    var rectifiesOutput = false
    /// Set by `Residual` when this layer closes its body or shortcut: the forward computes the
    /// affine map (`affineMap`) and returns its input, and the block's sum applies the map as it
    /// adds (`residualPlaneSum`), so the normalised maps are never written.
    var foldedIntoSum = false
    /// How the feature maps lie (`[C, H, W]` inputs only); set by `Network` before the first pass.
    var layout = ActivationLayout.planar

    /// Adds `values` (per-channel sums, and last the position count) over every replica and rank
    /// of the step, in place; `nil`: each replica normalises with its own micro-batch.
    public var statisticsSum: ((UnsafeMutableBufferPointer<Double>) -> Void)?

    public init(shape: Shape, maxBatch: Int, momentum: Double = 0.1, epsilon: Double = 1e-5) {
        precondition(!shape.isEmpty && shape.count <= 3, "batch norm normalises [C], [C, L] or [C, H, W]")
        inputShape = shape
        channels = shape[0]
        plane = shape.elementCount / shape[0]
        self.momentum = momentum; self.epsilon = epsilon
        self.maxBatch = maxBatch
        inputGrad = FloatBuffer(count: maxBatch * shape.elementCount)
        mean = Array(repeating: 0, count: shape[0])
        inverseDeviation = Array(repeating: 0, count: shape[0])
        let zeros = [Float](repeating: 0, count: shape[0])
        floatMean = zeros; scale = FloatBuffer(zeros); shift = FloatBuffer(zeros)
        gradientA = zeros; gradientB = zeros; gradientC = zeros
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
        if !training {
            for c in 0..<channels {
                let k = Double(gamma[c]) / (Double(runningVariance[c]) + epsilon).squareRoot()
                scale[c] = Float(k); shift[c] = Float(Double(beta[c]) - Double(runningMean[c]) * k)
            }
            return normalize(x, batch: batch)
        }
        lastInput = x
        // Per channel Σx and Σx², then M: summed over the global batch under --sync-batchnorm.
        sums.withUnsafeMutableBufferPointer { sums in
            sums.update(repeating: 0)
            let s1 = sums.baseAddress!, s2 = s1 + channels
            forEachPlane(batch: batch) { offset, first, planeSums in
                switch layout {
                case .planar:
                    (planeSums[0], planeSums[1]) = planeMoments(x + offset, count: plane)
                case .blocked(let b):
                    blockedPlaneMoments(x + offset, positions: plane, block: b, sums: planeSums, squares: planeSums + b)
                }
                let width = layout.channelsPerRun
                for l in 0..<width { s1[first + l] += planeSums[l]; s2[first + l] += planeSums[width + l] }
            }
            sums[2 * channels] = Double(batch * plane)
            statisticsSum?(sums)
        }
        let m = sums[2 * channels]
        positions = Int(m)
        for c in 0..<channels {
            let mu = sums[c] / m, variance = max(sums[channels + c] / m - mu * mu, 0)
            mean[c] = mu; floatMean[c] = Float(mu)
            inverseDeviation[c] = 1 / (variance + epsilon).squareRoot()
            runningMean[c] = Float((1 - momentum) * Double(runningMean[c]) + momentum * mu)
            let unbiased = m > 1 ? variance * m / (m - 1) : variance
            runningVariance[c] = Float((1 - momentum) * Double(runningVariance[c]) + momentum * unbiased)
            let k = Double(gamma[c]) * inverseDeviation[c]
            scale[c] = Float(k); shift[c] = Float(Double(beta[c]) - mu * k)
        }
        batchesTracked.pointee += 1
        return normalize(x, batch: batch)
    }

    /// `y = scale[c]·x + shift[c]` (rectified when a ReLU follows) over every sample, or x itself
    /// when a residual sum applies the map.
    private func normalize(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        if foldedIntoSum { return x }
        let y = output.pointer, map = affineMap
        forEachPlane(batch: batch) { offset, first in
            planeAffine(x + offset, y + offset, positions: plane, block: layout.channelsPerRun, map.from(first),
                        rectify: rectifiesOutput)
        }
        return UnsafePointer(y)
    }

    /// The last forward's `y = scale[c]·x + shift[c]`, channel by channel.
    var affineMap: ChannelAffine { ChannelAffine(scale: scale.pointer, shift: shift.pointer) }

    /// `ActivationLayout.forEachPlane` over this layer's maps.
    private func forEachPlane(batch: Int, _ body: (Int, Int) -> Void) {
        layout.forEachPlane(batch: batch, channels: channels, plane: plane, body)
    }

    /// `forEachPlane`, with room for two sums per channel of the plane (`planeSums[0..<w]` and
    /// `planeSums[w..<2w]`, w = `layout.channelsPerRun`).
    private func forEachPlane(batch: Int, _ body: (Int, Int, UnsafeMutablePointer<Double>) -> Void) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * layout.channelsPerRun) { planeSums in
            forEachPlane(batch: batch) { offset, first in body(offset, first, planeSums.baseAddress!) }
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = lastInput else { preconditionFailure("BatchNorm.backward before a training forward") }
        // Per channel Σg and Σg·x̂ (g = dy, masked by the fused ReLU, whose mask the passes take
        // again from x and the forward's affine map), over the global batch under --sync-batchnorm.
        let map: ChannelAffine? = rectifiesOutput ? affineMap : nil
        sums.withUnsafeMutableBufferPointer { sums in
            sums.update(repeating: 0)
            let s1 = sums.baseAddress!, s2 = s1 + channels
            floatMean.withUnsafeBufferPointer { means in
                forEachPlane(batch: batch) { offset, first, planeSums in
                    switch layout {
                    case .planar:
                        (planeSums[0], planeSums[1]) = planeGradientSums(dy + offset, x + offset,
                                                                         rectifiedBy: map?.at(first),
                                                                         mean: means[first], count: plane)
                    case .blocked(let b):
                        blockedPlaneGradientSums(dy + offset, x + offset, rectifiedBy: map?.from(first),
                                                 mean: means.baseAddress! + first, positions: plane, block: b,
                                                 sums: planeSums, projected: planeSums + b)
                    }
                    let width = layout.channelsPerRun
                    for l in 0..<width {
                        s1[first + l] += planeSums[l]; s2[first + l] += planeSums[width + l] * inverseDeviation[first + l]
                    }
                }
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
        let dx = inputGrad.pointer
        for c in 0..<channels {
            let k = Double(gamma[c]) * inverseDeviation[c]
            let meanDy = sums[c] / m, meanDyXhat = sums[channels + c] / m
            // dx = k·(g - meanG - x̂·meanGXhat), with x̂ = (x - μ)·invσ: dx = a·g + b·x + c0.
            gradientA[c] = Float(k)
            gradientB[c] = Float(-k * meanDyXhat * inverseDeviation[c])
            gradientC[c] = Float(-k * meanDy + k * meanDyXhat * inverseDeviation[c] * mean[c])
        }
        gradientA.withUnsafeBufferPointer { a in
            gradientB.withUnsafeBufferPointer { b in
                gradientC.withUnsafeBufferPointer { c in
                    forEachPlane(batch: batch) { offset, first in
                        planeInputGradient(dy + offset, x + offset, rectifiedBy: map?.from(first), dx + offset,
                                           positions: plane, block: layout.channelsPerRun, a: a.baseAddress! + first,
                                           b: b.baseAddress! + first, c: c.baseAddress! + first)
                    }
                }
            }
        }
        return UnsafePointer(dx)
    }
}
