import CohortReporting
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
    // Host and process in the name: writers on other nodes of a shared file system never meet.
    let temporary = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).tmp-\(shortHostName)-\(getpid())"
    do {
        try writeDurably(contents, to: temporary, reportedAs: path)
        guard rename(temporary, path) == 0 else {
            throw RunError("\(path): cannot rename into place (\(String(cString: strerror(errno))))")
        }
    } catch {
        unlink(temporary)
        throw error
    }
}

/// Writes `contents` to a new file `path` and flushes it to disk (errors name `reportedAs`):
/// for files inside a directory that is itself renamed into place once complete.
func writeDurably(_ contents: Data, to path: String, reportedAs name: String? = nil) throws {
    let name = name ?? path
    guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw RunError("\(name): cannot write (\(String(cString: strerror(errno))))")
    }
    do {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: contents)
        try handle.synchronize()
        try handle.close()
    } catch {
        throw RunError("\(name): cannot write (\(error.localizedDescription))")
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
    /// Parses JSON text, keeping the order of object keys and reading numbers exactly as
    /// `Double(String)` does (so a double written by `serialized()` reads back bit for bit).
    public init(parsing data: Data) throws {
        var parser = JSONParser(bytes: [UInt8](data))
        self = try parser.document()
    }

    /// Reads and parses the JSON file at `path`, naming it in any error.
    public init(contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw RunError("\(path): cannot read") }
        do { try self.init(parsing: data) } catch let error as RunError { throw RunError("\(path): \(error)") }
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

/// A strict recursive-descent JSON reader (RFC 8259), for `JSON(parsing:)`.
struct JSONParser {
    let bytes: [UInt8]
    var at = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func failure(_ what: String) -> RunError { RunError("not valid JSON: \(what) at byte \(at)") }

    mutating func document() throws -> JSON {
        let value = try self.value(depth: 0)
        skipSpace()
        guard at == bytes.count else { throw failure("text after the value") }
        return value
    }

    mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) { at += 1 }
    }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < 512 else { throw failure("nesting too deep") }
        skipSpace()
        guard at < bytes.count else { throw failure("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var pairs: [(String, JSON)] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(pairs) }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(":")
                pairs.append((key, try value(depth: depth + 1)))
                skipSpace()
                if try expectEither(",", "}") == "}" { return .object(pairs) }
            }
        case UInt8(ascii: "["):
            at += 1
            var items: [JSON] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                if try expectEither(",", "]") == "]" { return .array(items) }
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    mutating func expect(_ c: Character) throws {
        guard at < bytes.count, bytes[at] == c.asciiValue! else { throw failure("expected '\(c)'") }
        at += 1
    }

    mutating func expectEither(_ a: Character, _ b: Character) throws -> Character {
        guard at < bytes.count else { throw failure("unexpected end") }
        if bytes[at] == a.asciiValue! { at += 1; return a }
        if bytes[at] == b.asciiValue! { at += 1; return b }
        throw failure("expected '\(a)' or '\(b)'")
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else { throw failure("bad literal") }
        at += w.count
    }

    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, as RFC 8259 has it, read by `Double(String)`.
    mutating func number() throws -> Double {
        let start = at
        func digits() -> Int {
            let from = at
            while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
            return at - from
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
        let leadingZero = at < bytes.count && bytes[at] == UInt8(ascii: "0")
        let whole = digits()
        guard whole > 0, !(leadingZero && whole > 1) else { throw failure("bad number") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw failure("bad number") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw failure("bad number") }
        }
        guard let text = String(bytes: bytes[start..<at], encoding: .ascii), let value = Double(text), value.isFinite else {
            throw failure("bad number")
        }
        return value
    }

    mutating func string() throws -> String {
        try expect("\"")
        var out: [UInt8] = []
        while true {
            guard at < bytes.count else { throw failure("unterminated string") }
            let c = bytes[at]
            at += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let text = String(bytes: out, encoding: .utf8) else { throw failure("string is not UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard at < bytes.count else { throw failure("unterminated escape") }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {  // a surrogate pair
                        try expect("\\"); try expect("u")
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("bad surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw failure("bad \\u escape") }
                    out += Array(String(Character(u)).utf8)
                default: throw failure("bad escape")
                }
            default:
                guard c >= 0x20 else { throw failure("control character in a string") }
                out.append(c)
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        let isHex = { (b: UInt8) in (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }
        guard at + 4 <= bytes.count, bytes[at..<(at + 4)].allSatisfy(isHex),
              let v = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else {
            throw failure("bad \\u escape")
        }
        at += 4
        return v
    }
}
