import CohortTensor

/// Adagrad as `torch.optim.Adagrad`:
/// `g ← g + λθ`, `s ← s + g²`, `θ ← θ - lr_t · g / (√s + ε)`, with
/// `lr_t = lr / (1 + (t - 1)·decay)`. Defaults: ε = 1e-10, initial accumulator 0, decay 0.
public final class Adagrad: Optimizer {
    public var learningRate: Float
    public let learningRateDecay: Float, weightDecay: Float, epsilon: Float
    public var stepCount = 0
    private let count: Int
    private let sumOfSquares: FloatBuffer

    public init(count: Int, learningRate: Float = 1e-2, learningRateDecay: Float = 0, weightDecay: Float = 0,
                initialAccumulator: Float = 0, epsilon: Float = 1e-10) {
        self.count = count; self.learningRate = learningRate; self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay; self.epsilon = epsilon
        sumOfSquares = FloatBuffer(count: count)
        if initialAccumulator != 0 { sumOfSquares.pointer.update(repeating: initialAccumulator, count: count) }
    }

    public var stateTensors: [(name: String, buffer: FloatBuffer)] { [("sum", sumOfSquares)] }

    public func step(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>) {
        stepCount += 1
        let clr = learningRate / (1 + Float(stepCount - 1) * learningRateDecay)
        let wd = weightDecay, eps = epsilon, s = sumOfSquares.pointer
        for i in 0..<count {
            let d = g[i] + wd * p[i]
            s[i] += d * d
            p[i] -= clr * (d / (s[i].squareRoot() + eps))
        }
    }
}
