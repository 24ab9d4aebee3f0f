/// A layer of a model built in Swift: one of the model file's layer types (docs/models.md).
public protocol ModelLayer: Sendable {
    /// The layer as a model file writes it.
    var modelEntry: ModelEntry { get }
}

/// One entry of a model file's layer list (contents internal: the layers below make them).
public struct ModelEntry: Sendable {
    enum Kind: Sendable {
        /// `{ type = TYPE, key = value, ... }`, the values written as TOML.
        case layer(type: String, settings: [(String, String)])
        /// A `block` layer and the residual block it uses.
        case residual(name: String?, body: [ModelEntry], shortcut: [ModelEntry], after: [ModelEntry])
        /// `{ type = "residual", body = [...] }`.
        case stage(body: [ModelEntry])
        /// A `block` layer (repeated, if `repeats`) and the chain of layers it uses.
        case chain(name: String?, repeats: Int?, layers: [ModelEntry])
    }
    let kind: Kind

    init(_ type: String, name: String?, _ settings: [(String, String?)] = []) {
        let written = settings.compactMap { key, value in value.map { (key, $0) } }
        kind = .layer(type: type, settings: (name.map { [("name", quoted($0))] } ?? []) + written)
    }

    init(_ kind: Kind) { self.kind = kind }
}

/// `nn.Conv2d`: `filters` output channels, a `kernel` x `kernel` window.
public struct Conv2D: ModelLayer {
    public var filters: Int, kernel: Int, stride: Int, padding: Int, bias: Bool, name: String?
    public init(filters: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true, name: String? = nil) {
        (self.filters, self.kernel, self.stride, self.padding, self.bias, self.name) = (filters, kernel, stride, padding, bias, name)
    }
    public var modelEntry: ModelEntry {
        ModelEntry("conv", name: name, [("filters", "\(filters)"), ("kernel", "\(kernel)"), ("stride", "\(stride)"),
                                        ("padding", "\(padding)"), ("bias", "\(bias)")])
    }
}

/// `nn.BatchNorm2d` (on maps) or `nn.BatchNorm1d` (on vectors), PyTorch's defaults.
public struct BatchNorm: ModelLayer {
    public var momentum: Double, eps: Double, name: String?
    public init(momentum: Double = 0.1, eps: Double = 1e-5, name: String? = nil) {
        (self.momentum, self.eps, self.name) = (momentum, eps, name)
    }
    public var modelEntry: ModelEntry {
        ModelEntry("batchnorm", name: name, [("momentum", "\(momentum)"), ("eps", "\(eps)")])
    }
}

/// `max(0, x)`.
public struct ReLU: ModelLayer {
    public init() {}
    public var modelEntry: ModelEntry { ModelEntry("relu", name: nil) }
}

/// `nn.MaxPool2d`; `stride` nil: the kernel.
public struct MaxPool: ModelLayer {
    public var kernel: Int, stride: Int?, padding: Int
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) { (self.kernel, self.stride, self.padding) = (kernel, stride, padding) }
    public var modelEntry: ModelEntry {
        ModelEntry("maxpool", name: nil, [("kernel", "\(kernel)"), ("stride", stride.map(String.init)), ("padding", "\(padding)")])
    }
}

/// `nn.AvgPool2d` (padding counted as zeros); `stride` nil: the kernel.
public struct AvgPool: ModelLayer {
    public var kernel: Int, stride: Int?, padding: Int
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) { (self.kernel, self.stride, self.padding) = (kernel, stride, padding) }
    public var modelEntry: ModelEntry {
        ModelEntry("avgpool", name: nil, [("kernel", "\(kernel)"), ("stride", stride.map(String.init)), ("padding", "\(padding)")])
    }
}

/// The mean of each channel's map: `[C, H, W]` -> `[C, 1, 1]`.
public struct GlobalAvgPool: ModelLayer {
    public init() {}
    public var modelEntry: ModelEntry { ModelEntry("globalavgpool", name: nil) }
}

/// Any shape -> a vector.
public struct Flatten: ModelLayer {
    public init() {}
    public var modelEntry: ModelEntry { ModelEntry("flatten", name: nil) }
}

/// `nn.Linear`; `out` nil: the data's number of classes. On a sequence `[T, F]` it maps every position.
public struct Linear: ModelLayer {
    public var out: Int?, bias: Bool, name: String?
    public init(out: Int? = nil, bias: Bool = true, name: String? = nil) { (self.out, self.bias, self.name) = (out, bias, name) }
    public var modelEntry: ModelEntry {
        ModelEntry("linear", name: name, [("out", out.map(String.init) ?? quoted("classes")), ("bias", bias ? nil : "false")])
    }
}

/// A one-channel image's rows as a sequence: `[1, T, F] -> [T, F]`.
public struct Rows: ModelLayer {
    public init() {}
    public var modelEntry: ModelEntry { ModelEntry("rows", name: nil) }
}

/// `nn.Embedding(V, dim)` over a text's tokens (V: its byte values); the first layer.
public struct Embedding: ModelLayer {
    public var dim: Int, name: String?
    public init(dim: Int, name: String? = nil) { (self.dim, self.name) = (dim, name) }
    public var modelEntry: ModelEntry { ModelEntry("embedding", name: name, [("dim", "\(dim)")]) }
}

