import CohortBase
import CohortNN
import Foundation

/// The files of a run, written by rank 0: `config.json`,
/// `metrics.csv`, `metrics.jsonl`, `evaluations.jsonl`, `summary.json`, `loss.svg`, `accuracy.svg`,
/// `model.safetensors`. Every file is replaced atomically, so an interrupted run never
/// leaves half a file, and `summary.json` appears only when the run has finished.
public struct RunDirectory {
    public let path: String
    /// The writer's lock, held as long as this value lives (given `settings`: a run's writer).
    private let lock: RunLock?

    /// Creates the directory (and parents) or fails with a message naming it. With
    /// `settings`, the caller is the run's writer: it takes the directory's lock (a second
    /// writer is refused at once, naming the first), and a directory that already holds a run
    /// is checked: one with other settings is never overwritten, and one with checkpoints only
    /// continues with `resume`.
    public init(path: String, settings: JSONValue? = nil, resume: Bool = false) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CohortError.failure("--out \(path): exists and is not a directory") }
        } else {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw CohortError.failure("--out \(path): cannot create the directory (\(error.localizedDescription))")
            }
        }
        guard access(path, W_OK) == 0 else { throw CohortError.failure("--out \(path): directory is not writable") }
        lock = try settings.map { _ in try RunLock(directory: path) }
        if let settings { try Self.checkReuse(path: path, settings: settings, resume: resume) }
        // A previous run's summary would claim that this one finished.
        try? FileManager.default.removeItem(atPath: RunSummary.path(directory: path))
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    static func checkReuse(path: String, settings: JSONValue, resume: Bool) throws {
        guard FileManager.default.fileExists(atPath: RunRecord.path(directory: path)) else {
            if resume { throw CohortError.failure("--resume \(path): no run there (config.json is missing)") }
            return
        }
        let recorded = try RunRecord.read(directory: path).config.definingSettings
        guard recorded == settings else {
            throw CohortError.failure("--out \(path) holds a run with other settings (\(recorded)); this run has "
                           + "\(settings). Choose another --out, or give the same settings"
                           + (resume ? "" : " (and --resume to continue it)"))
        }
        if !resume, !Checkpoint.list(run: path).isEmpty {
            throw CohortError.failure("--out \(path) has checkpoints of a run with these settings: add --resume to continue it, "
                           + "or remove \(Checkpoint.directory(run: path)) to start afresh")
        }
    }

    public func writeRecord(_ record: RunRecord) throws {
        try JSONFile.write(record, to: RunRecord.path(directory: path))
    }

    /// Rewrites the per-epoch files with every epoch so far (the curves: `EpochCurves`).
    public func writeEpochs(_ epochs: [EpochMetrics]) throws {
        try writeAtomically(([EpochMetrics.csvHeader] + epochs.map(\.csvRow)).joined(separator: "\n") + "\n",
                            to: file("metrics.csv"))
        try writeAtomically(epochs.map { JSONFile.line($0) + "\n" }.joined(), to: file("metrics.jsonl"))
    }

    /// Rewrites `evaluations.jsonl` with every evaluation so far.
    public func writeEvaluations(_ evaluations: [EvaluationRecord]) throws {
        try writeAtomically(evaluations.map { JSONFile.line($0) + "\n" }.joined(),
                            to: EvaluationRecord.path(directory: path))
    }

    public func writeModel(_ network: Network, metadata: [(String, String)], name: String = "model.safetensors") throws {
        try SafeTensors.write(network, metadata: metadata, to: file(name))
    }

    /// The model file the run trains, kept beside config.json (`TrainingConfig.modelCopy`) so
    /// that resume, evaluate, predict and visualize need nothing else.
    public func writeModelFile(_ file: ModelFile) throws {
        try writeAtomically(file.text, to: TrainingConfig.modelCopy(directory: path))
    }

    public func writeData(_ record: DataRecord) throws {
        try JSONFile.write(record, to: DataRecord.path(directory: path))
    }

    public func writeSummary(_ summary: RunSummary) throws {
        try JSONFile.write(summary, to: RunSummary.path(directory: path))
    }
}
