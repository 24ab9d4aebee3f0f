import CohortBase
import CohortDistributed
import CohortRun
import Foundation

/// Seconds one rank spent computing (data, forward, backward, optimizer) and waiting for the
/// gradient reduction, summed over `steps` steps.
public struct StepTimes: Codable, Equatable, Sendable {
    public var steps = 0
    public var compute = 0.0, wait = 0.0

    public init() {}

    public var computePerStep: Double { steps > 0 ? compute / Double(steps) : 0 }
    /// The wait's share of the step.
    public var waitShare: Double { compute + wait > 0 ? wait / (compute + wait) : 0 }

    /// As a summary records it.
    public func timing(rank: Int) -> RankTiming {
        RankTiming(rank: rank, steps: steps, computeSecondsPerStep: computePerStep, waitShare: waitShare)
    }

    static func - (a: StepTimes, b: StepTimes) -> StepTimes {
        var d = StepTimes()
        d.steps = a.steps - b.steps; d.compute = a.compute - b.compute; d.wait = a.wait - b.wait
        return d
    }

    /// Every rank's times, in rank order (collective: each rank fills its own slots of a sum).
    static func gather(_ mine: StepTimes, communicator: Communicator) throws -> [StepTimes] {
        var slots = [Double](repeating: 0, count: 3 * communicator.size)
        slots[3 * communicator.rank] = Double(mine.steps)
        slots[3 * communicator.rank + 1] = mine.compute
        slots[3 * communicator.rank + 2] = mine.wait
        let all = try communicator.allreduceSum(slots)
        return (0..<communicator.size).map { r in
            var t = StepTimes()
            t.steps = Int(all[3 * r]); t.compute = all[3 * r + 1]; t.wait = all[3 * r + 2]
            return t
        }
    }

    /// The ranks whose compute per step is more than `factor` times the lower median of all
    /// ranks' (a straggler slows every other rank, which waits for it in the allreduce).
    static func stragglers(_ ranks: [StepTimes], factor: Double = 1.5) -> [Int] {
        let perStep = ranks.map(\.computePerStep), sorted = perStep.sorted()
        guard ranks.count > 1, case let median = sorted[(sorted.count - 1) / 2], median > 0 else { return [] }
        return perStep.indices.filter { perStep[$0] > factor * median }
    }
}

/// `COHORT_FAULT_SLOW=RANK:SECONDS`: rank RANK spends SECONDS more on every step's compute, as
/// a slower node would, so that the tests can see the straggler report name it.
struct SlowRankFault {
    let rank: Int, seconds: Double

    static var fromEnvironment: SlowRankFault? {
        guard let spec = ProcessInfo.processInfo.environment["COHORT_FAULT_SLOW"] else { return nil }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let rank = Int(parts[0]), let seconds = Double(parts[1]),
              seconds.isFinite, seconds >= 0, seconds < 60 else { return nil }
        return SlowRankFault(rank: rank, seconds: seconds)
    }

    func apply(rank: Int) {
        if rank == self.rank { usleep(UInt32(seconds * 1e6)) }
    }
}
