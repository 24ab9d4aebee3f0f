import CohortNN
import Foundation

/// How one rank uses its threads: `threads` in all, as `replicas` model replicas that
/// each call their kernels with `threadsPerReplica` threads.
struct ThreadPlan {
    let threads: Int
    let replicas: Int
    var threadsPerReplica: Int { max(1, threads / replicas) }

    /// `threads`: as given, else the node's cores shared by its ranks. `replicas`: as
    /// given, else one per thread when they can share the rank's batch equally, else 1.
    init(threads: Int?, replicas: Int?, localBatch: Int, ranksOnNode: Int) {
        let t = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, ranksOnNode))
        self.threads = t
        self.replicas = replicas ?? (localBatch % t == 0 ? t : 1)
    }
}

extension ThreadPlan {
    /// Checks that `batchSize` splits into equal slices over `worldSize` ranks and, if
    /// given, over `replicas` per rank.
    static func checkBatchSplit(batchSize: Int, worldSize: Int, replicas: Int?) throws {
        guard batchSize % worldSize == 0 else {
            throw SettingsError("--batch-size \(batchSize) is not divisible by the \(worldSize) ranks; "
                                + "use a multiple of \(worldSize)")
        }
        if let r = replicas {
            guard r > 0 else { throw SettingsError("--replicas must be positive, got \(r)") }
            guard (batchSize / worldSize) % r == 0 else {
                throw SettingsError("--batch-size \(batchSize) gives \(batchSize / worldSize) samples per rank, "
                                    + "which \(r) replicas cannot share equally")
            }
        }
    }
}

extension ModelKind {
    /// The input shape of the report's data for this model: CIFAR-10's for the CNN, MNIST's
    /// for recurrent models (used for synthetic data and benchmarks).
    public var standardImageShape: [Int] { isRecurrent ? [1, 28, 28] : [3, 32, 32] }
}
