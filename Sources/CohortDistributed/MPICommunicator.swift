import CMPI
import CohortBase
import CohortTensor
import Foundation

/// The communicator over Open MPI: the only code in Cohort that calls MPI.
///
/// Errors are set to be returned, not fatal, so every failing call becomes a
/// `CohortError` naming the operation, the rank and MPI's own message.
/// The node-local communicator (ranks sharing memory with this one) tells how many
/// ranks share this node's cores.
///
/// Every collective is started non-blocking and polled with a deadline (`timeout`): a rank
/// that is stopped, hung or cut off would otherwise keep the others spinning in MPI for ever.
/// Past the deadline each waiting rank tells rank 0 over a second communicator; rank 0
/// waits a moment for those reports, names the ranks that did not report (they never reached
/// the collective), and every rank ends the job with exit code 4 (`CohortError.Kind.timedOut`).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localSize: Int
    public var timeout = MPICommunicator.defaultTimeout
    public var position = (epoch: 0, step: 0)
    private let world: MPI_Comm
    /// A copy of the world for the timeout reports, apart from the collectives' traffic.
    private let reports: MPI_Comm
    /// Non-blocking reductions by slot; grows to the number of gradient buckets, then is reused.
    private var requests: [MPI_Request?] = []
    /// By slot: what the slot's reduction sends, and the state of its bf16 reduction (made once).
    private var slotFormats: [FloatFormat] = []
    private var bf16Reductions: [BF16Reduction?] = []

    /// Minutes, as PyTorch's and Horovod's collective timeouts: far longer than any step or
    /// evaluation, short enough that a stalled job does not hold its nodes for hours.
    public static let defaultTimeout = 300.0
    /// How long rank 0 collects the other ranks' timeout reports.
    static let reportSeconds = 3.0
    static let reportTag: Int32 = 4
    public init() throws {
        var provided: Int32 = 0
        // Only the main thread calls MPI; BLAS threads never do.
        var code = MPI_Init_thread(nil, nil, cohort_mpi_thread_funneled(), &provided)
        guard code == cohort_mpi_success() else { throw CohortError.failure("MPI_Init_thread failed with code \(code)") }
        world = cohort_mpi_comm_world()
        MPI_Comm_set_errhandler(world, cohort_mpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
        var local: MPI_Comm?
        code = MPI_Comm_split_type(world, cohort_mpi_comm_type_shared(), r, cohort_mpi_info_null(), &local)
        var ls: Int32 = 1
        if code == cohort_mpi_success(), local != nil {
            MPI_Comm_size(local, &ls)
            MPI_Comm_free(&local)
        }
        localSize = Int(ls)
        var copy: MPI_Comm?
        MPI_Comm_dup(world, &copy)
        reports = copy ?? world
    }

    /// Throws for any MPI return code other than success.
    func check(_ code: Int32, _ operation: String) throws {
        guard code != cohort_mpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: Int(cohort_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        let message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CohortError.failure("rank \(rank): \(operation) failed: \(message)")
    }

    public func barrier() throws {
        var request: MPI_Request? = cohort_mpi_request_null()
        try check(MPI_Ibarrier(world, &request), "MPI_Ibarrier")
        try complete(&request, "barrier")
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        var request: MPI_Request? = cohort_mpi_request_null()
        try check(MPI_Ibcast(buffer, Int32(count), cohort_mpi_float(), Int32(root), world, &request), "MPI_Ibcast")
        try complete(&request, "broadcast of \(count) values")
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        var request: MPI_Request? = cohort_mpi_request_null()
        try check(MPI_Iallreduce(cohort_mpi_in_place(), buffer, Int32(count), cohort_mpi_float(), cohort_mpi_sum(), world,
                                 &request), "MPI_Iallreduce")
        try complete(&request, "allreduce of \(count) values")
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int, format: FloatFormat) throws {
        while requests.count <= slot {
            requests.append(cohort_mpi_request_null())
            slotFormats.append(.fp32)
            bf16Reductions.append(nil)
        }
        slotFormats[slot] = format
        switch format {
        case .fp32:
            try check(MPI_Iallreduce(cohort_mpi_in_place(), buffer, Int32(count), cohort_mpi_float(), cohort_mpi_sum(),
                                     world, &requests[slot]), "MPI_Iallreduce")
        case .bf16:
            let reduction = bf16Reductions[slot] ?? BF16Reduction(rank: rank, size: size)
            bf16Reductions[slot] = reduction
            try check(reduction.start(buffer, count: count, communicator: world), "MPI_Ialltoallv")
        }
    }

    public func testReduction(slot: Int) throws -> Bool {
        if slotFormats[slot] == .bf16, let reduction = bf16Reductions[slot] { return try advance(reduction, waiting: false) }
        var flag: Int32 = 0
        // A completed request becomes MPI_REQUEST_NULL, for which MPI_Test reports completion at once.
        try check(MPI_Test(&requests[slot], &flag, cohort_mpi_status_ignore()), "MPI_Test")
        return flag != 0
    }

    public func waitReduction(slot: Int) throws {
        if slotFormats[slot] == .bf16, let reduction = bf16Reductions[slot] {
            _ = try advance(reduction, waiting: true, bucket: slot + 1)
        } else {
            try complete(&requests[slot], "allreduce of gradient bucket \(slot + 1)")
        }
    }

    /// Moves a bf16 reduction on as far as its collectives have completed (`waiting`: to its
    /// end, within the timeout); true once the sums are in the buffer.
    private func advance(_ reduction: BF16Reduction, waiting: Bool, bucket: Int = 0) throws -> Bool {
        while reduction.phase != .done {
            if waiting {
                try complete(&reduction.request, "bf16 \(reduction.phase == .exchanging ? "exchange" : "gather") of "
                             + "gradient bucket \(bucket)")
            } else {
                var flag: Int32 = 0
                try check(MPI_Test(&reduction.request, &flag, cohort_mpi_status_ignore()), "MPI_Test")
                guard flag != 0 else { return false }
            }
            if reduction.phase == .exchanging {
                try check(reduction.gather(communicator: world), "MPI_Iallgatherv")
            } else {
                reduction.finish()
            }
        }
        return true
    }

    public func allreduceSum(_ values: [Double]) throws -> [Double] {
        var result = values
        try result.withUnsafeMutableBufferPointer { buffer in
            var request: MPI_Request? = cohort_mpi_request_null()
            try check(MPI_Iallreduce(cohort_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), cohort_mpi_double(),
                                     cohort_mpi_sum(), world, &request), "MPI_Iallreduce (metrics)")
            try complete(&request, "allreduce of \(buffer.count) figures")
        }
        return result
    }

    /// Polls `request` until it completes (MPI makes progress inside MPI_Test, as inside
    /// MPI_Wait), or ends the job once `timeout` has passed.
    private func complete(_ request: inout MPI_Request?, _ operation: String) throws {
        var done: Int32 = 0
        let deadline = timeout > 0 ? monotonicSeconds() + timeout : .infinity
        while true {
            try check(MPI_Test(&request, &done, cohort_mpi_status_ignore()), operation)
            if done != 0 { return }
            if monotonicSeconds() > deadline { timedOut(operation) }
        }
    }

    /// Reports a collective that waited past the deadline and ends the job (exit code 4).
    private func timedOut(_ operation: String) -> Never {
        let place = position.epoch > 0 ? "epoch \(position.epoch), step \(position.step)" : "the start of the run"
        let waited = "the \(operation) at \(place) waited longer than --timeout \(Format.figure(timeout)) s"
        let error: CohortError
        if rank == 0 {
            let missing = ranksThatDidNotReport()
            error = CohortError(.timedOut, missing.isEmpty
                ? "\(waited); every rank was waiting in it (a network between them may be down)"
                : "\(waited); rank(s) \(missing.map(String.init).joined(separator: ", ")) never reached it "
                    + "(stopped, hung or cut off); the job ends, to be restarted from its last checkpoint")
        } else {
            var me = Int32(rank)
            var request: MPI_Request? = cohort_mpi_request_null()
            MPI_Isend(&me, 1, cohort_mpi_int(), 0, Self.reportTag, reports, &request)
            error = CohortError(.timedOut, "rank \(rank): \(waited); rank 0 names the ranks that never reached it")
            // Rank 0 speaks first; if it is the rank that is stuck, this one ends the job.
            usleep(UInt32((Self.reportSeconds + 2) * 1e6))
        }
        sayError("Error: \(error)")
        abort(code: error.exitCode)
    }

    /// Rank 0: the ranks whose timeout reports did not come within `reportSeconds`.
    private func ranksThatDidNotReport() -> [Int] {
        var reported = Set<Int>()
        let end = monotonicSeconds() + Self.reportSeconds
        while monotonicSeconds() < end && reported.count < size - 1 {
            var flag: Int32 = 0
            var status = MPI_Status()
            MPI_Iprobe(cohort_mpi_any_source(), Self.reportTag, reports, &flag, &status)
            if flag != 0 {
                var who: Int32 = 0
                MPI_Recv(&who, 1, cohort_mpi_int(), status.MPI_SOURCE, Self.reportTag, reports, &status)
                reported.insert(Int(who))
            } else {
                usleep(10_000)
            }
        }
        return (1..<size).filter { !reported.contains($0) }
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finalize() { MPI_Finalize() }
}
