import Foundation

/// How Cohort reads and writes its JSON files (config.json, state.json, summary.json,
/// bench.json, sweep.json, ...): Foundation's Codable with sorted keys, so a file reads the
/// same every time, and doubles written shortest and read back bit for bit. JSON has no
/// NaN or infinity: they are written as the strings "nan", "inf" and "-inf".
public enum JSONFile {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        // Only values that cannot be JSON throw (none of Cohort's types hold one).
        guard let data = try? encoder.encode(value) else { preconditionFailure("\(T.self) is not encodable as JSON") }
        return data
    }

    /// Compact, one line (a record of metrics.jsonl, a message).
    public static func line<T: Encodable>(_ value: T) -> String { String(decoding: encode(value, pretty: false), as: UTF8.self) }

    /// Writes `value` to `path` atomically, indented, with a final newline.
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try writeAtomically(encode(value) + Data("\n".utf8), to: path)
    }

    /// Decodes `data`; an error names `source` and what does not fit, in one line.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                        nan: "nan")
        do { return try decoder.decode(type, from: data) } catch let error as DecodingError {
            throw CohortError.failure("\(source): \(describe(error))")
        } catch let error as CohortError {
            throw error.prefixed("\(source): ")
        } catch {
            throw CohortError.failure("\(source): not valid JSON")
        }
    }

    /// Reads and decodes the JSON file at `path`.
    public static func read<T: Decodable>(_ type: T.Type, path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw CohortError.failure("\(path): cannot read") }
        return try decode(type, from: data, source: path)
    }

    static func describe(_ error: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "no \(key.stringValue)\(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription.lowercased().trimmingCharacters(in: ["."]))\(at(context.codingPath))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON"
                : "\(context.debugDescription.lowercased().trimmingCharacters(in: ["."]))\(at(context.codingPath))"
        @unknown default: return "not what was expected"
        }
    }
}

/// Any JSON value, for settings handled key by key (flags given on a command line merged
/// into defaults, the settings two runs must share). Whole numbers stay integers.
public enum JSONValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null
        } else if let b = try? container.decode(Bool.self) { self = .bool(b)
        } else if let i = try? container.decode(Int64.self) { self = .int(i)
        } else if let d = try? container.decode(Double.self) { self = .double(d)
        } else if let s = try? container.decode(String.self) { self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) { self = .array(a)
        } else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }

    /// `value` as a JSON value (its Codable form).
    public init<T: Encodable>(_ value: T) {
        // What JSONFile encodes, JSONFile decodes.
        self = (try? JSONFile.decode(JSONValue.self, from: JSONFile.encode(value, pretty: false), source: "")) ?? .null
    }

    /// This value decoded as `T`; errors name `source`.
    public func decode<T: Decodable>(_ type: T.Type, source: String) throws -> T {
        try JSONFile.decode(type, from: JSONFile.encode(self, pretty: false), source: source)
    }

    /// `base` with `given` (values by key) put over its own, decoded again as `T`: settings
    /// given on a command line over defaults or over a recorded run.
    public static func merging<T: Codable>(_ given: [String: JSONValue], over base: T) throws -> T {
        var merged = JSONValue(base).objectValue ?? [:]
        merged.merge(given) { $1 }
        return try JSONValue.object(merged).decode(T.self, source: "settings")
    }

    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }

    /// Compact JSON text, keys sorted.
    public var description: String { JSONFile.line(self) }
}
