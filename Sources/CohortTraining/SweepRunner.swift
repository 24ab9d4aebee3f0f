import CohortTensor
import Foundation

/// Runs the points of a sweep one after another, each as its own `cohort train` job with
/// `spec.ranks` ranks (under `mpirun` when more than one), into `DIR/runs/<point>/`.
///
/// `DIR/sweep.json` records the specification. Started again on the same directory with
/// the same specification, the sweep skips every point whose run finished (its
/// `summary.json` exists, which `cohort train` writes last) and runs the others afresh;
/// a different specification is refused rather than mixed in.
public struct SweepRunner {
    public let spec: SweepSpec
    public let directory: String
    /// Checks one point's `cohort train` arguments before anything runs, and returns its epochs.
    let check: ([String]) throws -> Int

    public init(spec: SweepSpec, directory: String, check: @escaping ([String]) throws -> Int) {
        self.spec = spec; self.directory = directory; self.check = check
    }

    public func runDirectory(_ point: SweepPoint) -> String { "\(directory)/runs/\(point.name)" }

    public static func isFinished(runDirectory: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(runDirectory)/summary.json")
    }

    /// Checks every point's flags, as `run` does before the first run starts; returns their epochs.
    public func checkPoints() throws -> [Int] {
        try spec.points.map { point in
            do { return try check(spec.arguments(for: point, runDirectory: runDirectory(point))) } catch {
                throw SettingsError("grid point \(point.label): \(error)")
            }
        }
    }

    /// Runs every unfinished point; returns the points that failed (the others finished).
    public func run(log: (String) -> Void) throws -> [SweepPoint] {
        let points = spec.points
        let epochs = try checkPoints()
        try prepareDirectory()
        let pending = points.indices.filter { !Self.isFinished(runDirectory: runDirectory(points[$0])) }
        if pending.count < points.count {
            log("sweep: \(points.count - pending.count) of \(points.count) point(s) finished earlier, skipped")
        }
        var failed: [SweepPoint] = []
        var secondsPerEpoch: Double?
        var spentSeconds = 0.0, spentEpochs = 0
        for (position, index) in pending.enumerated() {
            let point = points[index]
            let remainingEpochs = pending[position...].map { epochs[$0] }.reduce(0, +)
            let eta = secondsPerEpoch.map { ", ETA for the rest \(Self.duration($0 * Double(remainingEpochs)))" } ?? ""
            log("sweep: point \(index + 1)/\(points.count): \(point.label) (\(spec.ranks) rank(s))\(eta)")
            let start = monotonicSeconds()
            // A point stopped part-way (a failure, a signal) continues from its checkpoint.
            var arguments = spec.arguments(for: point, runDirectory: runDirectory(point))
            if !((try? Checkpoint.list(run: runDirectory(point))) ?? []).isEmpty { arguments += ["--resume", runDirectory(point)] }
            let process = try startCohort(ranks: spec.ranks, arguments: arguments)
            process.waitUntilExit()
            let seconds = monotonicSeconds() - start
            spentSeconds += seconds; spentEpochs += epochs[index]
            secondsPerEpoch = spentSeconds / Double(max(1, spentEpochs))
            if process.terminationStatus == 0 && Self.isFinished(runDirectory: runDirectory(point)) {
                let best = (try? JSON(contentsOfFile: "\(runDirectory(point))/summary.json"))?["best"]?["test_acc"]?.number
                log("sweep: point \(index + 1)/\(points.count) finished in \(Self.duration(seconds))"
                    + (best.map { String(format: ", best test accuracy %.4f", $0) } ?? ""))
            } else {
                log("sweep: point \(index + 1)/\(points.count) failed (exit \(process.terminationStatus)); going on with the rest")
                failed.append(point)
            }
        }
        return failed
    }

    private func prepareDirectory() throws {
        let file = "\(directory)/sweep.json"
        if FileManager.default.fileExists(atPath: file) {
            let recorded = try SweepSpec(json: JSON(contentsOfFile: file))
            guard recorded == spec else {
                throw SettingsError("\(directory) holds a different sweep (see its sweep.json); "
                                    + "give another --out, or the same grid and flags to resume it")
            }
            return
        }
        do { try FileManager.default.createDirectory(atPath: "\(directory)/runs", withIntermediateDirectories: true) } catch {
            throw RunError("\(directory): cannot create the sweep directory (\(error.localizedDescription))")
        }
        try writeAtomically(spec.json.serialized(pretty: true) + "\n", to: file)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
