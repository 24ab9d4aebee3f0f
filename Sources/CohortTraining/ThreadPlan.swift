import CohortBase
import CohortNN
import Foundation

/// How one rank uses its threads: `threads` in all, as `replicas` model replicas that
/// each call their kernels with `threadsPerReplica` threads.
struct ThreadPlan {
    let threads: Int
    let replicas: Int
    var threadsPerReplica: Int { max(1, threads / replicas) }
    /// What the process may run on, when `threads` asks for more (nil: it fits).
    let oversubscribed: Int?

    /// `threads`: as given, else the CPUs this process may run on. A launcher that bound the
    /// rank (mpirun's default) gave it CPUs of its own; an unbound rank shares the node's
    /// cores with the node's other ranks. `replicas`: as given, else one per thread when they
    /// can share the rank's batch equally, else 1.
    init(threads: Int?, replicas: Int?, localBatch: Int, ranksOnNode: Int,
         usableCPUs: Int = usableCPUCount, cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        let bound = usableCPUs < cores
        let t = threads ?? (bound ? usableCPUs : max(1, cores / max(1, ranksOnNode)))
        self.threads = t
        self.replicas = replicas ?? (localBatch % t == 0 ? t : 1)
        oversubscribed = t > usableCPUs ? usableCPUs : nil
    }
}
