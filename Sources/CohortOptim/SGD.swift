import CohortTensor

/// Stochastic gradient descent as `torch.optim.SGD`:
/// `g ← g + λθ`; with momentum μ: `b ← g` on the first step, then `b ← μb + (1 - τ)g`;
/// `g ← g + μb` (Nesterov) or `g ← b`; `θ ← θ - lr·g`.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    public var stepCount = 0
    private let count: Int
    private let momentumBuffer: FloatBuffer

    public init(count: Int, learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov needs momentum and no dampening")
        self.count = count; self.learningRate = learningRate; self.momentum = momentum
        self.dampening = dampening; self.weightDecay = weightDecay; self.nesterov = nesterov
        momentumBuffer = FloatBuffer(count: momentum != 0 ? count : 0)
    }

    public var stateTensors: [(name: String, buffer: FloatBuffer)] {
        momentum != 0 ? [("momentum_buffer", momentumBuffer)] : []
    }

    public func step(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>) {
        stepCount += 1
        let lr = learningRate, mu = momentum, wd = weightDecay, first = stepCount == 1
        let b = momentumBuffer.pointer
        for i in 0..<count {
            var d = g[i] + wd * p[i]
            if mu != 0 {
                b[i] = first ? d : mu * b[i] + (1 - dampening) * d
                d = nesterov ? d + mu * b[i] : b[i]
            }
            p[i] -= lr * d
        }
    }
}
