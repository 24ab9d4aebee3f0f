import CohortTensor
import Dispatch
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

    /// Threads that share each update (the rank's: `DataParallelRank` sets it).
    public var threads = 1 {
        didSet { work = Self.cut(segments, parts: threads) }
    }

    /// The stretches of the parameters, each with whether weight decay applies to it.
    private let segments: [(range: Range<Int>, decays: Bool)]
    /// Each segment cut into `threads` stretches, in order: thread t takes items t, t + threads, ...
    private var work: [(range: Range<Int>, decays: Bool)]

    static func cut(_ segments: [(range: Range<Int>, decays: Bool)], parts: Int) -> [(range: Range<Int>, decays: Bool)] {
        segments.flatMap { segment in
            (0..<parts).map { (range: stretch($0, of: segment.range, parts: parts), decays: segment.decays) }
        }
    }

    /// `decayed`: the parameters weight decay applies to (ascending, disjoint; nil: all), as
    /// PyTorch's parameter groups with and without `weight_decay`.
    public init(count: Int, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false, decayed: [Range<Int>]? = nil) {
        self.count = count; self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay; self.decoupled = decoupled
        firstMoment = FloatBuffer(count: count)
        secondMoment = FloatBuffer(count: count)
        segments = WeightDecayScope.segments(count: count, decayed: decayed)
        work = segments
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
        // Elementwise, so any cut of the parameters over threads gives the same bits; each
        // stretch eight lanes at a time (the same operations per lane as one at a time).
        let (threads, work) = (self.threads, self.work)
        let settings = Settings(lr: learningRate, weightDecay: weightDecay, decoupled: decoupled, b1: b1, b2: b2, eps: eps,
                                stepSize: stepSize, correction2Root: correction2Root)
        nonisolated(unsafe) let (pp, gg, mm, vv) = (p, g, m, v)
        let run: @Sendable (Int) -> Void = { part in
            for item in stride(from: part, to: work.count, by: threads) {
                Self.update(work[item].range, decays: work[item].decays, settings, p: pp, g: gg, m: mm, v: vv)
            }
        }
        if threads == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: run) }
    }

    private struct Settings {
        let lr: Float, weightDecay: Float, decoupled: Bool, b1: Float, b2: Float, eps: Float, stepSize: Float
        let correction2Root: Float
    }

    /// Part `part` of `range` cut into `parts` stretches.
    static func stretch(_ part: Int, of range: Range<Int>, parts: Int) -> Range<Int> {
        (range.lowerBound + part * range.count / parts)..<(range.lowerBound + (part + 1) * range.count / parts)
    }

    /// The update of `range`, eight lanes at a time, then the rest one at a time.
    @inline(__always)
    private static func update(_ range: Range<Int>, decays: Bool, _ s: Settings, p: UnsafeMutablePointer<Float>,
                               g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        let decay = decays ? s.weightDecay : 0
        let coupledDecay: Float = s.decoupled ? 0 : decay
        let shrink: Float = s.decoupled ? 1 - s.lr * decay : 1
        func lanes(_ p: SIMD8<Float>, _ g: SIMD8<Float>, _ m: SIMD8<Float>, _ v: SIMD8<Float>)
            -> (p: SIMD8<Float>, m: SIMD8<Float>, v: SIMD8<Float>) {
            let p0 = s.decoupled ? p * shrink : p
            let d = g + coupledDecay * p0
            let m1 = s.b1 * m + (1 - s.b1) * d
            let v1 = s.b2 * v + (1 - s.b2) * d * d
            let denominator = v1.squareRoot() / s.correction2Root + s.eps
            return (p0 - s.stepSize * (m1 / denominator), m1, v1)
        }
        var i = range.lowerBound
        let (rp, rg, rm, rv) = (UnsafeMutableRawPointer(p), UnsafeRawPointer(g), UnsafeMutableRawPointer(m),
                                UnsafeMutableRawPointer(v))
        while i + 8 <= range.upperBound {
            let o = i * 4
            let r = lanes(rp.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self),
                          rg.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self),
                          rm.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self),
                          rv.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self))
            rp.storeBytes(of: r.p, toByteOffset: o, as: SIMD8<Float>.self)
            rm.storeBytes(of: r.m, toByteOffset: o, as: SIMD8<Float>.self)
            rv.storeBytes(of: r.v, toByteOffset: o, as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            let pi = s.decoupled ? p[i] * shrink : p[i]
            let d = g[i] + coupledDecay * pi
            m[i] = s.b1 * m[i] + (1 - s.b1) * d
            v[i] = s.b2 * v[i] + (1 - s.b2) * d * d
            let denominator = v[i].squareRoot() / s.correction2Root + s.eps
            p[i] = pi - s.stepSize * (m[i] / denominator)
            i += 1
        }
    }
}
