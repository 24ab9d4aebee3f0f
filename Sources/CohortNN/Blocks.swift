import CohortTensor

/// Layers applied one after the other, their parameters (and buffers) at consecutive offsets of
/// the flat buffers they are bound to. Parameter names are `name.tensor`, where an unnamed layer
/// with parameters is called by its position in the chain (as in PyTorch's `nn.Sequential`) and
/// a layer named "" (a model file's `residual` stage) adds no part of its own.
public struct LayerChain {
    public let layers: [Layer]
    public let names: [String]
    /// `[start, end)` of each layer's parameters, and of its buffers, relative to the chain's.
    public let parameterRanges: [Range<Int>], bufferRanges: [Range<Int>]

    public init(_ named: [(name: String?, layer: Layer)]) {
        layers = named.map(\.layer)
        names = named.enumerated().map { i, item in item.name ?? String(i) }
        var p = 0, b = 0
        var parameterRanges: [Range<Int>] = [], bufferRanges: [Range<Int>] = []
        for layer in layers {
            let pc = layer.parameterSpecs.reduce(0) { $0 + $1.count }, bc = layer.bufferSpecs.reduce(0) { $0 + $1.count }
            parameterRanges.append(p..<(p + pc)); bufferRanges.append(b..<(b + bc))
            p += pc; b += bc
        }
        self.parameterRanges = parameterRanges
        self.bufferRanges = bufferRanges
        fuseNeighbours(layers)
    }

    public var isEmpty: Bool { layers.isEmpty }
    public var parameterSpecs: [ParameterSpec] { prefixed(\.parameterSpecs) }
    public var bufferSpecs: [ParameterSpec] { prefixed(\.bufferSpecs) }
    public var forwardFLOPsPerSample: Int { layers.reduce(0) { $0 + $1.forwardFLOPsPerSample } }

    private func prefixed(_ specs: (Layer) -> [ParameterSpec]) -> [ParameterSpec] {
        zip(names, layers).flatMap { name, layer in
            specs(layer).map { ParameterSpec(Self.join(name, $0.name), $0.shape, isCount: $0.isCount) }
        }
    }

    /// `name.tensor`; an empty part drops out: a layer whose one tensor takes the layer's own
    /// name (`Positions`), and a residual stage whose layers are named as the chain's own.
    static func join(_ name: String, _ tensor: String) -> String {
        name.isEmpty ? tensor : tensor.isEmpty ? name : "\(name).\(tensor)"
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        for (layer, range) in zip(layers, parameterRanges) {
            layer.bind(parameters: parameters + range.lowerBound, gradients: gradients + range.lowerBound)
        }
    }

    public func bind(buffers: UnsafeMutablePointer<Float>) {
        for (layer, range) in zip(layers, bufferRanges) { layer.bind(buffers: buffers + range.lowerBound) }
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        for layer in layers { layer.initializeParameters(using: &rng) }
    }

    public func setTraining(_ training: Bool) { layers.forEach { $0.setTraining(training) } }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        layers.reduce(x) { a, layer in layer.forward(a, batch: batch) }
    }

    /// Backward in reverse order; the first layer returns an input gradient only if asked.
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        var d: UnsafePointer<Float>? = dy
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            d = layers[i].backward(d!, batch: batch, needsInputGradient: needsInputGradient || i > 0)
            if d == nil { return nil }
        }
        return d
    }
}

/// Pairs of neighbours that share work: a ReLU then a max-pooling (only window winners get a
/// gradient, and the ReLU's mask at a winner is [pooled output > 0], so the pooling's backward
/// applies it and the ReLU's is a no-op); a convolution then a ReLU (the convolution's kernel
/// rectifies its own output); a batch norm then a ReLU (the batch norm rectifies its output and
/// masks the gradient it receives, and the ReLU does neither); a ReLU (closing a layer or a
/// block) then a residual block (the block masks its input gradient as it sums it, and the ReLU
/// passes the gradient on).
func fuseNeighbours(_ layers: [Layer]) {
    for (first, second) in zip(layers, layers.dropFirst()) {
        if let relu = lastOperation(of: first) as? ReLU, !relu.gradientMaskedByPreviousLayer,
           let block = firstOperation(of: second) as? Residual {
            relu.gradientMaskedByNextLayer = true
            block.masksInputGradient = true
        }
        if let relu = first as? ReLU, let pool = second as? MaxPool2D {
            relu.gradientMaskedByNextLayer = true
            pool.masksReLUGradient = true
        }
        if let conv = first as? Conv2D, let relu = second as? ReLU {
            conv.rectifiesOutput = true
            relu.inputAlreadyRectified = true
        }
        if let norm = first as? BatchNorm, let relu = second as? ReLU {
            norm.rectifiesOutput = true
            relu.inputAlreadyRectified = true
            relu.gradientMaskedByPreviousLayer = true
        }
    }
}

