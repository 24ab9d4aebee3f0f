/// A value in a model file: what TOML holds (integers, numbers, strings, booleans, tables and
/// arrays), kept as written so that the builder can say which key of which layer is wrong.
public enum ModelValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case integer(Int)
    case number(Double)
    case text(String)
    case flag(Bool)
    case table([String: ModelValue])
    case list([ModelValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(Bool.self) { self = .flag(v) }
        else if let v = try? c.decode(String.self) { self = .text(v) }
        else if let v = try? c.decode([String: ModelValue].self) { self = .table(v) }
        else { self = .list(try c.decode([ModelValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .integer(let v): try c.encode(v)
        case .number(let v): try c.encode(v)
        case .text(let v): try c.encode(v)
        case .flag(let v): try c.encode(v)
        case .table(let v): try c.encode(v)
        case .list(let v): try c.encode(v)
        }
    }

    public var description: String {
        switch self {
        case .integer(let v): return String(v)
        case .number(let v): return String(v)
        case .text(let v): return "\"\(v)\""
        case .flag(let v): return String(v)
        case .table(let v): return "{ " + v.keys.sorted().map { "\($0) = \(v[$0]!)" }.joined(separator: ", ") + " }"
        case .list(let v): return "[" + v.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

/// A key of any name, for tables whose keys are the file's (a layer's settings).
struct AnyKey: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

/// Integer arithmetic over named parameters, as model files write sizes: `"2 * width"`,
/// `"(depth - 2) / 6"`. Grammar: `sum = product (("+" | "-") product)*`,
/// `product = factor (("*" | "/") factor)*`, `factor = integer | name | "(" sum ")" | "-" factor`.
/// Division must be exact; a result beyond ±2^40 is refused (no size is that large, and the
/// arithmetic never overflows).
struct IntegerExpression {
    let text: String

    func evaluate(_ scope: [String: Int]) throws -> Int {
        var parser = Parser(characters: Array(text), scope: scope)
        let value = try parser.sum()
        parser.skipSpaces()
        guard parser.position == parser.characters.count else {
            throw ExpressionError("unexpected '\(parser.characters[parser.position])' in \"\(text)\"")
        }
        return value
    }

    struct ExpressionError: Error { let message: String; init(_ m: String) { message = m } }

    private struct Parser {
        let characters: [Character]
        let scope: [String: Int]
        var position = 0

        init(characters: [Character], scope: [String: Int]) { self.characters = characters; self.scope = scope }

        mutating func skipSpaces() { while position < characters.count, characters[position] == " " { position += 1 } }

        mutating func take(_ c: Character) -> Bool {
            skipSpaces()
            guard position < characters.count, characters[position] == c else { return false }
            position += 1
            return true
        }

        static let limit = 1 << 40

        func checked(_ value: Int) throws -> Int {
            guard abs(value) <= Self.limit else { throw ExpressionError("\"\(String(characters))\" is too large") }
            return value
        }

        mutating func sum() throws -> Int {
            var value = try product()
            while true {
                if take("+") { value = try checked(value + (try product())) }
                else if take("-") { value = try checked(value - (try product())) }
                else { return value }
            }
        }

        mutating func product() throws -> Int {
            var value = try factor()
            while true {
                if take("*") {
                    let (result, overflow) = value.multipliedReportingOverflow(by: try factor())
                    guard !overflow else { throw ExpressionError("\"\(String(characters))\" is too large") }
                    value = try checked(result)
                } else if take("/") {
                    let divisor = try factor()
                    guard divisor != 0, value % divisor == 0 else {
                        throw ExpressionError("\(value) / \(divisor) is not a whole number in \"\(String(characters))\"")
                    }
                    value /= divisor
                } else { return value }
            }
        }

        mutating func factor() throws -> Int {
            if take("(") {
                let value = try sum()
                guard take(")") else { throw ExpressionError("missing ')' in \"\(String(characters))\"") }
                return value
            }
            if take("-") { return -(try factor()) }
            skipSpaces()
            let start = position
            while position < characters.count, characters[position].isLetter || characters[position].isNumber
                    || characters[position] == "_" { position += 1 }
            let token = String(characters[start..<position])
            if let value = Int(token) { return try checked(value) }
            guard let first = token.first, first.isLetter || first == "_" else {
                throw ExpressionError("expected a number or a name in \"\(String(characters))\"")
            }
            guard let value = scope[token] else {
                let known = scope.keys.sorted().joined(separator: ", ")
                throw ExpressionError("unknown name '\(token)' in \"\(String(characters))\" (known: \(known))")
            }
            return value
        }
    }
}
