import CohortTensor

/// A parameter tensor's place in the model's flat buffers.
public struct NamedTensor: Sendable {
    /// Full name as in PyTorch's `state_dict` (e.g. `conv1.weight`).
    public let name: String
    public let shape: [Int]
    /// Offset, in floats, into the flat parameter (and gradient) buffer.
    public let offset: Int
    public var count: Int { shape.elementCount }

    public init(name: String, shape: [Int], offset: Int) { self.name = name; self.shape = shape; self.offset = offset }
}

/// A chain of layers whose parameters all live in one flat buffer and whose
/// gradients live in another of the same layout, so zeroing is one fill, the
/// allreduce is one call (or a few buckets) and optimizers see plain arrays.
public final class Network {
    public let layers: [Layer]
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let tensors: [NamedTensor]
    /// `[start, end)` range of each layer's parameters in the flat buffers.
    public let layerRanges: [Range<Int>]
    /// The first layer with parameters: its input is data, so backward stops there.
    private let firstWithParameters: Int
    public let maxBatch: Int

    public var parameterCount: Int { parameters.count }
    public var inputShape: Shape { layers[0].inputShape }
    public var outputShape: Shape { layers[layers.count - 1].outputShape }

    /// `sharing`: another network's parameters to use instead of new ones (a replica that
    /// computes on its own slice of the batch with its own activations and gradients).
    public init(layers: [(name: String?, layer: Layer)], maxBatch: Int, sharing: FloatBuffer? = nil) {
        precondition(!layers.isEmpty)
        for (a, b) in zip(layers, layers.dropFirst()) {
            precondition(a.layer.outputShape.elementCount == b.layer.inputShape.elementCount,
                         "layer shapes do not chain: \(a.layer.outputShape) -> \(b.layer.inputShape)")
        }
        self.layers = layers.map(\.layer)
        self.maxBatch = maxBatch
        var tensors: [NamedTensor] = [], ranges: [Range<Int>] = []
        var offset = 0
        for (name, layer) in layers {
            let start = offset
            for spec in layer.parameterSpecs {
                tensors.append(NamedTensor(name: "\(name ?? "layer").\(spec.name)", shape: spec.shape, offset: offset))
                offset += spec.count
            }
            ranges.append(start..<offset)
        }
        self.tensors = tensors
        layerRanges = ranges
        firstWithParameters = ranges.firstIndex { !$0.isEmpty } ?? 0
        precondition(sharing == nil || sharing!.count == offset, "shared parameters of another model")
        parameters = sharing ?? FloatBuffer(count: offset)
        gradients = FloatBuffer(count: offset)
        for (layer, range) in zip(self.layers, ranges) {
            layer.bind(parameters: parameters.pointer + range.lowerBound, gradients: gradients.pointer + range.lowerBound)
        }
        // ReLU then max-pooling: only window winners get a gradient, and the ReLU's mask at a
        // winner is [pooled output > 0], so the pooling's backward applies it and the ReLU's is a no-op.
        // Convolution then ReLU: the convolution's kernel rectifies its own output.
        for (first, second) in zip(self.layers, self.layers.dropFirst()) {
            if let relu = first as? ReLU, let pool = second as? MaxPool2D {
                relu.gradientMaskedByNextLayer = true
                pool.masksReLUGradient = true
            }
            if let conv = first as? Conv2D, let relu = second as? ReLU {
                conv.rectifiesOutput = true
                relu.inputAlreadyRectified = true
            }
        }
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
}
