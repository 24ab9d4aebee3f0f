import CohortTensor
import Foundation

/// Softmax cross-entropy over logits `[N, K]` and integer labels, as `F.cross_entropy`.
///
/// Per sample: `ℓ = logsumexp(z) - z_y`, computed with the max subtracted so that no
/// `exp` overflows. Gradient: `dz = (softmax(z) - onehot(y)) · scale`, where `scale` is
/// `1 / B` with B the *global* batch: each rank divides by the same B, so summing
/// gradients over ranks gives the gradient of the mean over the global batch.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    private let logitGrad: FloatBuffer

    public init(classes: Int, maxBatch: Int) {
        self.classes = classes
        logitGrad = FloatBuffer(count: maxBatch * classes)
    }

    public struct Result {
        /// `Σ_n ℓ_n` over the local batch (not divided by anything).
        public var lossSum: Double
        /// Samples whose arg-max logit (first on ties) equals the label.
        public var correct: Int
    }

    /// Loss and accuracy counts only (evaluation).
    public func evaluate(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> Result {
        run(logits: logits, labels: labels, batch: batch, gradientScale: nil)
    }

    /// Loss, accuracy counts and `dL/dlogits` with `L = scale · Σ_n ℓ_n`.
    public func forwardBackward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                scale: Float) -> (Result, UnsafePointer<Float>) {
        (run(logits: logits, labels: labels, batch: batch, gradientScale: scale), UnsafePointer(logitGrad.pointer))
    }

    private func run(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                     gradientScale: Float?) -> Result {
        var lossSum = 0.0
        var correct = 0
        for n in 0..<batch {
            let z = logits + n * classes
            let y = Int(labels[n])
            var best = 0
            for k in 1..<classes where z[k] > z[best] { best = k }
            if best == y { correct += 1 }
            let m = z[best]
            // e^(z - max) kept in the gradient row, then scaled to softmax · scale.
            let e = logitGrad.pointer + n * classes
            var sum: Float = 0
            for k in 0..<classes {
                e[k] = expf(z[k] - m)
                sum += e[k]
            }
            lossSum += Double(logf(sum) + m - z[y])
            if let scale = gradientScale {
                let factor = scale / sum
                for k in 0..<classes { e[k] *= factor }
                e[y] -= scale
            }
        }
        return Result(lossSum: lossSum, correct: correct)
    }
}