/// The layer that computes `layer`'s output: the last of a chain, or of a residual block's `after`.
private func lastOperation(of layer: Layer) -> Layer {
    if let chain = layer as? Sequential { return lastOperation(of: chain.chain.layers.last!) }
    if let block = layer as? Residual, let last = block.after.layers.last { return lastOperation(of: last) }
    return layer
}

/// The layer that first reads `layer`'s input: the first of a chain.
private func firstOperation(of layer: Layer) -> Layer {
    if let chain = layer as? Sequential { return firstOperation(of: chain.chain.layers[0]) }
    return layer
}

/// A chain of layers as one layer (PyTorch's `nn.Sequential`): a model file's block.
public final class Sequential: Layer {
    public let chain: LayerChain
    public var inputShape: Shape { chain.layers[0].inputShape }
    public var outputShape: Shape { chain.layers[chain.layers.count - 1].outputShape }

    public init(_ layers: [(name: String?, layer: Layer)]) {
        precondition(!layers.isEmpty, "a block has layers")
        chain = LayerChain(layers)
    }

    public var parameterSpecs: [ParameterSpec] { chain.parameterSpecs }
    public var bufferSpecs: [ParameterSpec] { chain.bufferSpecs }
    public var forwardFLOPsPerSample: Int { chain.forwardFLOPsPerSample }
    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        chain.bind(parameters: parameters, gradients: gradients)
    }
    public func bind(buffers: UnsafeMutablePointer<Float>) { chain.bind(buffers: buffers) }
    public func initializeParameters(using rng: inout SplitMix64) { chain.initializeParameters(using: &rng) }
    public func setTraining(_ training: Bool) { chain.setTraining(training) }
    public var sublayers: [Layer] { chain.layers }
    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> { chain.forward(x, batch: batch) }
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        chain.backward(dy, batch: batch, needsInputGradient: needsInputGradient)
    }
}

/// A residual block (He et al. 2016): `y = after(body(x) + shortcut(x))`, where the shortcut is
/// the identity or, where the body changes the shape, a projection (PyTorch's `BasicBlock` with
/// `after` a ReLU). Parameter names: the body's layers as they are named (`conv1.weight`), the
/// shortcut's under `shortcut.` (`shortcut.0.weight`), `after`'s under `after.`.
///
/// Backward: `g = after'(dy)`, `dx = body'(g) + shortcut'(g)` (the identity's is `g`).
///
/// Where the body closes with a batch norm, the sum applies its affine map as it reads the body's
/// last map (and the shortcut's closing batch norm's, if any): one pass writes the block's output.
public final class Residual: Layer {
    public let body: LayerChain, shortcut: LayerChain, after: LayerChain
    public let inputShape: Shape, outputShape: Shape
    private let sum: FloatBuffer, inputGrad: FloatBuffer
    /// `after` starts with a ReLU: the sum is rectified as it is written, and the ReLU passes it on.
    private let rectifiesSum: Bool
    /// The batch norms closing the body and the shortcut, folded into the sum (`BatchNorm.foldedIntoSum`).
    private let bodyNorm: BatchNorm?, shortcutNorm: BatchNorm?
    /// The last forward's input, for `masksInputGradient`.
    private var lastInput: UnsafePointer<Float>?
    /// Set by `fuseNeighbours` when the layer before ends with a ReLU, whose output is this block's
    /// input x: the input gradient is masked here, `dx = (body'(g) + shortcut'(g))·[x > 0]`, and
    /// that ReLU passes its gradient on.
    var masksInputGradient = false

