import CohortBase
import Foundation

/// How often a run evaluates on the test set besides every epoch's end (`--eval-every`), as
/// PyTorch Lightning's `val_check_interval` reads it: a whole number is global steps, a
/// fraction in (0, 1) a share of an epoch.
public enum EvaluationInterval: Equatable, Sendable, CustomStringConvertible {
    case steps(Int)
    case epochFraction(Double)

    /// `"250"` is every 250 steps, `"0.25"` four times an epoch.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let steps = Int(trimmed), steps > 0 {
            self = .steps(steps)
        } else if Int(trimmed) == nil, let fraction = Double(trimmed), fraction > 0, fraction < 1 {
            self = .epochFraction(fraction)
        } else {
            throw CohortError.settings("eval_every '\(text)': give a positive number of steps (such as 200) or a "
                                       + "fraction of an epoch in (0, 1) (such as 0.25)")
        }
    }

    public var description: String {
        switch self {
        case .steps(let n): "\(n)"
        case .epochFraction(let f): "\(f)"
        }
    }

    /// Whether the run evaluates after step `step` (0-based) of an epoch of `stepsPerEpoch`
    /// steps, before the epoch's end: every `n` global steps, or where the steps done in the
    /// epoch pass a multiple of `f·stepsPerEpoch`.
    public func evaluates(afterStep step: Int, epoch: Int, stepsPerEpoch: Int) -> Bool {
        guard step + 1 < stepsPerEpoch else { return false }
        switch self {
        case .steps(let n):
            return (epoch * stepsPerEpoch + step + 1) % n == 0
        case .epochFraction(let f):
            let part = f * Double(stepsPerEpoch)
            return (Double(step + 1) / part).rounded(.down) > (Double(step) / part).rounded(.down)
        }
    }
}

extension EvaluationInterval: Codable {
    public init(from decoder: Decoder) throws {
        try self.init(parsing: decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Which ranks evaluate (`--eval-on`): rank 0 over the whole test set while the others wait, or
/// every rank over its slice of it, the loss sums and correct counts then added over the ranks.
public enum EvaluationRanks: String, CaseIterable, Codable, Sendable {
    case rank0, all
}

/// One evaluation on the test set: a row of `evaluations.jsonl`. The clocks start at the run's
/// first step and go on across a resumed run's processes (less the time between a run's last
/// checkpoint and its stop).
public struct EvaluationRecord: Codable, Equatable, Sendable {
    /// Global steps taken, and the epochs they make (fractional).
    public var step: Int, epoch: Double
    public var testLoss: Double, testAccuracy: Double
    /// Wall-clock seconds from the first step to the end of this evaluation, and the part of
    /// them spent evaluating (this evaluation included).
    public var seconds: Double, evalSeconds: Double

    enum CodingKeys: String, CodingKey {
        case step, epoch, testLoss = "test_loss", testAccuracy = "test_acc", seconds, evalSeconds = "eval_seconds"
    }

    public init(step: Int, epoch: Double, testLoss: Double, testAccuracy: Double, seconds: Double, evalSeconds: Double) {
        self.step = step; self.epoch = epoch; self.testLoss = testLoss; self.testAccuracy = testAccuracy
        self.seconds = seconds; self.evalSeconds = evalSeconds
    }

    public static func path(directory: String) -> String { "\(directory)/evaluations.jsonl" }

    /// The evaluations of the run in `directory`, in order.
    public static func read(directory: String) throws -> [EvaluationRecord] {
        let path = path(directory: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CohortError.failure("\(path): missing or unreadable")
        }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated().map { number, line in
            try JSONFile.decode(EvaluationRecord.self, from: Data(line.utf8), source: "\(path):\(number + 1)")
        }
    }
}

/// `--target-accuracy`: when the run first reached it, as `summary.json` records it (the
/// time to accuracy that MLPerf Training and DAWNBench measure).
public struct TargetOutcome: Codable, Equatable, Sendable {
    /// The target: a test accuracy to reach (`--target-accuracy`), or a test loss to get to or below (`--target-loss`).
    public var accuracy: Double?
    public var loss: Double?
    /// The first evaluation that met the target; nil when the run never did.
    public var reached: EvaluationRecord?
    /// Samples trained until then: steps times the global batch.
    public var samples: Int?

    enum CodingKeys: String, CodingKey { case accuracy, loss, reached, samples }

    // `reached` and `samples` written as null when the target was not reached, not left out.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(accuracy, forKey: .accuracy)
        try container.encodeIfPresent(loss, forKey: .loss)
        try container.encode(reached, forKey: .reached)
        try container.encode(samples, forKey: .samples)
    }

    public init(accuracy: Double, reached: EvaluationRecord?, globalBatch: Int) {
        self.accuracy = accuracy; self.reached = reached
        samples = reached.map { $0.step * globalBatch }
    }

    public init(loss: Double, reached: EvaluationRecord?, globalBatch: Int) {
        self.loss = loss; self.reached = reached
        samples = reached.map { $0.step * globalBatch }
    }

    /// The target that `accuracy` or `loss` gives, with the first of `evaluations` that met it.
    public static func of(accuracy: Double?, loss: Double?, in evaluations: [EvaluationRecord], globalBatch: Int)
        -> TargetOutcome? {
        if let accuracy {
            return TargetOutcome(accuracy: accuracy, reached: first(in: evaluations, reaching: accuracy), globalBatch: globalBatch)
        }
        return loss.map { loss in
            TargetOutcome(loss: loss, reached: evaluations.first { $0.testLoss <= loss }, globalBatch: globalBatch)
        }
    }

    /// The first of `evaluations` at or above `accuracy`.
    public static func first(in evaluations: [EvaluationRecord], reaching accuracy: Double) -> EvaluationRecord? {
        evaluations.first { $0.testAccuracy >= accuracy }
    }

    /// One line for people: when and how the target was reached, or that it was not.
    public var sentence: String {
        guard let r = reached else {
            return accuracy.map { String(format: "the target test accuracy %.2f%% was not reached", 100 * $0) }
                ?? String(format: "the target test loss %.4f was not reached", loss ?? 0)
        }
        let target = accuracy.map { String(format: "the target %.2f%%", 100 * $0) }
            ?? String(format: "the target test loss %.4f", loss ?? 0)
        let value = accuracy == nil ? String(format: "%.4f", r.testLoss) : String(format: "%.2f%%", 100 * r.testAccuracy)
        return String(format: "reached %@ at epoch %.2f (step %d, %d samples): %@ after %@ (%@ without evaluation)", target,
                      r.epoch, r.step, samples ?? 0, value, Format.duration(r.seconds), Format.duration(r.seconds - r.evalSeconds))
    }
}
