import CohortTensor
import Foundation

/// Softmax cross-entropy over logits `[N, K]` and integer labels, as `F.cross_entropy`
/// (with `label_smoothing=ε`).
///
/// Per sample: `ℓ = logsumexp(z) - z_y`, computed with the max subtracted so that no
/// `exp` overflows. Gradient: `dz = (softmax(z) - onehot(y)) · scale`, where `scale` is
/// `1 / B` with B the *global* batch: each rank divides by the same B, so summing
/// gradients over ranks gives the gradient of the mean over the global batch.
///
/// With label smoothing ε the target is `q = (1 - ε)·onehot(y) + ε/K`:
/// `ℓ = logsumexp(z) - (1 - ε)·z_y - (ε/K)·Σ_k z_k` and `dz = (softmax(z) - q) · scale`.
/// Training minimises that; `evaluate` reports the plain loss unless asked for the smoothed one.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    /// ε in [0, 1): the share of the target spread evenly over the classes.
    public let labelSmoothing: Float
    private let logitGrad: FloatBuffer

    public init(classes: Int, maxBatch: Int, labelSmoothing: Float = 0) {
        precondition((0..<1).contains(labelSmoothing), "label smoothing must be in [0, 1)")
        self.classes = classes
        self.labelSmoothing = labelSmoothing
        logitGrad = FloatBuffer(count: maxBatch * classes)
    }

    public struct Result {
        /// `Σ_n ℓ_n` over the local batch (not divided by anything).
        public var lossSum: Double
        /// Samples whose arg-max logit (first on ties) equals the label.
        public var correct: Int
    }

    /// Loss and accuracy counts only (evaluation): the plain loss, or with `smoothed` the
    /// objective that `forwardBackward` differentiates.
    public func evaluate(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                         smoothed: Bool = false) -> Result {
        run(logits: logits, labels: labels, batch: batch, gradientScale: nil, smoothing: smoothed ? labelSmoothing : 0)
    }

    /// Loss, accuracy counts and `dL/dlogits` with `L = scale · Σ_n ℓ_n`.
    public func forwardBackward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                scale: Float) -> (Result, UnsafePointer<Float>) {
        (run(logits: logits, labels: labels, batch: batch, gradientScale: scale, smoothing: labelSmoothing),
         UnsafePointer(logitGrad.pointer))
    }

    private func run(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                     gradientScale: Float?, smoothing: Float) -> Result {
        let spread = smoothing / Float(classes)
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
            if smoothing == 0 {
                lossSum += Double(logf(sum) + m - z[y])
            } else {
                var zSum: Float = 0
                for k in 0..<classes { zSum += z[k] }
                lossSum += Double(logf(sum) + m - (1 - smoothing) * z[y] - spread * zSum)
            }
            if let scale = gradientScale {
                let factor = scale / sum
                if smoothing == 0 {
                    for k in 0..<classes { e[k] *= factor }
                } else {
                    for k in 0..<classes { e[k] = e[k] * factor - scale * spread }
                }
                e[y] -= scale * (1 - smoothing)
            }
        }
        return Result(lossSum: lossSum, correct: correct)
    }
}

extension SoftmaxCrossEntropy {
    /// Loss and accuracy of the mean of several views' probabilities (test-time augmentation):
    /// `p̄ = (1/V)·Σ_v softmax(z_v)`, `ℓ = -log p̄_y`, correct when `argmax p̄ = y`. `views`
    /// holds V pointers to logits `[batch, K]` of the same images seen differently. In double,
    /// with `log p̄_y` as a log-sum-exp over the views, so that no probability underflows to a
    /// loss of infinity. `predictions`, if given, receives each image's `argmax p̄` (`[batch]`).
    public func evaluate(views: [UnsafePointer<Float>], labels: UnsafePointer<Int32>, batch: Int,
                         predictions: UnsafeMutablePointer<Int>? = nil) -> Result {
        var lossSum = 0.0, correct = 0
        var logProbabilities = [Double](repeating: 0, count: views.count * classes)
        for n in 0..<batch {
            for (v, view) in views.enumerated() {
                let z = view + n * classes
                var m = z[0]
                for k in 1..<classes { m = max(m, z[k]) }
                var sum = 0.0
                for k in 0..<classes { sum += Foundation.exp(Double(z[k] - m)) }
                let lse = Double(m) + Foundation.log(sum)
                for k in 0..<classes { logProbabilities[v * classes + k] = Double(z[k]) - lse }
            }
            // log p̄_k = logsumexp_v(log p_vk) - log V, for every class k.
            var best = 0, bestValue = -Double.infinity, labelValue = 0.0
            let y = Int(labels[n])
            for k in 0..<classes {
                var m = -Double.infinity
                for v in views.indices { m = max(m, logProbabilities[v * classes + k]) }
                var sum = 0.0
                for v in views.indices { sum += Foundation.exp(logProbabilities[v * classes + k] - m) }
                let value = m + Foundation.log(sum / Double(views.count))
                if value > bestValue { (best, bestValue) = (k, value) }
                if k == y { labelValue = value }
            }
            lossSum -= labelValue
            if best == y { correct += 1 }
            predictions?[n] = best
        }
        return Result(lossSum: lossSum, correct: correct)
    }
}