    /// `shortcut` empty: the identity, which needs the body to keep the shape.
    public init(body: [(name: String?, layer: Layer)], shortcut: [(name: String?, layer: Layer)],
                after: [(name: String?, layer: Layer)], maxBatch: Int) {
        precondition(!body.isEmpty, "a residual block has a body")
        self.body = LayerChain(body)
        self.shortcut = LayerChain(shortcut)
        self.after = LayerChain(after)
        inputShape = body[0].layer.inputShape
        let bodyShape = body[body.count - 1].layer.outputShape
        precondition((shortcut.last?.layer.outputShape ?? inputShape) == bodyShape, "shortcut and body shapes differ")
        outputShape = after.last?.layer.outputShape ?? bodyShape
        sum = FloatBuffer(count: maxBatch * bodyShape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
        if let relu = self.after.layers.first as? ReLU {
            relu.inputAlreadyRectified = true
            rectifiesSum = true
        } else {
            rectifiesSum = false
        }
        bodyNorm = self.body.layers.last as? BatchNorm
        shortcutNorm = bodyNorm == nil ? nil : self.shortcut.layers.last as? BatchNorm
        bodyNorm?.foldedIntoSum = true
        shortcutNorm?.foldedIntoSum = true
    }

    private var chains: [(prefix: String, chain: LayerChain)] { [("", body), ("shortcut.", shortcut), ("after.", after)] }

    public var parameterSpecs: [ParameterSpec] {
        chains.flatMap { prefix, chain in chain.parameterSpecs.map { ParameterSpec(prefix + $0.name, $0.shape, isCount: $0.isCount) } }
    }
    public var bufferSpecs: [ParameterSpec] {
        chains.flatMap { prefix, chain in chain.bufferSpecs.map { ParameterSpec(prefix + $0.name, $0.shape, isCount: $0.isCount) } }
    }
    public var forwardFLOPsPerSample: Int { chains.reduce(0) { $0 + $1.chain.forwardFLOPsPerSample } }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        var offset = 0
        for (_, chain) in chains {
            chain.bind(parameters: parameters + offset, gradients: gradients + offset)
            offset += chain.parameterRanges.last?.upperBound ?? 0
        }
    }

    public func bind(buffers: UnsafeMutablePointer<Float>) {
        var offset = 0
        for (_, chain) in chains {
            chain.bind(buffers: buffers + offset)
            offset += chain.bufferRanges.last?.upperBound ?? 0
        }
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        for (_, chain) in chains { chain.initializeParameters(using: &rng) }
    }

    public func setTraining(_ training: Bool) { chains.forEach { $0.chain.setTraining(training) } }
    public var sublayers: [Layer] { body.layers + shortcut.layers + after.layers }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        lastInput = x
        // With a folded batch norm, b (and s) are its input, to be normalised as they are added.
        let b = body.forward(x, batch: batch)
        let s = shortcut.isEmpty ? x : shortcut.forward(x, batch: batch)
        let count = batch * (body.layers.last!.outputShape.elementCount)
        let y = sum.pointer
        if let bodyNorm {
            let layout = bodyNorm.layout, plane = bodyNorm.plane, bodyMap = bodyNorm.affineMap
            let shortcutMap = shortcutNorm?.affineMap
            layout.forEachPlane(batch: batch, channels: bodyNorm.channels, plane: plane) { offset, first in
                residualPlaneSum(body: b + offset, bodyMap.from(first), shortcut: s + offset, shortcutMap?.from(first),
                                 into: y + offset, positions: plane, block: layout.channelsPerRun, rectify: rectifiesSum)
            }
        } else if rectifiesSum {
            for i in 0..<count { let v = b[i] + s[i]; y[i] = v > 0 ? v : 0 }
        } else {
            for i in 0..<count { y[i] = b[i] + s[i] }
        }
        return after.isEmpty ? UnsafePointer(y) : after.forward(UnsafePointer(y), batch: batch)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        let g = after.isEmpty ? dy : after.backward(dy, batch: batch, needsInputGradient: true)!
        let fromBody = body.backward(g, batch: batch, needsInputGradient: needsInputGradient)
        let fromShortcut = shortcut.isEmpty ? g : shortcut.backward(g, batch: batch, needsInputGradient: needsInputGradient)
        guard needsInputGradient, let fromBody, let fromShortcut else { return nil }
        let d = inputGrad.pointer
        if masksInputGradient, let x = lastInput {
            for i in 0..<(batch * inputShape.elementCount) { d[i] = x[i] > 0 ? fromBody[i] + fromShortcut[i] : 0 }
        } else {
            for i in 0..<(batch * inputShape.elementCount) { d[i] = fromBody[i] + fromShortcut[i] }
        }
        return UnsafePointer(d)
    }
}
