import CohortTensor

/// How a description becomes layers: the sizes the data fixes and what every replica needs.
public struct BuildSettings {
    /// Per-sample input shape (the data's) and classes (the last layer's output size).
    public var inputShape: Shape
    public var classes: Int
    /// Values of the file's parameters that replace its defaults (`--model-param`).
    public var parameters: [String: Int]
    public var maxBatch: Int
    /// Another network's parameters to share (a replica), as `Network`'s `sharing`.
    public var sharing: FloatBuffer?
    /// What convolutions and recurrent layers multiply (`Conv2D`, `Recurrent`).
    public var precision: FloatFormat
    /// Seed of dropout's masks.
    public var seed: UInt64
    /// Whether the network may keep its feature maps channel-blocked (`Network`'s `blocksChannels`).
    public var blocksChannels = true
    /// Where the input is tokens (text): the values they take, `0..<vocabulary`. Only an
    /// `embedding` reads them, and only as the first layer.
    public var vocabulary: Int?
    /// Targets per sample: 1 (a class), or a sequence's length T, where every position has a
    /// target and the last layer gives `[T, classes]`.
    public var targetsPerSample = 1

    public init(inputShape: Shape, classes: Int, parameters: [String: Int] = [:], maxBatch: Int,
                sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32, seed: UInt64 = 0) {
        self.inputShape = inputShape; self.classes = classes; self.parameters = parameters
        self.maxBatch = maxBatch; self.sharing = sharing; self.precision = precision; self.seed = seed
    }
}

extension ModelDescription {
    /// The network for `settings`: shapes follow from layer to layer; any mistake is one
    /// `ModelFileError` naming the layer, the key and the shapes.
    public func build(_ settings: BuildSettings) throws(ModelFileError) -> Network {
        if let input, input != settings.inputShape {
            throw ModelFileError("input: the file's input \(input) differs from the data's \(settings.inputShape)")
        }
        for name in settings.parameters.keys.sorted() where parameters[name] == nil {
            let known = parameters.keys.sorted().joined(separator: ", ")
            throw ModelFileError("the model has no parameter '\(name)' (its parameters: \(known.isEmpty ? "none" : known))")
        }
        var scope = ["classes": settings.classes]
        if let vocabulary = settings.vocabulary { scope["vocab"] = vocabulary }
        scope.merge(parameters) { $1 }
        scope.merge(settings.parameters) { $1 }
        var builder = ModelBuilder(description: self, settings: settings)
        let (layers, output) = try builder.chain(layers, at: "layers", input: settings.inputShape, scope: scope)
        if settings.targetsPerSample == 1 {
            guard output.elementCount == settings.classes else {
                throw ModelFileError("layers: the last layer gives \(output) per sample, the data has \(settings.classes) classes")
            }
        } else {
            guard output == [settings.targetsPerSample, settings.classes] else {
                throw ModelFileError("layers: the last layer gives \(output) per sample; the data has a target at each of "
                                     + "\(settings.targetsPerSample) positions, so it must give [\(settings.targetsPerSample), "
                                     + "\(settings.classes)] (the logits of \(settings.classes) values at each)")
            }
        }
        let network = Network(layers: layers, maxBatch: settings.maxBatch, sharing: settings.sharing,
                              sampleKeys: builder.sampleKeys, blocksChannels: settings.blocksChannels)
        var seen = Set<String>()
        if let twice = network.tensors.first(where: { !seen.insert($0.name).inserted }) {
            throw ModelFileError("layers: two tensors are named \(twice.name) (name the layers of residual stages apart)")
        }
        return network
    }

    /// Whether the first layer reads an image's rows as a sequence (a recurrent model, or `rows`).
    public var readsRows: Bool {
        ["rnn", "lstm", "gru", "rows"].contains(layers.first?.type ?? "")
    }
}

/// Builds layers from entries, one place at a time; `stack` holds the blocks being built, so
/// that a block that uses itself is reported as a cycle rather than recursing forever.
struct ModelBuilder {
    let description: ModelDescription
    let settings: BuildSettings
    let sampleKeys = SampleKeys()
    private var dropouts = 0
    private var stack: [String] = []
    /// No layer has been built yet: the next one reads the network's input (the data).
    private var atNetworkInput = true

    init(description: ModelDescription, settings: BuildSettings) {
        self.description = description
        self.settings = settings
    }

    typealias Named = (name: String?, layer: Layer)

