import CohortBase
import Foundation

/// A TMPDIR of its own for one of several mpiruns started at once on this machine. Open MPI 4
/// keeps its session files under `$TMPDIR/ompi.<host>.<uid>`, which a job creates when it is
/// missing and removes when it is left empty; two jobs that create it at the same moment, or
/// one that creates it while another removes it, race, and the loser ends in `orte_init`
/// ("mkdir ... File exists", exit 1) before it starts anything. Jobs that take turns need none.
public struct MPITemporaryDirectory {
    public let path: String

    /// `name` in the current TMPDIR (or /tmp), created when missing.
    public init(name: String) throws {
        path = "\(ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")/\(name)"
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw CohortError.failure("\(path): cannot create (\(error.localizedDescription))")
        }
    }

    /// What the mpirun's environment adds.
    public var environment: [String: String] { ["TMPDIR": path] }

    /// Removes the directory and what the job left in it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
