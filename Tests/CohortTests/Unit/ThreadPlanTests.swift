@testable import CohortTraining
import Testing

/// How a rank's threads and replicas are chosen, and how replicas share the gradient sum.
@Suite struct ThreadPlanTests {
    @Test func threadsFollowTheCPUsTheRankMayUse() {
        // Bound by its launcher to 1 of 2 cores: 1 thread, whatever the ranks on the node.
        #expect(ThreadPlan(threads: nil, replicas: nil, localBatch: 64, ranksOnNode: 1, usableCPUs: 1, cores: 2).threads == 1)
        // Unbound: the node's cores shared by its ranks.
        #expect(ThreadPlan(threads: nil, replicas: nil, localBatch: 64, ranksOnNode: 1, usableCPUs: 8, cores: 8).threads == 8)
        #expect(ThreadPlan(threads: nil, replicas: nil, localBatch: 64, ranksOnNode: 4, usableCPUs: 8, cores: 8).threads == 2)
        // Bound to 16 of 128 cores.
        #expect(ThreadPlan(threads: nil, replicas: nil, localBatch: 64, ranksOnNode: 8, usableCPUs: 16, cores: 128).threads == 16)
        // More threads than CPUs: kept, and said.
        let asked = ThreadPlan(threads: 64, replicas: 64, localBatch: 64, ranksOnNode: 1, usableCPUs: 2, cores: 2)
        #expect(asked.threads == 64 && asked.replicas == 64 && asked.threadsPerReplica == 1 && asked.oversubscribed == 2)
        #expect(ThreadPlan(threads: 2, replicas: nil, localBatch: 64, ranksOnNode: 1, usableCPUs: 2, cores: 2).oversubscribed == nil)
    }

    @Test func replicaStretchesTileTheParametersForEveryCount() {
        for n in [0, 1, 7, 63, 64, 65, 1000, 94_666] {
            for parts in [1, 2, 3, 7, 32, 64, 100, 128] {
                let ranges = (0..<parts).map { ReplicaGroup.stretch($0, of: n, parts: parts) }
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == n, "n \(n), parts \(parts)")
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "n \(n), parts \(parts)")
                #expect(ranges.allSatisfy { $0.count <= (n + parts - 1) / parts }, "balanced: n \(n), parts \(parts)")
            }
        }
    }
}
