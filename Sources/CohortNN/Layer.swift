import CohortTensor

/// A named parameter tensor of a layer, with PyTorch's shape and layout.
public struct ParameterSpec: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    /// Whole counts (batch norm's `num_batches_tracked`), which files store as 64-bit integers.
    public let isCount: Bool
    public init(_ name: String, _ shape: [Int], isCount: Bool = false) {
        self.name = name; self.shape = shape; self.isCount = isCount
    }
    public var count: Int { shape.elementCount }
}

/// A layer with an explicit forward and backward pass over a batch.
///
/// A layer owns its output and input-gradient buffers, sized once for `maxBatch`
/// samples; `forward` keeps exactly what `backward` needs. Parameters and their
/// gradients are not owned: they are views into the model's two flat buffers,
/// handed over by `bind`. Backward *adds* into the parameter gradients, so the
/// model zeroes the whole gradient buffer once per step.
public protocol Layer: AnyObject {
    /// Per-sample input and output shapes (no batch dimension).
    var inputShape: Shape { get }
    var outputShape: Shape { get }
    /// Parameter tensors in PyTorch's order, names relative to the layer.
    var parameterSpecs: [ParameterSpec] { get }
    /// Multiply-adds ×2 of one sample's forward pass in its matrix products (elementwise
    /// work is not counted); backward costs as much again for the weight gradient and
    /// again for the input gradient.
    var forwardFLOPsPerSample: Int { get }
    /// Points the layer at its slice of the flat parameter and gradient buffers.
    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)
    /// Fills the bound parameters with PyTorch's default initialisation.
    func initializeParameters(using rng: inout SplitMix64)
    /// State that training updates but the optimizer does not (a batch norm's running
    /// statistics; PyTorch's buffers), in PyTorch's order, names relative to the layer.
    var bufferSpecs: [ParameterSpec] { get }
    /// Points the layer at its slice of the model's flat buffer of such state, and sets it to
    /// PyTorch's initial values.
    func bind(buffers: UnsafeMutablePointer<Float>)
    /// Training (batch statistics, dropout) or evaluation (running statistics, no dropout),
    /// as PyTorch's `train()` and `eval()`.
    func setTraining(_ training: Bool)
    /// The layers a block holds, in forward order (none for a plain layer).
    var sublayers: [Layer] { get }
    /// `input` holds `batch` samples of `inputShape`; returns `batch` samples of `outputShape`.
    func forward(_ input: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float>
    /// Given dLoss/dOutput for the last forward, accumulates parameter gradients and,
    /// when `needsInputGradient`, returns dLoss/dInput (else `nil`).
    func backward(_ outputGradient: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>?
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
    public var forwardFLOPsPerSample: Int { 0 }
    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initializeParameters(using rng: inout SplitMix64) {}
    public var bufferSpecs: [ParameterSpec] { [] }
    public func bind(buffers: UnsafeMutablePointer<Float>) {}
    public func setTraining(_ training: Bool) {}
    public var sublayers: [Layer] { [] }
}

/// `layer`, then every layer it holds, depth first in forward order (a block before its layers).
func withSublayers(_ layer: Layer) -> [Layer] { [layer] + layer.sublayers.flatMap(withSublayers) }

/// Fills `count` values with uniform(-bound, bound): PyTorch's default for linear,
/// convolution and recurrent weights and biases.
func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, bound: Float, rng: inout SplitMix64) {
    for i in 0..<count { p[i] = rng.uniform(-bound, bound) }
}
