import CohortTensor

/// An optimizer over the model's flat parameter and gradient buffers: its state is
/// made once for `count` parameters, and `step` applies one update in place.
/// All rules are elementwise, so one flat pass serves every tensor of the model.
public protocol Optimizer: AnyObject {
    /// Learning rate used by the next `step` (schedules may change it between steps).
    var learningRate: Float { get set }
    /// Number of steps taken so far (PyTorch's `state['step']`); set when restoring a checkpoint.
    var stepCount: Int { get set }
    /// The state carried from step to step, by name (PyTorch's names where it has them),
    /// each as long as the parameters: what a checkpoint saves and restores.
    var stateTensors: [(name: String, buffer: FloatBuffer)] { get }
    func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>)
}

/// Optimizers by their command-line names, with PyTorch's defaults.
public enum OptimizerKind: String, CaseIterable, Codable, Sendable {
    case sgd, adam, adamw, adagrad, rmsprop

    /// `betas` and `decayed` (the parameters weight decay applies to; nil: all) are Adam's and AdamW's.
    public func make(count: Int, learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                     weightDecay: Float? = nil, betas: (Float, Float)? = nil, decayed: [Range<Int>]? = nil) -> Optimizer {
        precondition((betas == nil && decayed == nil) || self == .adam || self == .adamw, "betas and decay scope are Adam's")
        let (beta1, beta2) = betas ?? (0.9, 0.999)
        switch self {
        case .sgd: return SGD(count: count, learningRate: learningRate, momentum: momentum,
                              weightDecay: weightDecay ?? 0, nesterov: nesterov)
        case .adam: return Adam(count: count, learningRate: learningRate, beta1: beta1, beta2: beta2,
                                weightDecay: weightDecay ?? 0, decayed: decayed)
        case .adamw: return Adam(count: count, learningRate: learningRate, beta1: beta1, beta2: beta2,
                                 weightDecay: weightDecay ?? 0.01, decoupled: true, decayed: decayed)
        case .adagrad: return Adagrad(count: count, learningRate: learningRate, weightDecay: weightDecay ?? 0)
        case .rmsprop: return RMSProp(count: count, learningRate: learningRate, momentum: momentum,
                                      weightDecay: weightDecay ?? 0)
        }
    }
}

/// Which tensors weight decay applies to: every one, or only those of two or more dimensions
/// (weights, embeddings, positions), not biases and norms' scales, as nanoGPT and minGPT group
/// AdamW's parameters.
public enum WeightDecayScope: String, CaseIterable, Codable, Sendable {
    case all, matrices

    /// The parameter ranges decay applies to, from each tensor's range and shape (nil: all).
    public func ranges(of tensors: [(range: Range<Int>, shape: [Int])]) -> [Range<Int>]? {
        switch self {
        case .all: return nil
        case .matrices: return tensors.filter { $0.shape.count >= 2 }.map(\.range)
        }
    }

    /// `0..<count` cut into stretches that decay or not, in order (adjacent ranges merged).
    static func segments(count: Int, decayed: [Range<Int>]?) -> [(range: Range<Int>, decays: Bool)] {
        guard let decayed else { return [(0..<count, true)] }
        var segments: [(range: Range<Int>, decays: Bool)] = [], at = 0
        func append(_ range: Range<Int>, _ decays: Bool) {
            guard !range.isEmpty else { return }
            if let last = segments.last, last.decays == decays, last.range.upperBound == range.lowerBound {
                segments[segments.count - 1].range = last.range.lowerBound..<range.upperBound
            } else {
                segments.append((range, decays))
            }
        }
        for range in decayed.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            precondition(range.lowerBound >= at && range.upperBound <= count, "overlapping or out-of-range decay ranges")
            append(at..<range.lowerBound, false)
            append(range, true)
            at = range.upperBound
        }
        append(at..<count, false)
        return segments
    }
}
