import CohortBase
import CohortReporting
import Foundation

/// The alpha-beta cost of data-parallel training: each step is the per-rank compute time
/// plus the gradient allreduce, one allreduce per bucket, each costing (ring)
///
///     T(N, s) = 2(N-1)/N · s/β + 2(N-1)·α
///
/// for N ranks and s bytes (β: link bandwidth in bytes/s, α: the latency of one message).
/// The calibration runs pin Open MPI to the ring, so the fitted α and β describe it.
/// The model assumes no overlap of communication with backward (`--no-overlap`): with
/// overlap, real steps are at most this long.
public struct ScalingModel: Sendable {
    /// Seconds per message and bytes per second of one link.
    public var latency: Double, bandwidth: Double

    public init(latency: Double, bandwidth: Double) {
        self.latency = latency; self.bandwidth = bandwidth
    }

    /// Seconds of one ring allreduce of `bytes` over `ranks`.
    public func allreduceSeconds(ranks n: Int, bytes: Double) -> Double {
        guard n > 1 else { return 0 }
        let N = Double(n)
        return 2 * (N - 1) / N * bytes / bandwidth + 2 * (N - 1) * latency
    }

    /// Seconds of the whole gradient reduction: one allreduce per bucket.
    public func reductionSeconds(ranks n: Int, buckets: [Int]) -> Double {
        buckets.reduce(0) { $0 + allreduceSeconds(ranks: n, bytes: Double($1)) }
    }

    /// One configuration's prediction: `computeSeconds` per step on each rank (measured, or
    /// per-sample time × per-rank batch), global batch `batch`.
    public func predict(ranks n: Int, computeSeconds: Double, batch: Int, buckets: [Int])
        -> (stepSeconds: Double, samplesPerSecond: Double, communicationShare: Double) {
        let comm = reductionSeconds(ranks: n, buckets: buckets)
        let step = computeSeconds + comm
        return (step, Double(batch) / step, comm / step)
    }

    /// Fits α and β of the ring to allreduce timings on 2 ranks (T = s/β + 2α), by least
    /// squares on (bytes, seconds); a negative intercept (noise) gives α = 0.
    public static func fit(twoRankTimings: [(bytes: Double, seconds: Double)]) -> ScalingModel {
        let n = Double(twoRankTimings.count)
        let mx = twoRankTimings.map(\.bytes).reduce(0, +) / n, my = twoRankTimings.map(\.seconds).reduce(0, +) / n
        let sxy = twoRankTimings.map { ($0.bytes - mx) * ($0.seconds - my) }.reduce(0, +)
        let sxx = twoRankTimings.map { ($0.bytes - mx) * ($0.bytes - mx) }.reduce(0, +)
        let slope = sxx > 0 ? sxy / sxx : 0, intercept = my - slope * mx
        return ScalingModel(latency: max(intercept / 2, 0), bandwidth: slope > 0 ? 1 / slope : .infinity)
    }
}

/// The table `cohort scale` prints: predicted throughput and efficiency of a model for
/// N = 1, 2, 4, ... nodes, from its measured compute time per sample on one rank.
public struct ScalingTable {
    public let secondsPerSample: Double
    public let buckets: [Int]
    public let perRankBatch: Int
    public let models: [(name: String, model: ScalingModel)]
    public let nodeCounts: [Int]

    public init(secondsPerSample: Double, buckets: [Int], perRankBatch: Int, models: [(name: String, model: ScalingModel)],
                maxNodes: Int) {
        self.secondsPerSample = secondsPerSample; self.buckets = buckets; self.perRankBatch = perRankBatch
        self.models = models
        nodeCounts = Array(sequence(first: 1) { $0 * 2 <= maxNodes ? $0 * 2 : nil })
    }

    /// Weak scaling: every rank keeps `perRankBatch`, so its compute per step is fixed.
    public func row(_ n: Int, _ model: ScalingModel) -> (samplesPerSecond: Double, efficiency: Double, communicationShare: Double) {
        let compute = secondsPerSample * Double(perRankBatch)
        let p = model.predict(ranks: n, computeSeconds: compute, batch: n * perRankBatch, buckets: buckets)
        return (p.samplesPerSecond, compute / p.stepSeconds, p.communicationShare)
    }

    /// The smallest per-rank batch whose efficiency at `n` nodes is at least `target`:
    /// b·t / (b·t + T_comm) >= target  <=>  b >= target/(1-target) · T_comm / t.
    public func smallestBatch(nodes n: Int, model: ScalingModel, efficiency target: Double) -> Int {
        let comm = model.reductionSeconds(ranks: n, buckets: buckets)
        // Saturated: a link too slow for any batch gives a number no one could use, not a trap.
        return max(1, Int(min((target / (1 - target) * comm / secondsPerSample).rounded(.up), 1e15)))
    }
}
