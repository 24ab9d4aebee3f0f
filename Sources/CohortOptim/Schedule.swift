import Foundation

/// How the learning rate moves over the run after its warmup: kept, cut by `gamma` every
/// `stepEpochs` epochs (PyTorch's StepLR), or brought to 0 along a half cosine
/// (CosineAnnealingLR with eta_min 0).
public enum LearningRateDecay: String, CaseIterable, Codable, Sendable {
    case constant, step, cosine
}

/// How the learning rate follows the global batch B, relative to a base batch B0 for which
/// `--lr` was chosen: not at all, `lr·B/B0` (Goyal et al., Horovod's rule), or `lr·sqrt(B/B0)`.
public enum LearningRateScaling: String, CaseIterable, Codable, Sendable {
    case none, linear, sqrt

    public func factor(globalBatch: Int, baseBatch: Int) -> Double {
        let ratio = Double(globalBatch) / Double(baseBatch)
        switch self {
        case .none: return 1
        case .linear: return ratio
        case .sqrt: return ratio.squareRoot()
        }
    }
}

/// The learning rate of every optimizer step, a function of the step alone (so a resumed run
/// continues it exactly). Step t = 0, 1, ... of T = epochs·S steps (or `fixedTotalSteps`), S
/// steps per epoch, with w = W·S warmup steps (or `fixedWarmupSteps`):
///
///     warmup (t < w):  peak · (t + 1) / w                 linear from 0, reaching peak at t = w - 1
///     constant:        peak
///     step:            peak · gamma^floor(t / (E·S))      E = stepEpochs, counted from the run's start
///     cosine:          floor + (peak - floor) · (1 + cos(pi · min(1, (t - w) / (T - w)))) / 2
///
/// (the peer `torch_lm.py`'s `rate`, and PyTorch's CosineAnnealingLR with `eta_min` = floor).
public struct LearningRateSchedule: Equatable, Sendable {
    public var peak: Double
    public var decay: LearningRateDecay
    public var warmupEpochs: Double
    public var stepEpochs: Double
    public var gamma: Double
    public var epochs: Int
    public var stepsPerEpoch: Int
    /// Where cosine ends (`eta_min`).
    public var floor = 0.0
    /// Warmup and run lengths in steps, where they are given so (`--warmup-steps`, `--steps`).
    public var fixedWarmupSteps: Int?
    public var fixedTotalSteps: Int?

    public init(peak: Double, decay: LearningRateDecay, warmupEpochs: Double = 0, stepEpochs: Double = 1,
                gamma: Double = 0.1, epochs: Int, stepsPerEpoch: Int) {
        self.peak = peak; self.decay = decay; self.warmupEpochs = warmupEpochs; self.stepEpochs = stepEpochs
        self.gamma = gamma; self.epochs = epochs; self.stepsPerEpoch = stepsPerEpoch
    }

    /// Warmup steps (whole steps: a fraction of an epoch rounds to the nearest step).
    public var warmupSteps: Int { fixedWarmupSteps ?? Int((warmupEpochs * Double(stepsPerEpoch)).rounded()) }

    /// The run's steps.
    public var totalSteps: Int { fixedTotalSteps ?? epochs * stepsPerEpoch }

    /// The rate of global step `step` (0-based).
    public func rate(atStep step: Int) -> Double {
        let warmup = warmupSteps
        if step < warmup { return peak * Double(step + 1) / Double(warmup) }
        switch decay {
        case .constant:
            return peak
        case .step:
            let period = max(1, Int((stepEpochs * Double(stepsPerEpoch)).rounded()))
            return peak * pow(gamma, Double(step / period))
        case .cosine:
            let span = max(1, totalSteps - warmup)
            let progress = min(1, Double(step - warmup) / Double(span))
            return floor + (peak - floor) * (1 + cos(Double.pi * progress)) / 2
        }
    }
}

extension LearningRateSchedule: CustomStringConvertible {
    /// `0.05`, or `0.05 after 1.0 warmup epoch(s), cosine to 0` and the like.
    public var description: String {
        var parts: [String] = []
        if let steps = fixedWarmupSteps, steps > 0 {
            parts.append("after \(steps) warmup step(s)")
        } else if warmupSteps > 0 {
            parts.append("after \(warmupEpochs) warmup epoch(s)")
        }
        switch decay {
        case .constant: break
        case .step: parts.append("x\(gamma) every \(stepEpochs) epoch(s)")
        case .cosine: parts.append("cosine to \(floor == 0 ? "0" : "\(floor)")")
        }
        return parts.isEmpty ? "\(peak)" : "\(peak) " + parts.joined(separator: ", ")
    }
}
