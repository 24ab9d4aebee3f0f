import CohortDistributed
import CohortNN
import Glibc

/// `--sync-batchnorm`: every batch norm's per-channel sums (`BatchNorm.statisticsSum`) added over
/// the replicas of this rank and over every rank, so that each normalises with the statistics
/// of the whole global batch (what `torch.nn.SyncBatchNorm` does on GPUs).
///
/// The replicas run their forward and backward passes at once, each on its own thread, and meet
/// at each batch norm: each puts its sums in its slot and waits; the first replica adds the
/// slots in the pairwise tree the gradients use (`ReplicaGroup.sumReplicas`), sums over the ranks
/// (it runs on the thread that may call MPI) and copies the total into every slot; then all go
/// on. A failed reduction is kept in `error`, the remaining meetings skip the ranks, and the
/// step throws it.
final class BatchStatisticsSync: @unchecked Sendable {
    private let replicas: Int
    private let communicator: Communicator
    private let slots: UnsafeMutablePointer<UnsafeMutableBufferPointer<Double>>
    private let barrier: UnsafeMutablePointer<pthread_barrier_t>
    private(set) var error: Error?

    init(replicas: Int, communicator: Communicator) {
        self.replicas = replicas
        self.communicator = communicator
        slots = .allocate(capacity: replicas)
        slots.initialize(repeating: UnsafeMutableBufferPointer(start: nil, count: 0), count: replicas)
        barrier = .allocate(capacity: 1)
        pthread_barrier_init(barrier, nil, UInt32(replicas))
    }

    deinit {
        pthread_barrier_destroy(barrier)
        barrier.deallocate()
        slots.deallocate()
    }

    /// What replica `r`'s batch norms call.
    func sum(forReplica r: Int) -> (UnsafeMutableBufferPointer<Double>) -> Void {
        { [unowned self] values in self.sum(values, replica: r) }
    }

    private func sum(_ values: UnsafeMutableBufferPointer<Double>, replica r: Int) {
        guard replicas > 1 else { return sumOverRanks(values) }
        slots[r] = values
        pthread_barrier_wait(barrier)
        if r == 0 {
            var distance = 1
            while distance < replicas {
                for a in stride(from: 0, to: replicas - distance, by: 2 * distance) {
                    let (sum, other) = (slots[a], slots[a + distance])
                    for i in 0..<sum.count { sum[i] += other[i] }
                }
                distance *= 2
            }
            sumOverRanks(values)
            for q in 1..<replicas { _ = slots[q].update(fromContentsOf: values) }
        }
        pthread_barrier_wait(barrier)
    }

    private func sumOverRanks(_ values: UnsafeMutableBufferPointer<Double>) {
        guard communicator.size > 1, error == nil else { return }
        do {
            let total = try communicator.allreduceSum(Array(values))
            _ = values.update(fromContentsOf: total)
        } catch {
            self.error = error
        }
    }

    /// The step's first failed reduction, if any (then cleared).
    func takeError() -> Error? {
        defer { error = nil }
        return error
    }
}
