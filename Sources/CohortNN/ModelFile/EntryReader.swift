/// One layer entry's settings, read key by key: each read marks its key used, so `finish`
/// can name any key no layer of this type takes.
struct EntryReader {
    static let types = ["conv", "batchnorm", "relu", "maxpool", "avgpool", "globalavgpool", "flatten", "linear", "dropout",
                        "rnn", "lstm", "gru", "block", "rows", "embedding", "positions", "layernorm", "attention", "gelu",
                        "mean", "residual"]
    let entry: LayerEntry
    private(set) var place: String
    private var used: Set<String> = ["type", "name"]

    init(entry: LayerEntry, place: String) { self.entry = entry; self.place = place }

    func error(_ message: String) -> ModelFileError { ModelFileError("\(place): \(message)") }

    mutating func type() throws(ModelFileError) -> String {
        guard let value = entry.settings["type"] else { throw error("missing key 'type'") }
        guard case .text(let type) = value else { throw error("type: expected a string, got \(value)") }
        place += " (\(type)\(entry.name.map { " \"\($0)\"" } ?? ""))"
        return type
    }

    mutating func name() throws(ModelFileError) -> String? {
        guard let value = entry.settings["name"] else { return nil }
        guard case .text(let name) = value, !name.isEmpty, !name.contains("."), !name.contains(" ") else {
            throw error("name: expected a string without dots or spaces, got \(value)")
        }
        return name
    }

    var remainingKeys: [String] { entry.settings.keys.filter { !used.contains($0) }.sorted() }

    mutating func integer(_ key: String, _ scope: [String: Int], default value: Int? = nil) throws(ModelFileError) -> Int {
        guard let result = try optionalInteger(key, scope) ?? value else { throw error("missing key '\(key)'") }
        return result
    }

    mutating func optionalInteger(_ key: String, _ scope: [String: Int]) throws(ModelFileError) -> Int? {
        used.insert(key)
        return try entry.settings[key].map { value throws(ModelFileError) in try evaluate(value, key: key, scope) }
    }

    /// An integer, or a string that is an expression over `scope` (`IntegerExpression`).
    func evaluate(_ value: ModelValue, key: String, _ scope: [String: Int]) throws(ModelFileError) -> Int {
        switch value {
        case .integer(let v): return v
        case .text(let expression):
            do { return try IntegerExpression(text: expression).evaluate(scope) } catch let e as IntegerExpression.ExpressionError {
                throw error("\(key): \(e.message)")
            } catch { throw self.error("\(key): \(error)") }
        default: throw error("\(key): expected an integer or an expression in quotes, got \(value)")
        }
    }

    mutating func number(_ key: String, default value: Double? = nil) throws(ModelFileError) -> Double {
        used.insert(key)
        switch entry.settings[key] {
        case .number(let v)?: return v
        case .integer(let v)?: return Double(v)
        case nil:
            guard let value else { throw error("missing key '\(key)'") }
            return value
        case let other?: throw error("\(key): expected a number, got \(other)")
        }
    }

    mutating func flag(_ key: String, default value: Bool) throws(ModelFileError) -> Bool {
        used.insert(key)
        switch entry.settings[key] {
        case .flag(let v)?: return v
        case nil: return value
        case let other?: throw error("\(key): expected true or false, got \(other)")
        }
    }

    mutating func text(_ key: String) throws(ModelFileError) -> String {
        used.insert(key)
        switch entry.settings[key] {
        case .text(let v)?: return v
        case nil: throw error("missing key '\(key)'")
        case let other?: throw error("\(key): expected a string, got \(other)")
        }
    }

    mutating func optionalText(_ key: String) throws(ModelFileError) -> String? {
        guard entry.settings[key] != nil else { used.insert(key); return nil }
        return try text(key)
    }

    /// A list of layer entries (a residual stage's `body`).
    mutating func entries(_ key: String) throws(ModelFileError) -> [LayerEntry] {
        used.insert(key)
        switch entry.settings[key] {
        case .list(let items)?:
            return try items.enumerated().map { i, item throws(ModelFileError) in
                guard case .table(let settings) = item else { throw error("\(key)[\(i)]: expected a layer { type = ... }") }
                return LayerEntry(settings)
            }
        case nil: throw error("missing key '\(key)'")
        case let other?: throw error("\(key): expected a list of layers [{ type = ... }, ...], got \(other)")
        }
    }

    mutating func table(_ key: String) throws(ModelFileError) -> [String: ModelValue] {
        used.insert(key)
        switch entry.settings[key] {
        case .table(let v)?: return v
        case nil: return [:]
        case let other?: throw error("\(key): expected a table { key = value, ... }, got \(other)")
        }
    }

    func finish() throws(ModelFileError) {
        if let unknown = remainingKeys.first { throw error("unknown key '\(unknown)'") }
    }
}
