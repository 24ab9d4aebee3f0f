import CohortBase
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
