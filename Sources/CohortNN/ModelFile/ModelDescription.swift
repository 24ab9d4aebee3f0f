import Foundation
import TOMLKit

/// A mistake in a model file, naming the place (`layers[3] (conv "conv2")`), the key and the
/// shapes involved.
public struct ModelFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A network as a model file describes it (docs/models.md): its parameters, its layers in
/// order, and named blocks that layers repeat. Parsed from TOML into these Codable types;
/// `ModelBuilder` turns it into a `Network` for a given input shape.
///
///     name = "resnet20"
///     input = [3, 32, 32]                  # optional: the data's shape is checked against it
///     parameters = { n = 3, width = 16 }   # integers that values may name; `classes` is the data's
///     layers = [
///       { type = "conv", name = "conv1", filters = "width", kernel = 3, padding = 1, bias = false },
///       { type = "block", name = "layer1", block = "basic", repeat = "n", out = "width", stride = 1 },
///       ...
///     ]
///     [blocks.basic]                       # a residual block: body + shortcut, then after
///     parameters = { out = 16, stride = 1 }
///     body = [ ... ]
///     shortcut = [ ... ]                   # where the body changes the shape (else the identity)
///     after = [ { type = "relu" } ]
public struct ModelDescription: Codable, Equatable, Sendable {
    public var name: String?
    public var input: [Int]?
    public var parameters: [String: Int]
    public var layers: [LayerEntry]
    public var blocks: [String: BlockDescription]

    enum CodingKeys: String, CodingKey, CaseIterable { case name, input, parameters, layers, blocks }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "the file")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        input = try c.decodeIfPresent([Int].self, forKey: .input)
        parameters = try c.decodeIfPresent([String: Int].self, forKey: .parameters) ?? [:]
        layers = try c.decode([LayerEntry].self, forKey: .layers)
        blocks = try c.decodeIfPresent([String: BlockDescription].self, forKey: .blocks) ?? [:]
    }

    /// Parses TOML text; `source` (a path) begins every message. A model file is ASCII text
    /// (tabs, line ends and printable characters): toml++ stops the process on some other
    /// characters where a table's or key's name should be, so they are refused first.
    public init(toml text: String, source: String) throws(ModelFileError) {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let bad = line.unicodeScalars.first(where: { !($0 == "\t" || $0 == "\r" || (0x20..<0x7F).contains($0.value)) }) {
                throw ModelFileError("\(source):\(number + 1): a model file is ASCII text; this line has U+"
                                     + String(bad.value, radix: 16, uppercase: true))
            }
        }
        do {
            self = try TOMLDecoder().decode(ModelDescription.self, from: text)
        } catch let error as TOMLParseError {
            throw ModelFileError("\(source):\(error.source.begin.line): \(error.description)")
        } catch let error as DecodingError {
            throw ModelFileError("\(source): \(Self.describe(error))")
        } catch let error as ModelFileError {
            throw ModelFileError("\(source): \(error.description)")
        } catch {
            throw ModelFileError("\(source): \(error)")
        }
    }

    /// `layers[2].filters: expected an integer` from a decoding error's path and kind.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.reduce("") { text, key in
                if let i = key.intValue { return text + "[\(i)]" }
                if key.stringValue.hasPrefix("Index ") { return text + "[\(key.stringValue.dropFirst(6))]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let place = path(context.codingPath)
            return (place.isEmpty ? "" : place + ": ") + "missing key '\(key.stringValue)'"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is [Int].Type: return "an array of integers"
        case is String.Type: return "a string"
        case is [String: Int].Type: return "a table of integers"
        default: return "a value of another kind (\(type))"
        }
    }
}

/// One entry of a layer list: its `type`, optional `name` and settings, kept as written.
public struct LayerEntry: Codable, Equatable, Sendable {
    public var settings: [String: ModelValue]

    public init(_ settings: [String: ModelValue]) { self.settings = settings }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        var settings: [String: ModelValue] = [:]
        for key in c.allKeys { settings[key.stringValue] = try c.decode(ModelValue.self, forKey: key) }
        self.settings = settings
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        for (key, value) in settings { try c.encode(value, forKey: AnyKey(stringValue: key)) }
    }

    public var type: String? { if case .text(let t)? = settings["type"] { return t } else { return nil } }
    public var name: String? { if case .text(let t)? = settings["name"] { return t } else { return nil } }
}

/// A named block: a chain of `layers`, or a residual block, `after(body(x) + shortcut(x))`.
/// `parameters` are the block's own, with their defaults; a layer that uses the block sets them.
public struct BlockDescription: Codable, Equatable, Sendable {
    public var parameters: [String: Int]
    public var layers: [LayerEntry]?
    public var body: [LayerEntry]?
    public var shortcut: [LayerEntry]?
    public var after: [LayerEntry]?

    enum CodingKeys: String, CodingKey, CaseIterable { case parameters, layers, body, shortcut, after }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "a block")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        parameters = try c.decodeIfPresent([String: Int].self, forKey: .parameters) ?? [:]
        layers = try c.decodeIfPresent([LayerEntry].self, forKey: .layers)
        body = try c.decodeIfPresent([LayerEntry].self, forKey: .body)
        shortcut = try c.decodeIfPresent([LayerEntry].self, forKey: .shortcut)
        after = try c.decodeIfPresent([LayerEntry].self, forKey: .after)
    }
}

private func rejectUnknownKeys(_ decoder: Decoder, allowed: [String], in what: String) throws {
    let keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
    if let unknown = keys.sorted().first(where: { !allowed.contains($0) }) {
        let place = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        throw ModelFileError("\(place.isEmpty ? "" : place + ": ")unknown key '\(unknown)' in \(what) (known: \(allowed.joined(separator: ", ")))")
    }
}
