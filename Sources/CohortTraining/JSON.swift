import Foundation

/// A JSON value with ordered object keys, so files Cohort writes read the same every
/// time (Foundation's serializer neither keeps key order nor prints doubles shortest).
public indirect enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool { a.serialized() == b.serialized() }

    /// Compact (`pretty: false`, one line) or indented text.
    public func serialized(pretty: Bool = false, indent: String = "") -> String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d):
            guard d.isFinite else { return "null" }  // JSON has no NaN or infinity
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        case .string(let s): return JSON.quote(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            if !pretty { return "[" + items.map { $0.serialized() }.joined(separator: ",") + "]" }
            let inner = indent + "  "
            return "[\n" + items.map { inner + $0.serialized(pretty: true, indent: inner) }.joined(separator: ",\n")
                + "\n" + indent + "]"
        case .object(let pairs):
            if pairs.isEmpty { return "{}" }
            if !pretty {
                return "{" + pairs.map { JSON.quote($0.0) + ":" + $0.1.serialized() }.joined(separator: ",") + "}"
            }
            let inner = indent + "  "
            return "{\n" + pairs.map { inner + JSON.quote($0.0) + ": " + $0.1.serialized(pretty: true, indent: inner) }
                .joined(separator: ",\n") + "\n" + indent + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
                ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over the target, so a reader never sees half a file.
public func writeAtomically(_ contents: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let temporary = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
        throw RunError("\(path): cannot write (\(String(cString: strerror(errno))))")
    }
    do {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.write(contentsOf: contents)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else {
            throw RunError("\(path): cannot rename into place (\(String(cString: strerror(errno))))")
        }
    } catch {
        unlink(temporary)
        throw error as? RunError ?? RunError("\(path): cannot write (\(error.localizedDescription))")
    }
}

public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
}

/// An error of a run (its files, its settings), with a message that names what is wrong.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A bad setting (a flag's value, or flags that do not fit together). Every rank sees
/// the same settings, so every rank finds the same error at the same point.
public struct SettingsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension JSON {
    /// Parses JSON text (objects keep the file's key order only as far as Foundation does:
    /// readers look keys up, they do not rely on order).
    public init(parsing data: Data) throws {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw RunError("not valid JSON (\(error.localizedDescription))")
        }
        self = JSON(foundation: object)
    }

    /// Reads and parses the JSON file at `path`, naming it in any error.
    public init(contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw RunError("\(path): cannot read") }
        do { try self.init(parsing: data) } catch let error as RunError { throw RunError("\(path): \(error)") }
    }

    private init(foundation value: Any) {
        switch value {
        // Foundation hands JSON booleans over as NSNumbers of type "c" (char).
        case let n as NSNumber where String(cString: n.objCType) == "c": self = .bool(n.boolValue)
        case let n as NSNumber: self = .number(n.doubleValue)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSON.init(foundation:)))
        case let d as [String: Any]: self = .object(d.keys.sorted().map { ($0, JSON(foundation: d[$0]!)) })
        default: self = .null
        }
    }

    public subscript(key: String) -> JSON? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    public var number: Double? { if case .number(let d) = self { return d } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
}