    /// The layers of `entries` in order, from `input`; returns them and the last output shape.
    mutating func chain(_ entries: [LayerEntry], at place: String, input: Shape, scope: [String: Int])
        throws(ModelFileError) -> (layers: [Named], output: Shape) {
        guard !entries.isEmpty else { throw ModelFileError("\(place): no layers") }
        var shape = input, layers: [Named] = [], names = Set<String>()
        for (i, entry) in entries.enumerated() {
            var reader = EntryReader(entry: entry, place: "\(place)[\(i)]")
            let named = try layer(&reader, input: shape, scope: scope)
            atNetworkInput = false
            try reader.finish()
            if let name = named.name, !name.isEmpty, !names.insert(name).inserted {
                throw ModelFileError("\(reader.place): the name \"\(name)\" is used twice in \(place)")
            }
            layers.append(named)
            shape = named.layer.outputShape
        }
        return (layers, shape)
    }

    /// The most values one layer may give per sample, and the most parameters it may hold:
    /// far beyond any network trained here, and small enough that a typo's size is refused
    /// before anything is allocated.
    static let maxOutputPerSample = 1 << 24, maxLayerParameters = 1 << 26

    private mutating func layer(_ r: inout EntryReader, input: Shape, scope: [String: Int]) throws(ModelFileError) -> Named {
        let type = try r.type()
        let name = try r.name()
        func limit(output: [Int], parameters: Int) throws(ModelFileError) {
            // Each factor is at most 2^40 (IntegerExpression) or checked below, so no product overflows.
            let (values, overflow) = output.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, values <= Self.maxOutputPerSample else {
                throw r.error("gives \(output) per sample, more than \(Self.maxOutputPerSample) values")
            }
            guard parameters <= Self.maxLayerParameters else {
                throw r.error("holds \(parameters) parameters, more than \(Self.maxLayerParameters)")
            }
        }
        let maxBatch = settings.maxBatch
        func image() throws(ModelFileError) -> (c: Int, h: Int, w: Int) {
            guard input.count == 3 else { throw r.error("needs an input [C, H, W], gets \(input)") }
            return (input[0], input[1], input[2])
        }
        func sequence() throws(ModelFileError) -> (t: Int, d: Int) {
            guard input.count == 2 else {
                throw r.error("needs a sequence [T, d], gets \(input) (rows turns a one-channel image into one)")
            }
            return (input[0], input[1])
        }
        func window(_ kernel: Int, _ stride: Int, _ padding: Int, _ size: (h: Int, w: Int)) throws(ModelFileError) {
            guard (1...(1 << 16)).contains(kernel), (1...(1 << 16)).contains(stride), (0...(1 << 16)).contains(padding) else {
                throw r.error("kernel \(kernel), stride \(stride) and padding \(padding) must be positive (padding may be 0) "
                              + "and at most 65536")
            }
            guard size.h + 2 * padding >= kernel, size.w + 2 * padding >= kernel else {
                throw r.error("kernel \(kernel) is larger than the input \(input) with padding \(padding)")
            }
        }
        switch type {
        case "conv":
            let (c, h, w) = try image()
            let filters = try r.integer("filters", scope), kernel = try r.integer("kernel", scope)
            let stride = try r.integer("stride", scope, default: 1), padding = try r.integer("padding", scope, default: 0)
            let bias = try r.flag("bias", default: true)
            guard (1...Self.maxOutputPerSample).contains(filters) else { throw r.error("filters must be positive, got \(filters)") }
            try window(kernel, stride, padding, (h, w))
            try limit(output: [filters, (h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1],
                      parameters: filters * c * kernel * kernel)
            return (name, Conv2D(inChannels: c, outChannels: filters, height: h, width: w, kernel: kernel, stride: stride,
                                 padding: padding, bias: bias, maxBatch: maxBatch, precision: settings.precision))
        case "batchnorm":
            guard (1...3).contains(input.count) else { throw r.error("normalises [C], [C, L] or [C, H, W], gets \(input)") }
            return (name, BatchNorm(shape: input, maxBatch: maxBatch, momentum: try r.number("momentum", default: 0.1),
                                    epsilon: try r.number("eps", default: 1e-5)))
        case "relu":
            return (name, ReLU(shape: input, maxBatch: maxBatch))
        case "maxpool", "avgpool":
            let (c, h, w) = try image()
            let kernel = try r.integer("kernel", scope)
            let stride = try r.integer("stride", scope, default: kernel), padding = try r.integer("padding", scope, default: 0)
            try window(kernel, stride, padding, (h, w))
            guard padding <= kernel / 2 else { throw r.error("padding \(padding) is more than half the window \(kernel)") }
            return type == "maxpool"
                ? (name, MaxPool2D(channels: c, height: h, width: w, kernel: kernel, stride: stride, padding: padding,
                                   maxBatch: maxBatch))
                : (name, AvgPool2D(channels: c, height: h, width: w, kernel: kernel, stride: stride, padding: padding,
                                   maxBatch: maxBatch))
        case "globalavgpool":
            let (c, h, w) = try image()
            return (name, GlobalAvgPool2D(channels: c, height: h, width: w, maxBatch: maxBatch))
        case "flatten":
            return (name, Flatten(shape: input))
        case "linear":
            let out = try r.integer("out", scope), bias = try r.flag("bias", default: true)
            guard out > 0 else { throw r.error("out must be positive, got \(out)") }
            // A sequence [T, F] is mapped position by position; any other shape as one vector.
            let (positions, features) = input.count == 2 ? (input[0], input[1]) : (1, input.elementCount)
            try limit(output: positions == 1 ? [out] : [positions, out],
                      parameters: out <= Self.maxLayerParameters ? out * (features + 1) : out)
            return (name, Linear(inFeatures: features, outFeatures: out, maxBatch: maxBatch, inputShape: input,
                                 positions: positions, bias: bias))
        case "dropout":
            let p = try r.number("p")
            guard p >= 0 && p < 1 else { throw r.error("p must be in [0, 1), got \(p)") }
            dropouts += 1
            // Streams 100, 101, ...: apart from initialisation's, the sampler's and augmentation's.
            return (name, Dropout(shape: input, probability: Float(p), seed: settings.seed, stream: UInt64(99 + dropouts),
                                  keys: sampleKeys, maxBatch: maxBatch))
        case "rnn", "lstm", "gru":
            // Rows of a one-channel image [1, T, I], or [T, I]: T steps of I features.
            guard (input.count == 3 && input[0] == 1) || input.count == 2 else {
                throw r.error("reads [1, T, I] (the rows of a one-channel image) or [T, I], gets \(input)")
            }
            let hidden = try r.integer("hidden", scope)
            guard hidden > 0 else { throw r.error("hidden must be positive, got \(hidden)") }
            try limit(output: [hidden], parameters: hidden <= Self.maxOutputPerSample ? 4 * hidden * (hidden + input[input.count - 1] + 2) : hidden)
            let steps = input[input.count - 2], features = input[input.count - 1]
            return (name, Recurrent(kind: CellKind(rawValue: type)!, inputSize: features, hidden: hidden, steps: steps,
                                    maxBatch: maxBatch, inputShape: input, precision: settings.precision))
        case "block":
            return (name, try block(&r, input: input, scope: scope))
        case "rows":
            guard input.count == 3 && input[0] == 1 else {
                throw r.error("reads the rows of a one-channel image [1, T, F], gets \(input)")
            }
            return (name, Rows(shape: input))
        case "embedding":
            guard let vocabulary = settings.vocabulary, atNetworkInput else {
                throw r.error("reads tokens, so it must be the first layer, on text data (--dataset text); "
                              + (atNetworkInput ? "this data is not tokens but \(input) values per sample"
                                                : "here it reads a layer's output \(input)"))
            }
            let dimension = try r.integer("dim", scope)
            guard dimension > 0 else { throw r.error("dim must be positive, got \(dimension)") }
            try limit(output: [input[0], dimension], parameters: vocabulary * dimension)
            return (name, Embedding(vocabulary: vocabulary, dimension: dimension, length: input[0], maxBatch: maxBatch))
        case "positions":
            let (t, d) = try sequence()
            let length = try r.integer("length", scope, default: t)
            guard length >= t else {
                throw r.error("holds \(length) positions, but the sequence has \(t) (the context is longer than the "
                              + "positions: raise length or lower --block-size)")
            }
            try limit(output: input, parameters: length * d)
            return (name, Positions(length: t, dimension: d, positions: length, maxBatch: maxBatch))
        case "layernorm":
            let epsilon = try r.number("eps", default: 1e-5)
            guard epsilon > 0 else { throw r.error("eps must be positive, got \(epsilon)") }
            return (name, LayerNorm(shape: input, epsilon: Float(epsilon), maxBatch: maxBatch))
        case "attention":
            let (t, d) = try sequence()
            let heads = try r.integer("heads", scope), causal = try r.flag("causal", default: false)
            guard heads > 0, d % heads == 0 else {
                throw r.error("heads \(heads) must divide the width \(d) (each head takes d / heads of it)")
            }
            try limit(output: [heads, t, t], parameters: 4 * d * (d + 1))
            return (name, Attention(length: t, dimension: d, heads: heads, causal: causal, maxBatch: maxBatch))
        case "gelu":
            let approximate = try r.optionalText("approximate") ?? "none"
            guard ["none", "tanh"].contains(approximate) else {
                throw r.error("approximate must be \"none\" (x·Φ(x)) or \"tanh\", got \"\(approximate)\"")
            }
            return (name, GELU(shape: input, tanh: approximate == "tanh", maxBatch: maxBatch))
        case "mean":
            let (t, d) = try sequence()
            return (name, SequenceMean(length: t, dimension: d, maxBatch: maxBatch))
        case "residual":
            // x + body(x): a residual block with the identity shortcut, its layers named as the chain's own.
            let entries = try r.entries("body")
            let (body, output) = try chain(entries, at: "\(r.place).body", input: input, scope: scope)
            guard output == input else {
                throw r.error("the body changes \(input) to \(output); a residual stage adds its body's output to its input")
            }
            return ("", Residual(body: body, shortcut: [], after: [], maxBatch: maxBatch))
        default:
            throw r.error("unknown layer type \"\(type)\" (known: \(EntryReader.types.joined(separator: ", ")))")
        }
    }

    /// `{ type = "block", block = "basic", repeat = 3, first = { stride = 2 }, out = 32 }`: the
    /// block, or with `repeat` a chain of that many (named 0, 1, ...; `first` changes the
    /// first one's settings), with the other keys as the block's parameters.
    private mutating func block(_ r: inout EntryReader, input: Shape, scope: [String: Int]) throws(ModelFileError) -> Layer {
        let blockName = try r.text("block")
        guard let block = description.blocks[blockName] else {
            let known = description.blocks.keys.sorted().joined(separator: ", ")
            throw r.error("no block \"\(blockName)\" (blocks: \(known.isEmpty ? "none" : known))")
        }
        if let cycle = stack.firstIndex(of: blockName) {
            throw r.error("the blocks form a cycle: \((stack[cycle...] + [blockName]).joined(separator: " -> "))")
        }
        let repeats = try r.optionalInteger("repeat", scope)
        let first = try r.table("first")
        var arguments: [String: Int] = [:]
        for key in r.remainingKeys {
            guard block.parameters[key] != nil else {
                let known = block.parameters.keys.sorted().joined(separator: ", ")
                throw r.error("block \"\(blockName)\" has no parameter '\(key)' (its parameters: \(known.isEmpty ? "none" : known))")
            }
            arguments[key] = try r.integer(key, scope)
        }
        for key in first.keys.sorted() where block.parameters[key] == nil {
            throw r.error("first: block \"\(blockName)\" has no parameter '\(key)'")
        }
        var firstArguments = arguments
        for (key, value) in first { firstArguments[key] = try r.evaluate(value, key: "first.\(key)", scope) }
        if let repeats, !(1...1024).contains(repeats) { throw r.error("repeat must be in 1...1024, got \(repeats)") }

        stack.append(blockName)
        defer { stack.removeLast() }
        var shape = input, copies: [Named] = []
        for copy in 0..<(repeats ?? 1) {
            var blockScope = scope.merging(block.parameters) { $1 }
            blockScope.merge(copy == 0 ? firstArguments : arguments) { $1 }
            let layer = try instance(of: block, named: blockName, at: r.place, input: shape, scope: blockScope)
            copies.append((String(copy), layer))
            shape = layer.outputShape
        }
        return repeats == nil ? copies[0].layer : Sequential(copies)
    }

    private mutating func instance(of block: BlockDescription, named name: String, at caller: String, input: Shape,
                                   scope: [String: Int]) throws(ModelFileError) -> Layer {
        let place = "\(caller) -> blocks.\(name)"
        switch (block.layers, block.body) {
        case (let layers?, nil):
            guard block.shortcut == nil, block.after == nil else {
                throw ModelFileError("\(place): shortcut and after belong to a residual block (body), not to layers")
            }
            return Sequential(try chain(layers, at: "\(place).layers", input: input, scope: scope).layers)
        case (nil, let body?):
            let (bodyLayers, bodyShape) = try chain(body, at: "\(place).body", input: input, scope: scope)
            var shortcut: [Named] = []
            if bodyShape != input {
                guard let entries = block.shortcut else {
                    throw ModelFileError("\(place): the body changes \(input) to \(bodyShape) and the block has no shortcut to match")
                }
                let (layers, shape) = try chain(entries, at: "\(place).shortcut", input: input, scope: scope)
                guard shape == bodyShape else {
                    throw ModelFileError("\(place).shortcut: gives \(shape), the body \(bodyShape)")
                }
                shortcut = layers
            }
            let after = try block.after.map { entries throws(ModelFileError) in
                try chain(entries, at: "\(place).after", input: bodyShape, scope: scope).layers
            } ?? []
            return Residual(body: bodyLayers, shortcut: shortcut, after: after, maxBatch: settings.maxBatch)
        default:
            throw ModelFileError("\(place): a block has either layers or a body (a residual block)")
        }
    }
}
