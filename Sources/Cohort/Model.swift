import CohortNN

/// A network as a model file describes one (docs/models.md): layers in order, shapes following
/// from the data. Built in Swift from the file's layers, read from a model file, or one of the
/// built-in models; either way it is a model file, which the run directory keeps.
///
///     let model = try Model("small") {
///         Conv2D(filters: 16, kernel: 3, padding: 1)
///         BatchNorm()
///         ReLU()
///         GlobalAvgPool()
///         Flatten()
///         Linear()                      // out: the data's number of classes
///     }
public struct Model: Sendable, CustomStringConvertible {
    let file: ModelFile
    /// Values for the model file's parameters (`--model-param n=5`).
    public var parameters: [String: Int] = [:]

    /// A network from the model file's layers; a mistake (a residual block whose shortcut is
    /// missing where the shape changes, a pooling larger than its input) is reported when
    /// training starts, with the data's shape.
    public init(_ name: String, @ModelBuilder layers: () -> [any ModelLayer]) throws {
        try self.init(file: ModelFile(text: ModelText(name: name, layers: layers()).toml, source: "model \(name)"))
    }

    /// The model file at `path` (TOML, docs/models.md).
    public init(contentsOf path: String) throws {
        try self.init(file: ModelFile(path: path))
    }

    /// A built-in model: `cnn`, `rnn`, `lstm`, `gru`, `resnet20`, `transformer-rows` or `gpt-char`.
    public static func builtin(_ name: String) throws -> Model {
        guard let kind = ModelKind(rawValue: name) else {
            throw ModelFileError("no built-in model \(name) (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return Model(file: ModelFile.builtin(kind))
    }

    init(file: ModelFile) { self.file = file }

    /// The model's name.
    public var name: String { file.description.name ?? "model" }

    /// The model file, as the run directory keeps it.
    public var description: String { file.text }

    var spec: ModelSpec { ModelSpec(file: file, parameters: parameters) }
}

/// Collects a model's layers, written one per line.
@resultBuilder
public enum ModelBuilder {
    public static func buildExpression(_ layer: any ModelLayer) -> [any ModelLayer] { [layer] }
    public static func buildBlock(_ parts: [any ModelLayer]...) -> [any ModelLayer] { parts.flatMap { $0 } }
    public static func buildArray(_ parts: [[any ModelLayer]]) -> [any ModelLayer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any ModelLayer]?) -> [any ModelLayer] { part ?? [] }
    public static func buildEither(first: [any ModelLayer]) -> [any ModelLayer] { first }
    public static func buildEither(second: [any ModelLayer]) -> [any ModelLayer] { second }
}

/// Writes a model's layers as a model file: each layer an inline table of `layers`, each
/// residual block or block of layers a `[blocks.NAME]` table that a `block` layer uses.
struct ModelText {
    private var blocks: [String] = []
    private var layers: [String] = []
    private let name: String

    init(name: String, layers: [any ModelLayer]) {
        self.name = name
        self.layers = layers.map { entry($0.modelEntry) }
    }

    var toml: String {
        "name = \(quoted(name))\nlayers = [\n" + layers.map { "  \($0),\n" }.joined() + "]\n" + blocks.joined()
    }

    private mutating func entry(_ entry: ModelEntry) -> String {
        switch entry.kind {
        case .layer(let type, let settings):
            return table([("type", quoted(type))] + settings)
        case .residual(let name, let body, let shortcut, let after):
            let block = "block\(blocks.count + 1)"
            blocks.append("")  // its place, so that nested blocks take the next numbers
            let index = blocks.count - 1
            var text = "\n[blocks.\(block)]\n"
            text += "body = " + list(body)
            if !shortcut.isEmpty { text += "shortcut = " + list(shortcut) }
            if !after.isEmpty { text += "after = " + list(after) }
            blocks[index] = text
            return table([("type", quoted("block")), ("block", quoted(block))] + (name.map { [("name", quoted($0))] } ?? []))
        case .chain(let name, let repeats, let layers):
            let block = "block\(blocks.count + 1)"
            blocks.append("")
            let index = blocks.count - 1
            blocks[index] = "\n[blocks.\(block)]\nlayers = " + list(layers)
            return table([("type", quoted("block")), ("block", quoted(block))] + (name.map { [("name", quoted($0))] } ?? [])
                         + (repeats.map { [("repeat", "\($0)")] } ?? []))
        case .stage(let body):
            return table([("type", quoted("residual")), ("body", "[" + body.map { self.entry($0) }.joined(separator: ", ") + "]")])
        }
    }

    private mutating func list(_ entries: [ModelEntry]) -> String {
        "[\n" + entries.map { "  \(entry($0)),\n" }.joined() + "]\n"
    }

    private func table(_ settings: [(String, String)]) -> String {
        "{ " + settings.map { "\($0.0) = \($0.1)" }.joined(separator: ", ") + " }"
    }
}

/// A TOML basic string.
func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
