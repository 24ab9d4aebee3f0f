import Foundation

/// A model file (docs/models.md): its text as written, where it came from, and what it
/// describes. The built-in models are such files too (`models/*.toml`, compiled into the
/// program), so every network is built the same way.
public struct ModelFile: Equatable, Sendable {
    public let text: String
    /// A path, or `built-in NAME`; every message begins with it.
    public let source: String
    public let description: ModelDescription

    public init(text: String, source: String) throws(ModelFileError) {
        self.text = text
        self.source = source
        description = try ModelDescription(toml: text, source: source)
    }

    public init(path: String) throws(ModelFileError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelFileError("\(path): cannot read the model file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ModelFileError("\(path): not UTF-8 text") }
        try self.init(text: text, source: path)
    }

    /// The built-in model `kind`, from the file of its name in `models/`.
    public static func builtin(_ kind: ModelKind) -> ModelFile {
        let bytes: [UInt8]
        switch kind {
        case .cnn: bytes = PackageResources.cnn_toml
        case .rnn: bytes = PackageResources.rnn_toml
        case .lstm: bytes = PackageResources.lstm_toml
        case .gru: bytes = PackageResources.gru_toml
        case .resnet20: bytes = PackageResources.resnet20_toml
        case .transformerRows: bytes = PackageResources.transformer_rows_toml
        case .gptChar: bytes = PackageResources.gpt_char_toml
        }
        do {
            return try ModelFile(text: String(decoding: bytes, as: UTF8.self), source: "built-in \(kind.rawValue)")
        } catch {
            fatalError("the built-in model \(kind.rawValue) does not parse: \(error)")
        }
    }

    /// `--model NAME|PATH`: a built-in model by name, else the file at that path.
    public static func named(_ nameOrPath: String) throws(ModelFileError) -> ModelFile {
        if let kind = ModelKind(rawValue: nameOrPath) { return builtin(kind) }
        guard nameOrPath.hasSuffix(".toml") || FileManager.default.fileExists(atPath: nameOrPath) else {
            let names = ModelKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelFileError("--model \(nameOrPath): neither a built-in model (\(names)) nor a model file")
        }
        return try ModelFile(path: nameOrPath)
    }

    /// The network for `settings`, with errors prefixed by the file's source.
    public func build(_ settings: BuildSettings) throws(ModelFileError) -> Network {
        do { return try description.build(settings) } catch { throw ModelFileError("\(source): \(error.description)") }
    }
}
