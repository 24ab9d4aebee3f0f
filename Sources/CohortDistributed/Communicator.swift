import CohortBase
import CohortTensor
import Foundation

/// The collective operations that data-parallel training needs, behind one small
/// interface. Layers and optimizers never see it; only the training loop does.
///
/// Every rank must make the same calls in the same order (MPI's rule for collectives).
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Ranks on this node (to share its cores).
    var localSize: Int { get }
    func barrier() throws
    /// Replaces `buffer` on every rank with rank `root`'s.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    /// In place: `buffer ← Σ_ranks buffer`.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Starts an in-place sum in request slot `slot` (0, 1, ...: slots are reused from step
    /// to step, so nothing is allocated once they exist), the values sent as `format`. The
    /// buffer must not be touched until `waitReduction(slot:)` returns.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int, format: FloatFormat) throws
    /// Lets the reduction in `slot` progress (MPI advances non-blocking collectives only
    /// inside its calls); true once it is complete.
    func testReduction(slot: Int) throws -> Bool
    /// Waits until the reduction in `slot` is complete.
    func waitReduction(slot: Int) throws
    /// Sums small metric vectors (loss sums, counts) in double precision, result on every rank.
    func allreduceSum(_ values: [Double]) throws -> [Double]
    /// Seconds any collective may wait before this rank ends the job (0: forever); see
    /// `MPICommunicator` for what it reports.
    var timeout: Double { get set }
    /// Where the run is (1-based epoch and step; 0: not training yet), for that report.
    var position: (epoch: Int, step: Int) { get set }
    /// Ends the whole job with `code` on every rank (for an error that only some ranks saw).
    func abort(code: Int32) -> Never
    /// Leaves the communication layer cleanly; the last call before the process exits.
    func finalize()
}

/// The communicator for this process: MPI when started by `mpirun` (or another MPI
/// launcher), otherwise the single-process world. The code path is the same either way.
public func makeCommunicator() throws -> Communicator {
    MPILaunch.isUnderLauncher ? try MPICommunicator() : SingleProcessCommunicator()
}

/// What the MPI launcher tells a process through its environment, read before MPI starts.
public enum MPILaunch {
    /// Open MPI's `mpirun` (OMPI_*), PMIx (`srun --mpi=pmix`) or PMI-1/2 launchers.
    public static var isUnderLauncher: Bool { worldSize != nil }

    /// The number of ranks the launcher started, if any.
    public static var worldSize: Int? {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"] {
            if let v = env[key], let n = Int(v), n > 0 { return n }
        }
        return env["PMIX_RANK"] != nil ? 1 : nil
    }
}