/// Learned positions added to a sequence, `x + P[:T]`, the tensor `P [length, d]` under the
/// layer's own name (`length` nil: T).
public struct Positions: ModelLayer {
    public var length: Int?, name: String?
    public init(length: Int? = nil, name: String? = nil) { (self.length, self.name) = (length, name) }
    public var modelEntry: ModelEntry { ModelEntry("positions", name: name, [("length", length.map(String.init))]) }
}

/// `nn.LayerNorm` over the last dimension.
public struct LayerNorm: ModelLayer {
    public var eps: Double, name: String?
    public init(eps: Double = 1e-5, name: String? = nil) { (self.eps, self.name) = (eps, name) }
    public var modelEntry: ModelEntry { ModelEntry("layernorm", name: name, [("eps", "\(eps)")]) }
}

/// Multi-head self-attention over `[T, d]`: `qkv`, `heads` heads (causal or full), `proj`.
public struct Attention: ModelLayer {
    public var heads: Int, causal: Bool, name: String?
    public init(heads: Int, causal: Bool = false, name: String? = nil) { (self.heads, self.causal, self.name) = (heads, causal, name) }
    public var modelEntry: ModelEntry { ModelEntry("attention", name: name, [("heads", "\(heads)"), ("causal", "\(causal)")]) }
}

/// `nn.GELU()`, or with `tanh` `nn.GELU(approximate="tanh")`.
public struct GELU: ModelLayer {
    public var tanh: Bool
    public init(tanh: Bool = false) { self.tanh = tanh }
    public var modelEntry: ModelEntry { ModelEntry("gelu", name: nil, [("approximate", quoted(tanh ? "tanh" : "none"))]) }
}

/// The mean over a sequence's positions, `[T, d] -> [d]`.
public struct SequenceMean: ModelLayer {
    public init() {}
    public var modelEntry: ModelEntry { ModelEntry("mean", name: nil) }
}

/// `x + body(x)`, the body's layers named as the list's own: a pre-LayerNorm transformer's
/// `x = x + attention(ln1(x))` is `ResidualStage { LayerNorm(name: "ln1"); Attention(heads: 4, name: "attn") }`.
public struct ResidualStage: ModelLayer {
    let body: [any ModelLayer]
    public init(@ModelBuilder body: () -> [any ModelLayer]) { self.body = body() }
    public var modelEntry: ModelEntry { ModelEntry(.stage(body: body.map(\.modelEntry))) }
}

/// `nn.Dropout(p)` in training; its mask a function of the seed, the epoch and the sample.
public struct Dropout: ModelLayer {
    public var p: Double
    public init(_ p: Double) { self.p = p }
    public var modelEntry: ModelEntry { ModelEntry("dropout", name: nil, [("p", "\(p)")]) }
}

/// A recurrent layer over a one-channel image's rows (or a `[T, I]` input): its last step's
/// hidden state. `nn.RNN`, `nn.LSTM` or `nn.GRU` with `batch_first`.
public struct Recurrent: ModelLayer {
    public enum Cell: String, Sendable { case rnn, lstm, gru }
    public var cell: Cell, hidden: Int, name: String?
    public init(_ cell: Cell, hidden: Int, name: String? = nil) { (self.cell, self.hidden, self.name) = (cell, hidden, name) }
    public var modelEntry: ModelEntry { ModelEntry(cell.rawValue, name: name, [("hidden", "\(hidden)")]) }
}

/// `after(body(x) + shortcut(x))`: the shortcut empty for the identity (where the body keeps
/// the shape), else a projection such as a strided 1x1 convolution and batch norm.
public struct Residual: ModelLayer {
    let body: [any ModelLayer], shortcut: [any ModelLayer], after: [any ModelLayer]
    public var name: String?
    public init(name: String? = nil, @ModelBuilder body: () -> [any ModelLayer],
                @ModelBuilder shortcut: () -> [any ModelLayer] = { [] },
                @ModelBuilder after: () -> [any ModelLayer] = { [] }) {
        (self.name, self.body, self.shortcut, self.after) = (name, body(), shortcut(), after())
    }
    public var modelEntry: ModelEntry {
        ModelEntry(.residual(name: name, body: body.map(\.modelEntry), shortcut: shortcut.map(\.modelEntry),
                             after: after.map(\.modelEntry)))
    }
}

/// Layers as one block (`nn.Sequential`, or a module's layers in order), `repeats` times if
/// given: the copies' tensors named `NAME.0.…`, `NAME.1.…`, as `nn.ModuleList`'s.
public struct Block: ModelLayer {
    let layers: [any ModelLayer]
    public var name: String?, repeats: Int?
    public init(name: String? = nil, repeats: Int? = nil, @ModelBuilder layers: () -> [any ModelLayer]) {
        (self.name, self.repeats, self.layers) = (name, repeats, layers())
    }
    public var modelEntry: ModelEntry { ModelEntry(.chain(name: name, repeats: repeats, layers: layers.map(\.modelEntry))) }
}
