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

    public func make(count: Int, learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                     weightDecay: Float? = nil) -> Optimizer {
        switch self {
        case .sgd: return SGD(count: count, learningRate: learningRate, momentum: momentum,
                              weightDecay: weightDecay ?? 0, nesterov: nesterov)
        case .adam: return Adam(count: count, learningRate: learningRate, weightDecay: weightDecay ?? 0)
        case .adamw: return Adam(count: count, learningRate: learningRate, weightDecay: weightDecay ?? 0.01,
                                 decoupled: true)
        case .adagrad: return Adagrad(count: count, learningRate: learningRate, weightDecay: weightDecay ?? 0)
        case .rmsprop: return RMSProp(count: count, learningRate: learningRate, momentum: momentum,
                                      weightDecay: weightDecay ?? 0)
        }
    }
}
