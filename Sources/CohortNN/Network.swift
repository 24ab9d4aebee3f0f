import CohortTensor

/// A parameter tensor's place in the model's flat buffers.
public struct NamedTensor: Sendable {
    /// Full name as in PyTorch's `state_dict` (e.g. `conv1.weight`).
    public let name: String
    public let shape: [Int]
    /// Offset, in floats, into the flat parameter (and gradient) buffer, or the buffers'.
    public let offset: Int
    /// Whole counts, which files store as 64-bit integers (`ParameterSpec.isCount`).
    public let isCount: Bool
    public var count: Int { shape.elementCount }

    public init(name: String, shape: [Int], offset: Int, isCount: Bool = false) {
        self.name = name; self.shape = shape; self.offset = offset; self.isCount = isCount
    }
}

/// A chain of layers whose parameters all live in one flat buffer and whose
/// gradients live in another of the same layout, so zeroing is one fill, the
/// allreduce is one call (or a few buckets) and optimizers see plain arrays. State that
/// training changes without the optimizer (batch norm's running statistics) lives in a third,
/// `buffers`, which each replica keeps for itself.
public final class Network {
    public let layers: [Layer]
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let tensors: [NamedTensor]
    public let buffers: FloatBuffer
    /// The buffers' tensors (PyTorch's `running_mean`, `running_var`, `num_batches_tracked`).
    public let bufferTensors: [NamedTensor]
    /// `[start, end)` range of each layer's parameters in the flat buffers.
    public let layerRanges: [Range<Int>]
    /// The first layer with parameters: its input is data, so backward stops there.
    private let firstWithParameters: Int
    public let maxBatch: Int
    /// The epoch and sample indices of the batch a training forward sees (for dropout's masks).
    public let sampleKeys: SampleKeys
    /// The channel block of the feature maps between the first convolution and the global
    /// pooling, or nil where they are planar (`ChannelBlocking`). Only the layers' own buffers
    /// differ: input, output, parameters and gradients lie as always.
    public let channelBlock: Int?

    public var parameterCount: Int { parameters.count }
    public var inputShape: Shape { layers[0].inputShape }
    public var outputShape: Shape { layers[layers.count - 1].outputShape }

    /// Training mode (batch statistics, dropout) or evaluation mode (running statistics, no
    /// dropout), PyTorch's `train()` and `eval()`. A new network trains.
    public var training = true {
        didSet { layers.forEach { $0.setTraining(training) } }
    }

    /// `sharing`: another network's parameters to use instead of new ones (a replica that
    /// computes on its own slice of the batch with its own activations and gradients).
    /// `sampleKeys`: what the network's dropout layers read (a new one if none is given).
    /// `blocksChannels`: whether a network that qualifies keeps its feature maps channel-blocked.
    public init(layers: [(name: String?, layer: Layer)], maxBatch: Int, sharing: FloatBuffer? = nil,
                sampleKeys: SampleKeys = SampleKeys(), blocksChannels: Bool = true) {
        precondition(!layers.isEmpty)
        for (a, b) in zip(layers, layers.dropFirst()) {
            precondition(a.layer.outputShape.elementCount == b.layer.inputShape.elementCount,
                         "layer shapes do not chain: \(a.layer.outputShape) -> \(b.layer.inputShape)")
        }
        let chain = LayerChain(layers)
        self.layers = chain.layers
        channelBlock = blocksChannels ? ChannelBlocking.apply(to: chain.layers) : nil
        self.maxBatch = maxBatch
        self.sampleKeys = sampleKeys
        // The chain's tensors lie one after another in the flat buffers, in its order.
        func placed(_ specs: [ParameterSpec]) -> [NamedTensor] {
            var offset = 0
            return specs.map { spec in
                defer { offset += spec.count }
                return NamedTensor(name: spec.name, shape: spec.shape, offset: offset, isCount: spec.isCount)
            }
        }
        tensors = placed(chain.parameterSpecs)
        bufferTensors = placed(chain.bufferSpecs)
        layerRanges = chain.parameterRanges
        let count = chain.parameterRanges.last?.upperBound ?? 0
        firstWithParameters = layerRanges.firstIndex { !$0.isEmpty } ?? 0
        precondition(sharing == nil || sharing!.count == count, "shared parameters of another model")
        parameters = sharing ?? FloatBuffer(count: count)
        gradients = FloatBuffer(count: count)
        buffers = FloatBuffer(count: chain.bufferRanges.last?.upperBound ?? 0)
        chain.bind(parameters: parameters.pointer, gradients: gradients.pointer)
        chain.bind(buffers: buffers.pointer)
    }

    /// PyTorch's default initialisation for every layer, from one seeded stream.
    public func initializeParameters(seed: UInt64) {
        var rng = SplitMix64(seed: seed, stream: 1)
        for layer in layers { layer.initializeParameters(using: &rng) }
    }

    /// `x[N, inputShape]` -> logits `[N, outputShape]`.
    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        forward(x, batch: batch, through: layers.count - 1)
    }

    /// Runs `batch` samples through layers `0...last`, calling `visit(i, output)` after each
    /// (what analyses of a trained model read: activations, the deconvnet's features).
    public func forward(_ x: UnsafePointer<Float>, batch: Int, through last: Int,
                        visit: (Int, UnsafePointer<Float>) -> Void = { _, _ in }) -> UnsafePointer<Float> {
        precondition(batch <= maxBatch, "batch \(batch) larger than the network's buffers (\(maxBatch))")
        var a = x
        for i in 0...last {
            a = layers[i].forward(a, batch: batch)
            visit(i, a)
        }
        return a
    }

    /// Backward from `dL/dlogits`, in reverse layer order, *adding* into `gradients`.
    /// After layer `i`'s parameter gradients are final, `gradientsReady(i)` is called,
    /// so communication of that layer's gradients can start while earlier layers run.
    /// Returns `dL/dx` when `needsInputGradient`.
    @discardableResult
    public func backward(_ dLogits: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool = false,
                         gradientsReady: ((Int) throws -> Void)? = nil) rethrows -> UnsafePointer<Float>? {
        var d: UnsafePointer<Float>? = dLogits
        // The first parameterised layer needs no input gradient unless asked for.
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let wantInput = needsInputGradient || i > firstWithParameters
            d = layers[i].backward(d!, batch: batch, needsInputGradient: wantInput)
            try gradientsReady?(i)
            if d == nil { break }
        }
        return needsInputGradient ? d : nil
    }

    public func zeroGradients() { gradients.zero() }

    /// FLOPs of one training sample in the matrix products: forward, the weight
    /// gradients, and the input gradients of every layer but the first with parameters
    /// (whose input is data). The report's CNN on 3×32×32 costs about 88 MFLOP.
    public var trainingFLOPsPerSample: Int {
        return layers.enumerated().reduce(0) { total, item in
            let (i, layer) = item
            let f = layer.forwardFLOPsPerSample
            return total + f + (layerRanges[i].isEmpty ? 0 : f) + (i > firstWithParameters ? f : 0)
        }
    }

    public func tensor(named name: String) -> NamedTensor? { tensors.first { $0.name == name } }

    /// Every layer, blocks' layers included, depth first in forward order (a block before its layers).
    public var allLayers: [Layer] { layers.flatMap(withSublayers) }

    /// Copies another replica's buffers (the running statistics evaluation uses).
    public func copyBuffers(from other: Network) {
        precondition(other.buffers.count == buffers.count, "buffers of another model")
        buffers.pointer.update(from: other.buffers.pointer, count: buffers.count)
    }
}
