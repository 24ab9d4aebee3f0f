import CohortBase
import Foundation

/// A sweep file: a small subset of TOML, enough for a grid and its fixed flags.
///
///     # CIFAR-10 CNN, the report's grid
///     name = "cifar10-cnn"          # optional (default: the file's name)
///     ranks = 2                     # optional (default: 1; --ranks overrides)
///
///     [train]                       # flags of `cohort train` given to every run
///     model = "cnn"
///     dataset = "cifar10"
///     quiet = true                  # a flag without value: true or false
///
///     [grid]                        # one axis per flag; the runs are the product
///     lr = [0.001, 0.005, 0.01]
///     optimizer = ["adam", "adagrad"]
///
/// Values are strings in double quotes, numbers, `true`/`false`, or one-line arrays of
/// them. Keys are flag names (`batch-size` or `batch_size`). Comments start with `#`.
/// Anything else is an error naming the file and line.
public struct SweepFile {
    public var name: String?
    public var ranks: Int?
    public var fixed: [String] = []
    public var axes: [GridAxis] = []

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CohortError.settings("\(path): cannot read the sweep file") }
        guard let text = String(data: data, encoding: .utf8) else { throw CohortError.settings("\(path): not UTF-8 text") }
        try self.init(text: text, source: path)
    }

    public init(text: String, source: String) throws {
        var table = ""
        var seen = Set<String>()
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func failure(_ message: String) -> CohortError { CohortError.settings("\(source):\(number + 1): \(message)") }
            let line = try Self.stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw failure("a table header is [name]") }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard table == "train" || table == "grid" else {
                    throw failure("unknown table [\(table)]: a sweep file has [train] and [grid]")
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { throw failure("expected key = value") }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let valueText = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw failure("missing key before '='") }
            guard seen.insert("\(table).\(key)").inserted else { throw failure("\(key) is given twice") }
            let value: Value
            do { value = try Self.parseValue(valueText) } catch let error as CohortError { throw failure(error.description) }
            let flag = key.replacingOccurrences(of: "_", with: "-")
            switch (table, value) {
            case ("", .scalar(let s)) where key == "name": name = s
            case ("", .scalar(let s)) where key == "ranks":
                guard let n = Int(s), n > 0 else { throw failure("ranks must be a positive integer, got \(s)") }
                ranks = n
            case ("", _): throw failure("unknown top-level key \(key) (name, ranks; flags go under [train] or [grid])")
            case ("train", .scalar(let s)): fixed += SweepSpec.flagArguments(flag, s)
            case ("train", .array): throw failure("\(key): [train] takes one value; put axes under [grid]")
            case ("grid", .array(let values)):
                do { axes.append(try GridAxis(flag: key, values: values)) } catch let error as CohortError {
                    throw failure(error.description)
                }
            case ("grid", .scalar): throw failure("\(key): a grid axis is an array, e.g. [0.001, 0.01]")
            default: throw failure("unexpected \(key)")
            }
        }
    }

    enum Value { case scalar(String), array([String]) }

    static func stripComment(_ line: String) throws -> String {
        var inString = false
        for (i, c) in line.enumerated() {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(line.prefix(i)) }
        }
        return line
    }

    static func parseValue(_ text: String) throws -> Value {
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else { throw CohortError.settings("an array must end with ] on the same line") }
            let inner = text.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
            if inner.isEmpty { return .array([]) }
            var items = splitOutsideQuotes(inner).map { $0.trimmingCharacters(in: .whitespaces) }
            if items.last == "" { items.removeLast() }  // a trailing comma, as TOML allows
            return .array(try items.map { try parseScalar($0) })
        }
        return .scalar(try parseScalar(text))
    }

    /// `a, "b,c", d` -> `["a", " \"b,c\"", " d"]`: commas inside double quotes belong to the string.
    static func splitOutsideQuotes(_ text: String) -> [String] {
        var items = [""], quoted = false
        for c in text {
            if c == "\"" { quoted.toggle() }
            if c == "," && !quoted { items.append("") } else { items[items.count - 1].append(c) }
        }
        return items
    }

    static func parseScalar(_ text: String) throws -> String {
        if text.hasPrefix("\"") {
            guard text.count >= 2, text.hasSuffix("\""), !text.dropFirst().dropLast().contains("\"") else {
                throw CohortError.settings("unterminated string \(text)")
            }
            return String(text.dropFirst().dropLast())
        }
        if text == "true" || text == "false" { return text }
        guard !text.isEmpty, Double(text.replacingOccurrences(of: "_", with: "")) != nil else {
            throw CohortError.settings("'\(text)' is not a value (strings need double quotes)")
        }
        return text.replacingOccurrences(of: "_", with: "")
    }
}
