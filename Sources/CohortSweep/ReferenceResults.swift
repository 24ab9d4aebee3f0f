import CohortBase
import CohortRun
import Foundation

/// What a reference report found for the grid points of one or more sweeps, read from a
/// JSON file (`results/reference.json` holds the assignment report's), so that
/// `cohort report --reference` can set a sweep's runs beside it. The schema, in
/// docs/sweeps.md#reference-files:
///
///     { "source": "where the numbers come from",
///       "sweeps": { "<sweep name>": {
///           "points": [ { "flags": {"lr": 0.01, "optimizer": "adagrad", "epochs": 20},
///                         "train_loss": 0.1498, "train_acc": 0.9816,
///                         "test_loss": 0.8578, "test_acc": 0.717, "note": "optional" } ],
///           "best": {"lr": 0.01, "optimizer": "adagrad", "epochs": 20},
///           "activations": [ {"name": "ReLU1", "mean": 0.0657, "std": 0.1373} ],
///           "notes": ["optional remarks on the reference itself"] } } }
///
/// Losses and accuracies are the best over epochs (minimum loss, maximum accuracy, accuracy
/// as a fraction), as `summary.json`'s `best`. A point's flags are grid axes of the sweep
/// and their values; numbers match numerically (0.010 is 0.01), words without regard to case.
public struct ReferenceResults: Decodable, Sendable {
    public var source: String?
    public var sweeps: [String: ReferenceSweep]

    public static func read(path: String) throws -> ReferenceResults {
        try JSONFile.read(ReferenceResults.self, path: path)
    }

    /// The reference for `spec`'s sweep (by its name), checked against its grid.
    public func sweep(for spec: SweepSpec, file: String) throws -> ReferenceSweep {
        guard let sweep = sweeps[spec.name] else {
            throw CohortError.failure("\(file) has no reference for sweep '\(spec.name)' (it has: "
                                      + sweeps.keys.sorted().joined(separator: ", ") + ")")
        }
        try sweep.check(against: spec, file: file)
        return sweep
    }
}

/// The reference's figures for one sweep.
public struct ReferenceSweep: Decodable, Sendable {
    public var points: [ReferencePoint]
    /// The flags of the reference's best configuration; one of `points`.
    public var best: ReferenceFlags
    /// Mean and standard deviation of activations (the CNN's ReLUs) of the best model.
    public var activations: [ReferenceActivation]
    public var notes: [String]

    enum CodingKeys: String, CodingKey { case points, best, activations, notes }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        points = try c.decode([ReferencePoint].self, forKey: .points)
        best = try c.decode(ReferenceFlags.self, forKey: .best)
        activations = try c.decodeIfPresent([ReferenceActivation].self, forKey: .activations) ?? []
        notes = try c.decodeIfPresent([String].self, forKey: .notes) ?? []
        guard !points.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .points, in: c, debugDescription: "has no points")
        }
        guard points.contains(where: { $0.flags == best }) else {
            throw DecodingError.dataCorruptedError(forKey: .best, in: c, debugDescription: "names a configuration that is none of the points")
        }
    }

    /// Checks that every flag is an axis of `spec` with a value it takes, so that a typing
    /// error in the file is reported instead of leaving a point without its run.
    func check(against spec: SweepSpec, file: String) throws {
        for (index, point) in points.enumerated() {
            for (flag, value) in point.flags.values {
                guard let axis = spec.axes.first(where: { $0.flag == flag }) else {
                    throw CohortError.failure("\(file): point \(index + 1) of sweep '\(spec.name)' names \(flag), which is "
                                              + "not an axis of the sweep (axes: \(spec.axes.map(\.flag).joined(separator: ", ")))")
                }
                guard axis.values.contains(where: { ReferenceFlags.same($0, value) }) else {
                    throw CohortError.failure("\(file): point \(index + 1) of sweep '\(spec.name)' has \(flag)=\(value), "
                                              + "which the sweep does not run (it runs \(axis.values.joined(separator: ", ")))")
                }
            }
            let runs = spec.points.filter(point.flags.match).count
            guard runs == 1 else {
                throw CohortError.failure("\(file): point \(index + 1) of sweep '\(spec.name)' (\(point.flags.label)) is "
                                          + "\(runs) runs of the sweep; give a value for every axis so that it is one")
            }
        }
    }
}

/// One grid point of the reference, and its best figures.
public struct ReferencePoint: Decodable, Sendable {
    public var flags: ReferenceFlags
    public var figures: RunSummary.Figures
    /// A remark on this point (for example a doubt about the reference's own figures).
    public var note: String?

    enum CodingKeys: String, CodingKey { case flags, note }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        flags = try c.decode(ReferenceFlags.self, forKey: .flags)
        note = try c.decodeIfPresent(String.self, forKey: .note)
        figures = try RunSummary.Figures(from: decoder)
        let accuracies = [figures.trainAccuracy, figures.testAccuracy], losses = [figures.trainLoss, figures.testLoss]
        guard accuracies.allSatisfy({ (0...1).contains($0) }), losses.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "accuracies must be fractions in 0...1 and losses finite and not negative"))
        }
    }
}

/// Flag values of a grid point, e.g. lr=0.01 optimizer=adagrad; a JSON object whose values
/// are numbers or strings.
public struct ReferenceFlags: Decodable, Equatable, Sendable {
    /// Sorted by flag.
    public let values: [(flag: String, value: String)]

    public init(from decoder: Decoder) throws {
        let object = try [String: JSONValue](from: decoder)
        guard !object.isEmpty else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "no flags"))
        }
        values = try object.keys.sorted().map { flag in
            switch object[flag]! {
            case .string(let s): return (flag, s)
            case .int(let i): return (flag, String(i))
            case .double(let d): return (flag, String(d))
            case .bool(let b): return (flag, String(b))
            default: throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "\(flag) must be a number, a string or a boolean"))
            }
        }
    }

    /// Whether `point` has these values (its other flags may be anything).
    public func match(_ point: SweepPoint) -> Bool {
        values.allSatisfy { flag, value in point.settings.contains { $0.flag == flag && Self.same($0.value, value) } }
    }

    /// Numbers by value, anything else without regard to case.
    static func same(_ a: String, _ b: String) -> Bool {
        if let x = Double(a), let y = Double(b) { return x == y }
        return a.lowercased() == b.lowercased()
    }

    public static func == (a: ReferenceFlags, b: ReferenceFlags) -> Bool {
        a.values.count == b.values.count && zip(a.values, b.values).allSatisfy { $0.flag == $1.flag && same($0.value, $1.value) }
    }

    /// `lr=0.01 optimizer=adagrad`.
    public var label: String { values.map { "\($0.flag)=\($0.value)" }.joined(separator: " ") }
}

public struct ReferenceActivation: Decodable, Sendable {
    public var name: String
    public var mean: Double, std: Double
}
