import CohortTensor

/// RMSprop as `torch.optim.RMSprop` (not centered):
/// `g ← g + λθ`, `s ← αs + (1-α)g²`, `a = √s + ε`;
/// without momentum `θ ← θ - lr·g/a`; with momentum μ: `b ← μb + g/a`, `θ ← θ - lr·b`.
/// Defaults: α = 0.99, ε = 1e-8.
public final class RMSProp: Optimizer {
    public var learningRate: Float
    public let alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float
    public var stepCount = 0
    private let count: Int
    private let squareAverage: FloatBuffer, momentumBuffer: FloatBuffer

    public init(count: Int, learningRate: Float = 1e-2, alpha: Float = 0.99, epsilon: Float = 1e-8,
                momentum: Float = 0, weightDecay: Float = 0) {
        self.count = count; self.learningRate = learningRate; self.alpha = alpha; self.epsilon = epsilon
        self.momentum = momentum; self.weightDecay = weightDecay
        squareAverage = FloatBuffer(count: count)
        momentumBuffer = FloatBuffer(count: momentum != 0 ? count : 0)
    }

    public var stateTensors: [(name: String, buffer: FloatBuffer)] {
        [("square_avg", squareAverage)] + (momentum != 0 ? [("momentum_buffer", momentumBuffer)] : [])
    }

    public func step(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>) {
        stepCount += 1
        let lr = learningRate, a = alpha, eps = epsilon, wd = weightDecay, mu = momentum
        let s = squareAverage.pointer, b = momentumBuffer.pointer
        for i in 0..<count {
            let d = g[i] + wd * p[i]
            s[i] = a * s[i] + (1 - a) * d * d
            let avg = s[i].squareRoot() + eps
            if mu != 0 {
                b[i] = mu * b[i] + d / avg
                p[i] -= lr * b[i]
            } else {
                p[i] -= lr * (d / avg)
            }
        }
    }
}
