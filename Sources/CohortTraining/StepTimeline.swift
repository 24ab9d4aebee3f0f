import CohortBase
import CohortDistributed
import CohortReporting
import Foundation

/// `--trace DIR`: this rank's steps as a Chrome trace, `DIR/rank-R.trace.json`, and at the
/// end, written by rank 0, `DIR/trace.json` with every rank's file it can read (one process
/// per rank, on one time base).
///
/// Track "compute" holds each step and, inside it, its phases one after another, each
/// starting where the one before ended, so that they tile the step: `data`, `forward`,
/// `backward` (once per micro-batch; of the first replica when there are several),
/// `other replicas` (the first replica waiting for the rest), `replica sum`, `allreduce wait`
/// (the reductions not finished when backward is), `step check` (the ranks agreeing that the
/// gradients are finite) and `optimizer`.
/// Track "allreduce" holds each gradient bucket's reduction from its start to its completion
/// as this rank saw it: MPI completes a request only inside an MPI call, which Cohort makes
/// after each layer's backward and in the final wait, so a completion shows at the next of
/// those. With overlap the buckets start inside backward; without it, after it.
///
/// Every rank counts time from the end of one barrier at the start, so the ranks' clocks agree
/// to within that barrier's latency (microseconds on one node, tens of them across nodes).
public final class StepTimeline: @unchecked Sendable {
    public static func fileName(rank: Int) -> String { "rank-\(rank).trace.json" }
    public static let mergedFileName = "trace.json"

    let directory: String
    let writer: ChromeTraceWriter
    let rank: Int
    /// Monotonic seconds of time 0.
    let origin: Double
    private var stepStart = 0.0, lastMark = 0.0
    private var step = (epoch: 0, step: 0)

    static let computeTrack = 0, allreduceTrack = 1

    /// Collective (a barrier, which sets time 0 on every rank).
    public init(directory: String, communicator: Communicator) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CohortError.failure("--trace \(directory): cannot create the directory (\(error.localizedDescription))")
        }
        self.directory = directory
        rank = communicator.rank
        writer = try ChromeTraceWriter(path: "\(directory)/\(Self.fileName(rank: rank))")
        writer.name(process: rank, "rank \(rank) (\(shortHostName))", sortIndex: rank,
                    tracks: [Self.computeTrack: "compute", Self.allreduceTrack: "allreduce"])
        try communicator.barrier()
        origin = monotonicSeconds()
    }

    /// Starts a step (epoch and step 1-based, as progress shows them).
    func beginStep(epoch: Int, step: Int) {
        self.step = (epoch, step)
        stepStart = monotonicSeconds()
        lastMark = stepStart
    }

    /// Phase `name` of the step, from the previous phase's end to now.
    public func mark(_ name: String) {
        let now = monotonicSeconds()
        span(name, track: Self.computeTrack, from: lastMark, to: now)
        lastMark = now
    }

    /// The step, from its start to the end of its last phase.
    public func endStep() {
        span("step", track: Self.computeTrack, from: stepStart, to: lastMark, args: ["epoch": step.epoch, "step": step.step])
    }

    /// Bucket `index`'s reduction (`bytes` of gradients) from `start` to `end` (monotonic seconds).
    func bucket(_ index: Int, bytes: Int, from start: Double, to end: Double) {
        span("bucket \(index + 1)", track: Self.allreduceTrack, from: start, to: end,
             args: ["bytes": bytes, "epoch": step.epoch, "step": step.step])
    }

    private func span(_ name: String, track: Int, from start: Double, to end: Double, args: [String: Int] = [:]) {
        writer.span(name, category: track == Self.computeTrack ? "step" : "allreduce", process: rank, track: track,
                    start: 1e6 * (start - origin), duration: 1e6 * max(0, end - start), args: args)
    }

    public func flush() throws { try writer.flush() }

    /// Collective: closes every rank's file, then rank 0 merges those it can read (all of
    /// them on one node or a shared directory) into `trace.json`. Returns its path on rank 0.
    @discardableResult
    public func finish(communicator: Communicator) throws -> String? {
        try writer.close()
        try communicator.barrier()
        guard rank == 0 else { return nil }
        var events: [String] = []
        for r in 0..<communicator.size {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(Self.fileName(rank: r))") else { continue }
            // Each file is "[\n" + events joined by ",\n" + "\n]\n".
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let body = text.dropFirst().dropLast().trimmingCharacters(in: .whitespacesAndNewlines)
            if !body.isEmpty { events.append(body) }
        }
        let path = "\(directory)/\(Self.mergedFileName)"
        try writeAtomically("[\n" + events.joined(separator: ",\n") + "\n]\n", to: path)
        return path
    }
}
