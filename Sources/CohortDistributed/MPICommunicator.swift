import CMPI
import CohortBase
import Foundation

/// The communicator over Open MPI: the only code in Cohort that calls MPI.
///
/// Errors are set to be returned, not fatal, so every failing call becomes a
/// `CohortError` naming the operation, the rank and MPI's own message.
/// The node-local communicator (ranks sharing memory with this one) tells how many
/// ranks share this node's cores.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localSize: Int
    private let world: MPI_Comm
    /// Non-blocking reductions by slot; grows to the number of gradient buckets, then is reused.
    private var requests: [MPI_Request?] = []

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

    public func barrier() throws { try check(MPI_Barrier(world), "MPI_Barrier") }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        try check(MPI_Bcast(buffer, Int32(count), cohort_mpi_float(), Int32(root), world), "MPI_Bcast")
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try check(MPI_Allreduce(cohort_mpi_in_place(), buffer, Int32(count), cohort_mpi_float(), cohort_mpi_sum(), world),
                  "MPI_Allreduce")
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) throws {
        while requests.count <= slot { requests.append(cohort_mpi_request_null()) }
        try check(MPI_Iallreduce(cohort_mpi_in_place(), buffer, Int32(count), cohort_mpi_float(), cohort_mpi_sum(),
                                 world, &requests[slot]), "MPI_Iallreduce")
    }

    public func testReduction(slot: Int) throws -> Bool {
        var flag: Int32 = 0
        // A completed request becomes MPI_REQUEST_NULL, for which MPI_Test reports completion at once.
        try check(MPI_Test(&requests[slot], &flag, cohort_mpi_status_ignore()), "MPI_Test")
        return flag != 0
    }

    public func waitReduction(slot: Int) throws {
        try check(MPI_Wait(&requests[slot], cohort_mpi_status_ignore()), "MPI_Wait")
    }

    public func allreduceSum(_ values: [Double]) throws -> [Double] {
        var result = values
        try result.withUnsafeMutableBufferPointer { buffer in
            try check(MPI_Allreduce(cohort_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), cohort_mpi_double(),
                                    cohort_mpi_sum(), world), "MPI_Allreduce (metrics)")
        }
        return result
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finalize() { MPI_Finalize() }
}
