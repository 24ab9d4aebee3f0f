import CohortBase
import CohortLaunch
import CohortRun
import Foundation

/// Runs the points of a sweep, each as its own `cohort train` job with `spec.ranks`
/// ranks, into `DIR/runs/<point>/`: one after another on this machine (under `mpirun` when
/// more than one rank), through a launcher such as `srun`, or, given a hostfile, several
/// at once on disjoint groups of its slots, the rest queued until a group is free.
///
/// `DIR/sweep.json` records the specification. Started again on the same directory with
/// the same specification, the sweep skips every point whose run finished (its
/// `summary.json` exists, which `cohort train` writes last), resumes a point that has
/// checkpoints (on the sweep's ranks now, whatever it ran on before), and runs the others
/// afresh; a different specification is refused rather than mixed in, and a point directory
/// that holds another run's settings or another writer is refused by `cohort train`, naming it.
public struct SweepRunner {
    public let spec: SweepSpec
    public let directory: String
    /// Checks one point's `cohort train` arguments before anything runs, and returns its epochs.
    let check: ([String]) throws -> Int
    /// Where runs go: `.local`, `.launcher`, or one group of hosts per concurrent run.
    public var placements: [Placement] = [.local]
    /// Extra `cohort train` arguments for every run that are not part of the grid's identity
    /// (e.g. `--threads`).
    public var runArguments: [String] = []

    public init(spec: SweepSpec, directory: String, check: @escaping ([String]) throws -> Int) {
        self.spec = spec; self.directory = directory; self.check = check
    }

    public func runDirectory(_ point: SweepPoint) -> String { "\(directory)/runs/\(point.name)" }

    public static func isFinished(runDirectory: String) -> Bool {
        FileManager.default.fileExists(atPath: RunSummary.path(directory: runDirectory))
    }

    /// Checks every point's flags before the first run starts; returns their epochs.
    func validate(_ points: [SweepPoint]) throws -> [Int] {
        try points.map { point in
            do { return try check(spec.arguments(for: point, runDirectory: runDirectory(point))) } catch {
                throw CohortError.settings("grid point \(point.label): \(error)")
            }
        }
    }

    /// What a sweep's run left: the points that failed and those a signal left unfinished.
    public struct Outcome {
        public var failed: [SweepPoint] = []
        /// Stopped part-way (checkpointed: they continue when the sweep runs again) or not started.
        public var stopped: [SweepPoint] = []
        public var unfinished: [SweepPoint] { failed + stopped }
    }

