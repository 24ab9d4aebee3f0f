import CohortTensor
import Foundation

/// Adam (`torch.optim.Adam`) and, with `decoupled`, AdamW (`torch.optim.AdamW`).
///
/// Adam: `g ← g + λθ`. AdamW: `θ ← θ(1 - lr·λ)` instead. Then
/// `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`,
/// `θ ← θ - (lr / (1-β₁ᵗ)) · m / (√v / √(1-β₂ᵗ) + ε)`.
/// Defaults: β = (0.9, 0.999), ε = 1e-8; λ = 0 (Adam) or 0.01 (AdamW).
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool
    public var stepCount = 0
    private let count: Int
    private let firstMoment: FloatBuffer, secondMoment: FloatBuffer

    /// The stretches of the parameters, each with whether weight decay applies to it.
    private let segments: [(range: Range<Int>, decays: Bool)]

    /// `decayed`: the parameters weight decay applies to (ascending, disjoint; nil: all), as
    /// PyTorch's parameter groups with and without `weight_decay`.
    public init(count: Int, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false, decayed: [Range<Int>]? = nil) {
        self.count = count; self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay; self.decoupled = decoupled
        firstMoment = FloatBuffer(count: count)
        secondMoment = FloatBuffer(count: count)
        segments = WeightDecayScope.segments(count: count, decayed: decayed)
    }

    public var stateTensors: [(name: String, buffer: FloatBuffer)] {
        [("exp_avg", firstMoment), ("exp_avg_sq", secondMoment)]
    }

    public func step(parameters p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>) {
        stepCount += 1
        let t = Double(stepCount)
        // Bias corrections in double, then rounded once, as PyTorch does for its scalar step size.
        let correction1 = 1 - pow(Double(beta1), t)
        let correction2Root = Float((1 - pow(Double(beta2), t)).squareRoot())
        let stepSize = Float(Double(learningRate) / correction1)
        let b1 = beta1, b2 = beta2, eps = epsilon
        let m = firstMoment.pointer, v = secondMoment.pointer
        for (range, decays) in segments {
            let decay = decays ? weightDecay : 0
            let coupledDecay = decoupled ? 0 : decay
            let shrink = decoupled ? 1 - learningRate * decay : 1
            for i in range {
                if decoupled { p[i] *= shrink }
                let d = g[i] + coupledDecay * p[i]
                m[i] = b1 * m[i] + (1 - b1) * d
                v[i] = b2 * v[i] + (1 - b2) * d * d
                let denominator = v[i].squareRoot() / correction2Root + eps
                p[i] -= stepSize * (m[i] / denominator)
            }
        }
    }
}
