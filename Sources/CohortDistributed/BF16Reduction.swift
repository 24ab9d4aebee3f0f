import CMPI
import CohortTensor

/// One in-place sum of `count` floats over every rank with bfloat16 on the wire: half the
/// bytes of a float allreduce, the additions in float, the same result on every rank.
///
/// The buffer is cut into one chunk per rank, chunk j = [j·count/N, (j+1)·count/N). Two
/// non-blocking collectives do the work, with a local sum between them:
/// 1. exchange (MPI_Ialltoallv): every rank sends its chunk j, rounded to bf16, to rank j;
/// 2. rank r adds the N copies of chunk r in float, in rank order, and rounds the sum to bf16;
/// 3. gather (MPI_Iallgatherv): every rank receives every chunk's sum; the buffer becomes
///    `float(bf16(Σ_rank float(bf16(value))))`.
/// Each rank sends (N-1)/N of the buffer in each collective, 2·(N-1)/N·2 bytes per value, as
/// a ring allreduce of floats sends 2·(N-1)/N·4. Each chunk's sum is made once, by one rank,
/// so every rank ends with the same bits whatever the order of completion.
/// Buffers are kept and grown, so a step allocates nothing once the buckets have been seen.
final class BF16Reduction {
    enum Phase { case exchanging, gathering, done }

    private(set) var phase = Phase.done
    private var target: UnsafeMutablePointer<Float>?
    private var count = 0
    /// The whole buffer as bf16: what is sent in the exchange, then the gathered sums.
    private var wire = UnsafeMutablePointer<UInt16>.allocate(capacity: 1), wireCapacity = 1
    /// Every rank's copy of this rank's chunk, rank after rank.
    private var received = UnsafeMutablePointer<UInt16>.allocate(capacity: 1), receivedCapacity = 1
    /// Counts and offsets per rank, in memory of their own: MPI reads them until the collective completes.
    private let sendCounts, sendOffsets, receiveCounts, receiveOffsets: UnsafeMutablePointer<Int32>
    private let rank: Int, size: Int
    var request: MPI_Request? = cohort_mpi_request_null()

    init(rank: Int, size: Int) {
        self.rank = rank; self.size = size
        (sendCounts, sendOffsets, receiveCounts, receiveOffsets) = (.allocate(capacity: size), .allocate(capacity: size),
                                                                    .allocate(capacity: size), .allocate(capacity: size))
    }

    deinit {
        for counts in [sendCounts, sendOffsets, receiveCounts, receiveOffsets] { counts.deallocate() }
        wire.deallocate()
        received.deallocate()
    }

    /// Rounds `buffer` to bf16 and starts the exchange.
    func start(_ buffer: UnsafeMutablePointer<Float>, count: Int, communicator: MPI_Comm) -> Int32 {
        precondition(phase == .done, "a bf16 reduction is already in flight in this slot")
        target = buffer
        self.count = count
        for j in 0..<size {
            let lower = j * count / size, upper = (j + 1) * count / size
            sendCounts[j] = Int32(upper - lower)
            sendOffsets[j] = Int32(lower)
        }
        let mine = Int(sendCounts[rank])
        for j in 0..<size {
            receiveCounts[j] = Int32(mine)
            receiveOffsets[j] = Int32(j * mine)
        }
        grow(&wire, &wireCapacity, to: count)
        grow(&received, &receivedCapacity, to: mine * size)
        BFloat16.round(buffer, into: wire, count: count)
        phase = .exchanging
        return MPI_Ialltoallv(wire, sendCounts, sendOffsets, cohort_mpi_uint16(), received, receiveCounts,
                              receiveOffsets, cohort_mpi_uint16(), communicator, &request)
    }

    /// After the exchange: sums this rank's chunk and starts the gather.
    func gather(communicator: MPI_Comm) -> Int32 {
        precondition(phase == .exchanging)
        let mine = Int(sendCounts[rank]), offset = Int(sendOffsets[rank])
        for i in 0..<mine {
            var sum: Float = 0
            for j in 0..<size { sum += BFloat16.float(received[j * mine + i]) }
            wire[offset + i] = BFloat16.rounded(sum)
        }
        phase = .gathering
        return MPI_Iallgatherv(cohort_mpi_in_place(), 0, cohort_mpi_uint16(), wire, sendCounts, sendOffsets,
                               cohort_mpi_uint16(), communicator, &request)
    }

    /// After the gather: the sums, as floats, into the caller's buffer.
    func finish() {
        precondition(phase == .gathering)
        if let target { BFloat16.widen(wire, into: target, count: count) }
        phase = .done
        target = nil
    }

    private func grow(_ buffer: inout UnsafeMutablePointer<UInt16>, _ capacity: inout Int, to needed: Int) {
        guard needed > capacity else { return }
        buffer.deallocate()
        buffer = .allocate(capacity: needed)
        capacity = needed
    }
}
