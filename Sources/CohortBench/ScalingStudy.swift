import CohortBase
import CohortReporting
import Foundation

/// `cohort scale`: the `ScalingTable` of a benchmark's 1-rank configuration for several
/// link bandwidths, printed, and written as `scale.json` and `scale.svg`.
public struct ScalingStudy {
    public let benchPath: String
    public let table: ScalingTable
    public let efficiency: Double
    public let latency: Double

    public init(benchPath: String, bandwidthsGbit: [Double], latency: Double, perRankBatch: Int?, maxNodes: Int,
                efficiency: Double) throws {
        let report = try JSONFile.read(BenchReport.self, path: benchPath)
        guard let one = report.configurations.map(\.measured).first(where: { $0.ranks == 1 }), !one.bucketBytes.isEmpty else {
            throw CohortError.failure("\(benchPath): no 1-rank configuration with timings and bucket_bytes (run cohort bench --ranks 1,...)")
        }
        let secondsPerSample = one.computeSecondsPerStep / Double(one.globalBatch)
        guard secondsPerSample.isFinite, secondsPerSample > 0 else {
            throw CohortError.failure("\(benchPath): the 1-rank configuration gives no compute time per sample")
        }
        guard bandwidthsGbit.allSatisfy({ $0.isFinite && $0 > 0 }), latency.isFinite, latency >= 0 else {
            throw CohortError.settings("bandwidths must be finite and positive, the latency finite and >= 0")
        }
        if let perRankBatch, !(1...(1 << 30)).contains(perRankBatch) {
            throw CohortError.settings("--per-rank-batch must be in 1...2^30, got \(perRankBatch)")
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
        var rows: [ScaleFile.Row] = []
        for n in table.nodeCounts {
            var line = String(format: "%5d", n), predictions: [String: ScaleFile.Prediction] = [:]
            for (name, model) in models {
                let r = table.row(n, model)
                line += String(format: " | %24.0f  %9.1f%%  %5.1f%%", r.samplesPerSecond, 100 * r.efficiency, 100 * r.communicationShare)
                predictions[name] = .init(samplesPerS: r.samplesPerSecond, efficiency: r.efficiency,
                                          communicationShare: r.communicationShare)
            }
            log(line)
            rows.append(.init(nodes: n, predictions: predictions))
        }
        var smallest: [String: Int] = [:]
        for (name, model) in models {
            let b = table.smallestBatch(nodes: last, model: model, efficiency: efficiency)
            log(String(format: "%@: the smallest per-rank batch keeping %.0f%% efficiency at %d nodes is %d samples",
                       name, 100 * efficiency, last, b))
            smallest[name] = b
        }
        try createDirectory(outputDirectory)
        try JSONFile.write(ScaleFile(bench: benchPath, secondsPerSample: table.secondsPerSample, bucketBytes: table.buckets,
                                     perRankBatch: table.perRankBatch, latencyS: latency, rows: rows,
                                     smallestPerRankBatch: .init(efficiency: efficiency, nodes: last, batches: smallest)),
                           to: "\(outputDirectory)/scale.json")
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

/// `scale.json`.
struct ScaleFile: Codable {
    var bench: String
    var secondsPerSample: Double
    var bucketBytes: [Int]
    var perRankBatch: Int
    var latencyS: Double
    var algorithm = "ring"
    var rows: [Row]
    var smallestPerRankBatch: Smallest

    struct Row: Codable {
        var nodes: Int
        /// By link bandwidth ("10 Gbit/s").
        var predictions: [String: Prediction]
    }

    struct Prediction: Codable {
        var samplesPerS: Double, efficiency: Double, communicationShare: Double

        enum CodingKeys: String, CodingKey {
            case samplesPerS = "samples_per_s", efficiency, communicationShare = "communication_share"
        }
    }

    struct Smallest: Codable {
        var efficiency: Double, nodes: Int
        /// By link bandwidth.
        var batches: [String: Int]
    }

    enum CodingKeys: String, CodingKey {
        case bench, secondsPerSample = "seconds_per_sample", bucketBytes = "bucket_bytes", perRankBatch = "per_rank_batch"
        case latencyS = "latency_s", algorithm, rows, smallestPerRankBatch = "smallest_per_rank_batch"
    }
}
