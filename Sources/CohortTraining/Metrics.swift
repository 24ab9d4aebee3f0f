import Foundation

/// One epoch's figures, as a row of `metrics.csv` / `metrics.jsonl`.
public struct EpochMetrics: Sendable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double
    public var testLoss: Double, testAccuracy: Double
    /// Wall time of the epoch's training steps (evaluation excluded), and samples/s over them.
    public var seconds: Double, samplesPerSecond: Double
    /// Time spent waiting on gradient communication.
    public var commSeconds: Double
    public var evalSeconds: Double
    public var worldSize: Int

    static let csvHeader = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_s,comm_seconds,world_size,eval_seconds"

    var csvRow: String {
        [String(epoch), Self.number(trainLoss), Self.number(trainAccuracy), Self.number(testLoss),
         Self.number(testAccuracy), Self.number(seconds), Self.number(samplesPerSecond),
         Self.number(commSeconds), String(worldSize), Self.number(evalSeconds)].joined(separator: ",")
    }

    var json: JSON {
        .object([("epoch", .number(Double(epoch))), ("train_loss", .number(trainLoss)),
                 ("train_acc", .number(trainAccuracy)), ("test_loss", .number(testLoss)),
                 ("test_acc", .number(testAccuracy)), ("seconds", .number(seconds)),
                 ("samples_per_s", .number(samplesPerSecond)), ("comm_seconds", .number(commSeconds)),
                 ("world_size", .number(Double(worldSize))), ("eval_seconds", .number(evalSeconds))])
    }

    static func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "nan" }
}

extension EpochMetrics {
    /// Reads back `json` (a checkpoint's history); a missing or null figure is NaN.
    init(json: JSON) throws {
        func value(_ key: String) -> Double { json[key]?.number ?? .nan }
        guard let epoch = json["epoch"]?.number else { throw RunError("an epoch's figures lack its number") }
        self.init(epoch: Int(epoch), trainLoss: value("train_loss"), trainAccuracy: value("train_acc"),
                  testLoss: value("test_loss"), testAccuracy: value("test_acc"), seconds: value("seconds"),
                  samplesPerSecond: value("samples_per_s"), commSeconds: value("comm_seconds"),
                  evalSeconds: value("eval_seconds"), worldSize: Int(json["world_size"]?.number ?? 0))
    }
}

/// Best and final figures of a run: `summary.json`.
public struct RunSummary: Sendable {
    public var epochs: [EpochMetrics]
    public var worldSize: Int
    /// FNV-1a of the final parameters' bytes, the same on every rank (checked).
    public var parameterChecksum: UInt64?
    /// Steps skipped for non-finite values (`--on-nan skip`).
    public var skippedSteps = 0

    public init(epochs: [EpochMetrics], worldSize: Int) {
        self.epochs = epochs
        self.worldSize = worldSize
    }

    public var final: EpochMetrics? { epochs.last }
    /// Minimum loss and maximum accuracy over epochs, per split (as in the reference report).
    public var bestTrainLoss: Double { epochs.map(\.trainLoss).filter(\.isFinite).min() ?? .nan }
    public var bestTrainAccuracy: Double { epochs.map(\.trainAccuracy).max() ?? .nan }
    public var bestTestLoss: Double { epochs.map(\.testLoss).filter(\.isFinite).min() ?? .nan }
    public var bestTestAccuracy: Double { epochs.map(\.testAccuracy).max() ?? .nan }
    /// Training samples per second over all epochs.
    public var samplesPerSecond: Double {
        let seconds = epochs.map(\.seconds).reduce(0, +)
        let samples = epochs.map { $0.samplesPerSecond * $0.seconds }.reduce(0, +)
        return seconds > 0 ? samples / seconds : 0
    }

    public var json: JSON {
        let last = final
        return .object([
            ("best", .object([("train_loss", .number(bestTrainLoss)), ("train_acc", .number(bestTrainAccuracy)),
                              ("test_loss", .number(bestTestLoss)), ("test_acc", .number(bestTestAccuracy))])),
            ("final", .object([("train_loss", .number(last?.trainLoss ?? .nan)),
                               ("train_acc", .number(last?.trainAccuracy ?? .nan)),
                               ("test_loss", .number(last?.testLoss ?? .nan)),
                               ("test_acc", .number(last?.testAccuracy ?? .nan))])),
            ("samples_per_s", .number(samplesPerSecond)),
            ("world_size", .number(Double(worldSize))),
            ("epochs", .number(Double(epochs.count))),
            ("comm_seconds", .number(epochs.map(\.commSeconds).reduce(0, +))),
            ("train_seconds", .number(epochs.map(\.seconds).reduce(0, +))),
            ("parameter_checksum", parameterChecksum.map { .string(String(format: "%016llx", $0)) } ?? .null),
            ("skipped_steps", .number(Double(skippedSteps))),
        ])
    }
}

/// 64-bit FNV-1a over bytes: a cheap fingerprint to compare parameters across ranks.
public func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}