    /// Runs every unfinished point of `only` (default: all).
    ///
    /// SIGINT or SIGTERM stops the sweep: the running points get SIGTERM (one each, so that a
    /// copy the terminal or Slurm sent them as well only repeats the request), checkpoint and
    /// exit; no further point starts. Run again, the sweep resumes them from their checkpoints.
    public func run(only: [Int]? = nil, log: (String) -> Void) throws -> Outcome {
        let points = spec.points
        let epochs = try validate(points)
        log("sweep \(spec.name): \(points.count) point(s) x \(spec.ranks) rank(s) -> \(directory)"
            + (placements.count > 1 ? ", \(placements.count) at a time" : ""))
        try prepareDirectory()
        // One point at a time: its rank 0 may draw its live progress line on this sweep's terminal.
        if placements.count == 1 { Terminal.tellJob() }
        let chosen = only ?? Array(points.indices)
        let pending = chosen.filter { !Self.isFinished(runDirectory: runDirectory(points[$0])) }
        if pending.count < chosen.count {
            log("sweep: \(chosen.count - pending.count) of \(chosen.count) point(s) finished earlier, skipped")
        }
        // Runs started at once each get a TMPDIR of their own (one per group of slots, see
        // `MPITemporaryDirectory`); runs that take turns need none.
        let temporaryDirectories = placements.count > 1
            ? try placements.indices.map { try MPITemporaryDirectory(name: "cohort-sweep-\(getpid())-group\($0 + 1)") } : []
        defer { for directory in temporaryDirectories { directory.remove() } }
        var queue = pending[...]
        var running: [(index: Int, process: Process, slot: Int, start: Double, resumed: Bool)] = []
        var free = Array(placements.indices)
        var outcome = Outcome()
        let stop = StopRequest.install()
        var passedOn = false
        // The rate of points run whole, for the ETA (a failed or resumed point's seconds say
        // nothing of it).
        var spentSeconds = 0.0, spentEpochs = 0
        while (!queue.isEmpty && !stop.isRequested) || !running.isEmpty {
            while !stop.isRequested, let slot = free.first, let index = queue.first {
                queue.removeFirst(); free.removeFirst()
                let point = points[index]
                let remaining = ([index] + queue).map { epochs[$0] }.reduce(0, +)
                let eta = spentEpochs > 0
                    ? ", ETA for the rest \(Format.duration(spentSeconds / Double(spentEpochs) * Double(remaining) / Double(placements.count)))"
                    : ""
                let place = placements.count > 1 ? " on group \(slot + 1) of \(placements.count)" : ""
                // A point stopped part-way (a failure, a signal) continues from its checkpoint.
                var arguments = spec.arguments(for: point, runDirectory: runDirectory(point)) + runArguments
                let newest = Checkpoint.list(run: runDirectory(point)).first
                let resumed = newest != nil
                if resumed { arguments += ["--resume", runDirectory(point)] }
                log("sweep: point \(index + 1)/\(points.count): \(point.label) (\(spec.ranks) rank(s)\(place))"
                    + (newest.map { ", continuing from \($0)" } ?? "") + eta)
                let process = try placements[slot].start(
                    ranks: spec.ranks, arguments: arguments,
                    environment: temporaryDirectories.isEmpty ? [:] : temporaryDirectories[slot].environment)
                running.append((index, process, slot, monotonicSeconds(), resumed))
            }
            // Wait for any run to end; take the ended ones out once (others may end meanwhile).
            while !running.isEmpty && running.allSatisfy({ $0.process.isRunning }) {
                if stop.isRequested && !passedOn {
                    passedOn = true
                    log("sweep: stopping: the running point(s) checkpoint and stop; no further point starts")
                    for job in running { kill(job.process.processIdentifier, SIGTERM) }
                }
                usleep(100_000)
            }
            let ended = running.indices.filter { !running[$0].process.isRunning }
            for job in ended.map({ running[$0] }) {
                let point = points[job.index], seconds = monotonicSeconds() - job.start
                if job.process.terminationStatus == 0 && Self.isFinished(runDirectory: runDirectory(point)) {
                    if !job.resumed { spentSeconds += seconds; spentEpochs += epochs[job.index] }
                    let best = (try? RunSummary.read(directory: runDirectory(point)))??.best.testAccuracy
                    log("sweep: point \(job.index + 1)/\(points.count) finished in \(Format.duration(seconds))"
                        + (best.map { String(format: ", best test accuracy %.4f", $0) } ?? ""))
                } else if stop.isRequested {
                    log("sweep: point \(job.index + 1)/\(points.count) stopped (exit \(job.process.terminationStatus))"
                        + (Checkpoint.list(run: runDirectory(point)).isEmpty ? "" : "; it continues from its checkpoint"))
                    outcome.stopped.append(point)
                } else {
                    log("sweep: point \(job.index + 1)/\(points.count) failed (exit \(job.process.terminationStatus)); "
                        + "going on with the rest")
                    outcome.failed.append(point)
                }
                free.append(job.slot)
            }
            for i in ended.reversed() { running.remove(at: i) }
            free.sort()
        }
        outcome.stopped += queue.map { points[$0] }
        let finished = chosen.count - outcome.unfinished.count
        log("sweep: \(finished) of \(chosen.count) point(s) finished"
            + (outcome.unfinished.isEmpty ? "" : "; not finished: " + outcome.unfinished.map(\.label).joined(separator: "; ")))
        return outcome
    }

    private func prepareDirectory() throws {
        let file = "\(directory)/sweep.json"
        if FileManager.default.fileExists(atPath: file) {
            let recorded = try SweepSpec.read(directory: directory)
            guard recorded == spec else {
                throw CohortError.settings("\(directory) holds a different sweep (see its sweep.json); "
                                    + "give another --out, or the same grid and flags to resume it")
            }
            return
        }
        do { try FileManager.default.createDirectory(atPath: "\(directory)/runs", withIntermediateDirectories: true) } catch {
            throw CohortError.failure("\(directory): cannot create the sweep directory (\(error.localizedDescription))")
        }
        try JSONFile.write(spec, to: file)
    }
}
