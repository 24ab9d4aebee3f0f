import ArgumentParser
import CohortBase
import CohortBench

struct Scale: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict samples/s and efficiency on 1 to N nodes from a benchmark (the alpha-beta model).",
        discussion: """
        Takes the compute time per sample and the gradient buckets of the 1-rank configuration \
        of a `cohort bench` result, and for every bandwidth prints the predicted samples/s, \
        parallel efficiency and communication share for N = 1, 2, 4, ... --max-nodes, with one \
        rank per node and --per-rank-batch samples each (weak scaling), the ring allreduce \
        costing 2(N-1)/N·bytes/bandwidth + 2(N-1)·latency per bucket; then the smallest per-rank \
        batch that keeps --efficiency at --max-nodes. Writes scale.json and scale.svg to --out.
        """)

    @Option(help: "bench.json of a `cohort bench` run with a 1-rank configuration.")
    var bench: String
    @Option(help: "Link bandwidths in Gbit/s, comma-separated.")
    var bandwidth: String = "10,100"
    @Option(help: "Latency of one message in microseconds.")
    var latencyUs: Double = 10
    @Option(help: "Samples per rank per step (default: the benchmark's global batch).")
    var perRankBatch: Int?
    @Option(help: "Largest number of nodes (a power of two).")
    var maxNodes: Int = 512
    @Option(help: "Efficiency the smallest-batch answer must keep.")
    var efficiency: Double = 0.9
    @Option(help: "Directory for scale.json and scale.svg.")
    var out: String = "runs/scale"

    var bandwidths: [Double] { commaSeparated(bandwidth) ?? [] }

    func validate() throws {
        guard let bandwidths: [Double] = commaSeparated(bandwidth), !bandwidths.isEmpty,
              bandwidths.allSatisfy({ $0 > 0 && $0 < 1e9 }) else {
            throw ValidationError("--bandwidth must be positive numbers (Gbit/s) separated by commas, got '\(bandwidth)'")
        }
        guard latencyUs >= 0, latencyUs.isFinite else { throw ValidationError("--latency-us must be >= 0") }
        guard maxNodes >= 1, maxNodes <= 1 << 20 else { throw ValidationError("--max-nodes must be in 1...2^20") }
        guard efficiency > 0, efficiency < 1 else { throw ValidationError("--efficiency must be between 0 and 1") }
        if let perRankBatch, perRankBatch <= 0 { throw ValidationError("--per-rank-batch must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let study = try ScalingStudy(benchPath: bench, bandwidthsGbit: bandwidths, latency: latencyUs * 1e-6,
                                         perRankBatch: perRankBatch, maxNodes: maxNodes, efficiency: efficiency)
            try study.run(outputDirectory: out) { say($0) }
        }
    }
}
