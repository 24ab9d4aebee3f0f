import CohortBase
import Foundation

/// One `cohort train` flag of a sweep and the values it takes, e.g. `lr` over 0.001, 0.01.
public struct GridAxis: Codable, Equatable, Sendable {
    /// The flag's long name without dashes (`lr`, `batch-size`).
    public let flag: String
    public let values: [String]

    public init(flag: String, values: [String]) throws {
        let name = flag.replacingOccurrences(of: "_", with: "-")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), !name.hasPrefix("-") else {
            throw CohortError.settings("grid: '\(flag)' is not a flag name (write it without dashes, e.g. lr or batch-size)")
        }
        guard !SweepSpec.reservedFlags.contains(name) else {
            throw CohortError.settings("grid: --\(name) is set by the sweep itself and cannot be swept")
        }
        guard !values.isEmpty else { throw CohortError.settings("grid: \(name) has no values") }
        if let empty = values.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw CohortError.settings("grid: value \(empty + 1) of \(name) is empty")
        }
        guard Set(values).count == values.count else { throw CohortError.settings("grid: \(name) lists a value twice") }
        self.flag = name
        self.values = values.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    enum CodingKeys: String, CodingKey { case flag, values }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(flag: c.decode(String.self, forKey: .flag), values: c.decode([String].self, forKey: .values))
    }

    /// `KEY=V1,V2,...`, as given to `cohort sweep --grid`.
    public init(parsing text: String) throws {
        guard let equals = text.firstIndex(of: "=") else {
            throw CohortError.settings("--grid \(text): expected FLAG=VALUE,VALUE,... (e.g. lr=0.001,0.01)")
        }
        let values = text[text.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !(values.count == 1 && values[0].isEmpty) else { throw CohortError.settings("--grid \(text): no values after '='") }
        try self.init(flag: String(text[..<equals]), values: values)
    }
}

/// A sweep: `cohort train` flags shared by every run, and a grid whose product gives the
/// runs (the first axis varies slowest). Each run has `ranks` ranks.
public struct SweepSpec: Codable, Equatable, Sendable {
    public var name: String
    public var ranks: Int
    /// Arguments for every run, e.g. `["--model", "cnn", "--dataset", "cifar10"]`.
    public var fixed: [String]
    public var axes: [GridAxis]

    /// Flags the sweep sets for each run (a grid or the fixed flags may not).
    static let reservedFlags: Set<String> = ["out", "resume", "help", "version"]

    public init(name: String, ranks: Int, fixed: [String], axes: [GridAxis]) throws {
        guard ranks > 0 else { throw CohortError.settings("--ranks must be positive, got \(ranks)") }
        let flags = axes.map(\.flag)
        if let twice = flags.first(where: { f in flags.filter { $0 == f }.count > 1 }) {
            throw CohortError.settings("grid: \(twice) is given twice")
        }
        if let clash = flags.first(where: { fixed.contains("--\($0)") }) {
            throw CohortError.settings("grid: --\(clash) is both swept and fixed; keep one")
        }
        // `--out X` and `--out=X` alike.
        let flagName = { (word: String) in String(word.drop { $0 == "-" }.prefix { $0 != "=" }) }
        if let reserved = fixed.first(where: { $0.hasPrefix("-") && SweepSpec.reservedFlags.contains(flagName($0)) }) {
            throw CohortError.settings("\(reserved) is set by the sweep itself (each run goes under the sweep directory)")
        }
        self.name = name; self.ranks = ranks; self.fixed = fixed; self.axes = axes
    }

    /// Every grid point, in order.
    public var points: [SweepPoint] {
        var combinations: [[String]] = [[]]
        for axis in axes { combinations = combinations.flatMap { prefix in axis.values.map { prefix + [$0] } } }
        let width = String(combinations.count - 1).count
        return combinations.enumerated().map { index, values in
            let settings = zip(axes.map(\.flag), values).map { ($0, $1) }
            let label = settings.map { "\($0)-\(SweepPoint.sanitized($1))" }.joined(separator: "_")
            let number = String(repeating: "0", count: width - String(index).count) + String(index)
            return SweepPoint(index: index, settings: settings, name: label.isEmpty ? number : "\(number)_\(label)")
        }
    }

    /// The `cohort train` arguments of `point`, writing its run to `directory`.
    public func arguments(for point: SweepPoint, runDirectory directory: String) -> [String] {
        ["train"] + fixed + point.settings.flatMap { Self.flagArguments($0.flag, $0.value) } + ["--out", directory]
    }

    /// `cohort train` arguments of one setting: `true` switches a flag on, `false` leaves it
    /// off, any other value follows the flag.
    static func flagArguments(_ flag: String, _ value: String) -> [String] {
        switch value.lowercased() {
        case "true": return ["--\(flag)"]
        case "false": return []
        default: return ["--\(flag)", value]
        }
    }

    /// What `sweep.json` records; a sweep directory is resumed only by the same specification.
    /// The grid is a list, not an object: the order of the axes fixes the order of the points.
    enum CodingKeys: String, CodingKey {
        case name, ranks, fixed, axes = "grid"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Through the checking initialisers: a hand-edited sweep.json is held to the same rules.
        try self.init(name: c.decode(String.self, forKey: .name), ranks: c.decode(Int.self, forKey: .ranks),
                      fixed: c.decode([String].self, forKey: .fixed), axes: c.decode([GridAxis].self, forKey: .axes))
    }

    public static func read(directory: String) throws -> SweepSpec {
        try JSONFile.read(SweepSpec.self, path: "\(directory)/sweep.json")
    }
}

/// One run of a sweep: its place in the grid and its flag values.
public struct SweepPoint: Sendable {
    public let index: Int
    public let settings: [(flag: String, value: String)]
    /// Directory name under the sweep's `runs/`: the index, then each flag and value.
    public let name: String

    /// `lr=0.01 optimizer=adam`.
    public var label: String { settings.isEmpty ? "(no grid)" : settings.map { "\($0.flag)=\($0.value)" }.joined(separator: " ") }

    static func sanitized(_ value: String) -> String {
        String(value.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "+" || $0 == "-" ? $0 : "-" })
    }
}
