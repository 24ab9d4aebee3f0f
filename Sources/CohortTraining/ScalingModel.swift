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
        return max(1, Int((target / (1 - target) * comm / secondsPerSample).rounded(.up)))
    }
}

/// `cohort scale`: the `ScalingTable` of a benchmark's 1-rank configuration for several
/// link bandwidths, printed, and written as `scale.json` and `scale.svg`.
public struct ScalingStudy {
    public let benchPath: String
    public let table: ScalingTable
    public let efficiency: Double
    public let latency: Double

    public init(benchPath: String, bandwidthsGbit: [Double], latency: Double, perRankBatch: Int?, maxNodes: Int,
                efficiency: Double) throws {
        let json = try JSON(contentsOfFile: benchPath)
        guard let configuration = json["configurations"]?.array?.first(where: { $0["ranks"]?.number == 1 }),
              let one = try? BenchMeasurement(json: configuration), !one.bucketBytes.isEmpty else {
            throw RunError("\(benchPath): no 1-rank configuration with timings and bucket_bytes (run cohort bench --ranks 1,...)")
        }
        let secondsPerSample = one.computeSecondsPerStep / Double(one.globalBatch)
        guard secondsPerSample.isFinite, secondsPerSample > 0 else {
            throw RunError("\(benchPath): the 1-rank configuration gives no compute time per sample")
        }
        guard bandwidthsGbit.allSatisfy({ $0.isFinite && $0 > 0 }), latency.isFinite, latency >= 0 else {
            throw SettingsError("bandwidths must be finite and positive, the latency finite and >= 0")
        }
        func name(_ gbit: Double) -> String { String(format: "%g Gbit/s", gbit) }
        let models = bandwidthsGbit.map { (name($0), ScalingModel(latency: latency, bandwidth: $0 * 1e9 / 8)) }
        table = ScalingTable(secondsPerSample: secondsPerSample, buckets: one.bucketBytes,
                             perRankBatch: perRankBatch ?? one.globalBatch, models: models, maxNodes: maxNodes)
        self.benchPath = benchPath; self.efficiency = efficiency; self.latency = latency
    }

    public func run(outputDirectory: String, log: (String) -> Void) throws {
        let models = table.models, last = table.nodeCounts.last!
        log(String(format: "compute %.1f us per sample per rank; gradient %d bytes in %d bucket(s); %d samples per rank; "
                   + "latency %.1f us; ring allreduce", table.secondsPerSample * 1e6, table.buckets.reduce(0, +),
                   table.buckets.count, table.perRankBatch, latency * 1e6))
        log("nodes" + models.map { " | " + $0.name.padding(toLength: 12, withPad: " ", startingAt: 0) + "   samples/s  efficiency   comm" }
            .joined())
        var rows: [JSON] = []
        for n in table.nodeCounts {
            var line = String(format: "%5d", n), fields: [(String, JSON)] = [("nodes", .number(Double(n)))]
            for (name, model) in models {
                let r = table.row(n, model)
                line += String(format: " | %24.0f  %9.1f%%  %5.1f%%", r.samplesPerSecond, 100 * r.efficiency, 100 * r.communicationShare)
                fields.append((name, .object([("samples_per_s", .number(r.samplesPerSecond)), ("efficiency", .number(r.efficiency)),
                                              ("communication_share", .number(r.communicationShare))])))
            }
            log(line)
            rows.append(.object(fields))
        }
        var smallest: [(String, JSON)] = []
        for (name, model) in models {
            let b = table.smallestBatch(nodes: last, model: model, efficiency: efficiency)
            log(String(format: "%@: the smallest per-rank batch keeping %.0f%% efficiency at %d nodes is %d samples",
                       name, 100 * efficiency, last, b))
            smallest.append((name, .number(Double(b))))
        }
        do { try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true) } catch {
            throw RunError("\(outputDirectory): cannot create (\(error.localizedDescription))")
        }
        let result: JSON = .object([
            ("bench", .string(benchPath)), ("seconds_per_sample", .number(table.secondsPerSample)),
            ("bucket_bytes", .array(table.buckets.map { .number(Double($0)) })),
            ("per_rank_batch", .number(Double(table.perRankBatch))), ("latency_s", .number(latency)),
            ("algorithm", "ring"), ("rows", .array(rows)),
            ("smallest_per_rank_batch", .object([("efficiency", .number(efficiency)), ("nodes", .number(Double(last)))] + smallest)),
        ])
        try writeAtomically(result.serialized(pretty: true) + "\n", to: "\(outputDirectory)/scale.json")
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
        let chart = LineChart(title: "predicted efficiency, \(table.perRankBatch) samples per rank", xLabel: "log2(nodes)",
                              yLabel: "parallel efficiency", series: models.enumerated().map { i, m in
            .init(name: m.name, color: colors[i % colors.count],
                  points: table.nodeCounts.map { (log2(Double($0)), table.row($0, m.model).efficiency) })
        })
        try writeAtomically(chart.svg(), to: "\(outputDirectory)/scale.svg")
        log("written: \(outputDirectory)/scale.json, \(outputDirectory)/scale.svg")
    }
}
