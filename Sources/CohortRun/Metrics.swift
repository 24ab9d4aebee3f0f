import CohortBase
import Foundation

/// One epoch's figures, as a row of `metrics.csv` / `metrics.jsonl`.
public struct EpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double
    public var testLoss: Double, testAccuracy: Double
    /// Wall time of the epoch's training steps (evaluation excluded), and samples/s over them.
    public var seconds: Double, samplesPerSecond: Double
    /// Time spent waiting on gradient communication.
    public var commSeconds: Double
    public var worldSize: Int
    public var evalSeconds: Double
    /// The learning rate of the epoch's last step (nil in checkpoints of versions before schedules).
    public var learningRate: Double?
    /// Seconds rank 0's steps waited for their batches from the loader (nil in older checkpoints).
    public var dataWaitSeconds: Double?

    /// The CSV columns, in order; the same keys name the fields in JSON.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_acc", testLoss = "test_loss"
        case testAccuracy = "test_acc", seconds, samplesPerSecond = "samples_per_s", commSeconds = "comm_seconds"
        case worldSize = "world_size", evalSeconds = "eval_seconds", learningRate = "lr"
        case dataWaitSeconds = "data_wait_seconds"
    }

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, testLoss: Double, testAccuracy: Double,
                seconds: Double, samplesPerSecond: Double, commSeconds: Double, worldSize: Int, evalSeconds: Double,
                learningRate: Double?, dataWaitSeconds: Double? = nil) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.testLoss = testLoss; self.testAccuracy = testAccuracy; self.seconds = seconds
        self.samplesPerSecond = samplesPerSecond; self.commSeconds = commSeconds; self.worldSize = worldSize
        self.evalSeconds = evalSeconds; self.learningRate = learningRate; self.dataWaitSeconds = dataWaitSeconds
    }

    static let csvHeader = CodingKeys.allCases.map(\.rawValue).joined(separator: ",")

    var csvRow: String {
        [String(epoch), Self.number(trainLoss), Self.number(trainAccuracy), Self.number(testLoss),
         Self.number(testAccuracy), Self.number(seconds), Self.number(samplesPerSecond),
         Self.number(commSeconds), String(worldSize), Self.number(evalSeconds),
         learningRate.map(Self.number) ?? "", dataWaitSeconds.map(Self.number) ?? ""].joined(separator: ",")
    }

    static func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "nan" }

    /// The epoch's TensorBoard scalars, by tag (the rate per step has events of its own).
    public var tensorBoardScalars: [(String, Double)] {
        [("loss/train", trainLoss), ("loss/test", testLoss), ("accuracy/train", trainAccuracy),
         ("accuracy/test", testAccuracy), ("throughput/samples_per_s", samplesPerSecond)]
            + (learningRate.map { [("lr", $0)] } ?? [])
    }
}

/// One rank's time per step: compute (data, forward, backward, optimizer) and the share of
/// the step it waited for the gradient reduction. A rank much slower than the others makes
/// them all wait.
public struct RankTiming: Codable, Equatable, Sendable {
    public var rank: Int
    public var steps: Int
    public var computeSecondsPerStep: Double
    public var waitShare: Double

    enum CodingKeys: String, CodingKey {
        case rank, steps, computeSecondsPerStep = "compute_seconds_per_step", waitShare = "wait_share"
    }

    public init(rank: Int, steps: Int, computeSecondsPerStep: Double, waitShare: Double) {
        self.rank = rank; self.steps = steps; self.computeSecondsPerStep = computeSecondsPerStep; self.waitShare = waitShare
    }
}

/// Best and final figures of a run, as `summary.json` records them.
public struct RunSummary: Codable, Sendable {
    /// Losses and accuracies of one kind (the best over epochs, or the last epoch's).
    public struct Figures: Codable, Sendable {
        public var trainLoss: Double, trainAccuracy: Double, testLoss: Double, testAccuracy: Double

        enum CodingKeys: String, CodingKey {
            case trainLoss = "train_loss", trainAccuracy = "train_acc", testLoss = "test_loss", testAccuracy = "test_acc"
        }
    }

    /// Minimum loss and maximum accuracy over epochs, per split (as in the reference report).
    public var best: Figures
    public var final: Figures
    /// Training samples per second over all epochs.
    public var samplesPerSecond: Double
    public var worldSize: Int
    public var epochs: Int
    public var commSeconds: Double
    public var trainSeconds: Double
    /// FNV-1a of the final parameters' bytes, the same on every rank (checked).
    public var parameterChecksum: String?
    /// Steps skipped for non-finite values (`--on-nan skip`).
    public var skippedSteps: Int
    /// Each rank's time per step over the steps this process ran (the straggler report).
    public var ranks: [RankTiming]
    /// With `--target-accuracy`: when the run reached it, or that it did not.
    public var target: TargetOutcome?
    /// Image files `--skip-bad-files` left out (their names and reasons are in data.json).
    public var skippedFiles: Int?

    enum CodingKeys: String, CodingKey {
        case best, final, samplesPerSecond = "samples_per_s", worldSize = "world_size", epochs
        case commSeconds = "comm_seconds", trainSeconds = "train_seconds", parameterChecksum = "parameter_checksum"
        case skippedSteps = "skipped_steps", ranks, target, skippedFiles = "skipped_files"
    }

    public init(epochs history: [EpochMetrics], worldSize: Int, parameterChecksum: UInt64? = nil, skippedSteps: Int = 0,
                ranks: [RankTiming] = [], evaluations: [EvaluationRecord] = [], target: TargetOutcome? = nil,
                skippedFiles: Int? = nil) {
        func best(_ values: [Double], _ pick: ([Double]) -> Double?) -> Double { pick(values.filter(\.isFinite)) ?? .nan }
        // Test figures come from every evaluation (those inside epochs too) where the run kept them.
        let testLosses = history.map(\.testLoss) + evaluations.map(\.testLoss)
        let testAccuracies = history.map(\.testAccuracy) + evaluations.map(\.testAccuracy)
        self.best = Figures(trainLoss: best(history.map(\.trainLoss)) { $0.min() },
                            trainAccuracy: best(history.map(\.trainAccuracy)) { $0.max() },
                            testLoss: best(testLosses) { $0.min() }, testAccuracy: best(testAccuracies) { $0.max() })
        let last = history.last, lastTest = evaluations.last
        final = Figures(trainLoss: last?.trainLoss ?? .nan, trainAccuracy: last?.trainAccuracy ?? .nan,
                        testLoss: lastTest?.testLoss ?? last?.testLoss ?? .nan,
                        testAccuracy: lastTest?.testAccuracy ?? last?.testAccuracy ?? .nan)
        let seconds = history.map(\.seconds).reduce(0, +)
        let samples = history.map { $0.samplesPerSecond * $0.seconds }.reduce(0, +)
        samplesPerSecond = seconds > 0 ? samples / seconds : 0
        self.worldSize = worldSize
        epochs = history.count
        commSeconds = history.map(\.commSeconds).reduce(0, +)
        trainSeconds = seconds
        self.parameterChecksum = parameterChecksum.map { String(format: "%016llx", $0) }
        self.skippedSteps = skippedSteps
        self.ranks = ranks
        self.target = target
        self.skippedFiles = skippedFiles
    }

    public static func path(directory: String) -> String { "\(directory)/summary.json" }

    /// The summary of the finished run in `directory` (nil: the run has not finished).
    public static func read(directory: String) throws -> RunSummary? {
        let path = path(directory: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONFile.read(RunSummary.self, path: path)
    }
}
