import CohortBase
import CohortLaunch
import CohortReporting
import Foundation

/// `cohort bench` outside MPI: measures the machine's sgemm rate, then runs the benchmark
/// once per rank count (each in a worker job of its own: `Placement.local`, or the first N
/// slots of a hostfile), and reports speedup, efficiency, phase shares and effective GFLOP/s.
///
/// With a hostfile, Open MPI is told to use the ring allreduce, and the alpha-beta
/// `ScalingModel` is checked against every configuration: α and β are fitted to allreduces
/// timed on 2 ranks, and each configuration's predicted step is its own measured compute
/// (everything but the allreduce wait; run with --no-overlap so that wait is the whole
/// allreduce) plus the model's reduction time of its gradient buckets.
public struct BenchmarkSuite {
    public var settings: BenchSettings
    public var rankCounts: [Int]
    public var outputDirectory: String
    public var sgemmSeconds = 0.5
    /// Hosts to spread N ranks over (the first N slots of the hostfile), else this machine.
    public var hostfile: Hostfile?
    public var iface: String?

    public init(settings: BenchSettings, rankCounts: [Int], outputDirectory: String) {
        self.settings = settings; self.rankCounts = rankCounts; self.outputDirectory = outputDirectory
    }

    public func run(log: (String) -> Void) throws {
        try createDirectory(outputDirectory)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let sgemm = measureSGEMMGFLOPs(threads: cores, seconds: sgemmSeconds)
        log(String(format: "machine: %d cores, sgemm %.1f GFLOP/s (1024x1024, %d threads)", cores, sgemm, cores))
        let model = try hostfile != nil && rankCounts.contains { $0 > 1 } ? calibrate(log: log) : nil
        var measured: [BenchMeasurement] = []
        for ranks in rankCounts {
            let m = try measure(ranks: ranks)
            log(String(format: "%d rank(s) x %d thread(s): %.1f samples/s", ranks, m.threadsPerRank, m.samplesPerSecond))
            measured.append(m)
        }
        let baseline = measured.first { $0.ranks == 1 } ?? measured[0]
        let baseRate = baseline.samplesPerSecond / Double(baseline.ranks)
        let configurations = measured.map { m -> BenchConfiguration in
            let speedup = m.samplesPerSecond / baseRate
            return BenchConfiguration(measured: m, speedup: speedup, efficiency: speedup / Double(m.ranks),
                                      machineSgemmGflops: sgemm, fractionOfSgemm: m.effectiveGFLOPs / sgemm,
                                      prediction: model.map { Self.prediction(of: m, by: $0) })
        }
        let report = BenchReport(settings: settings, cores: cores, machineSgemmGflops: sgemm,
                                 configurations: configurations,
                                 linkModel: model.map { .init(latencyS: $0.latency, bandwidthBytesPerS: $0.bandwidth) })
        try JSONFile.write(report, to: file("bench.json"))
        let chart = LineChart(title: "\(settings.training.model), global batch \(settings.training.batchSize): samples/s",
                              xLabel: "ranks", yLabel: "samples/s", series: [
            .init(name: "measured", color: "#1f77b4", points: measured.map { (Double($0.ranks), $0.samplesPerSecond) }),
            .init(name: "ideal", color: "#999999", points: measured.map { (Double($0.ranks), baseRate * Double($0.ranks)) }),
        ])
        try writeAtomically(chart.svg(), to: file("bench.svg"))
        log(Self.table(configurations))
        log("written: \(file("bench.json")), \(file("bench.svg"))")
    }

    func file(_ name: String) -> String { "\(outputDirectory)/\(name)" }

    /// The scaling model's view of one configuration: its measured compute per step and rank
    /// (everything but the allreduce wait) plus the model's reduction of its buckets.
    static func prediction(of m: BenchMeasurement, by model: ScalingModel) -> BenchConfiguration.Prediction {
        let compute = m.computeSecondsPerStep
        let predicted = model.predict(ranks: m.ranks, computeSeconds: compute, batch: m.globalBatch, buckets: m.bucketBytes)
        return .init(predictedSamplesPerSecond: predicted.samplesPerSecond,
                     predictedAllreduceSecondsPerStep: predicted.stepSeconds - compute,
                     measuredAllreduceSecondsPerStep: m.phaseSeconds("allreduce_wait") / Double(m.steps),
                     modelError: predicted.samplesPerSecond / m.samplesPerSecond - 1)
    }

    /// The printed table: one line per configuration.
    static func table(_ configurations: [BenchConfiguration]) -> String {
        let predicted = configurations.contains { $0.prediction != nil }
        var lines = ["ranks  threads  samples/s  speedup  efficiency  forward backward allreduce optimizer data  GFLOP/s  of sgemm"
                     + (predicted ? "  model samples/s  model error" : "")]
        for c in configurations {
            let m = c.measured, share = m.phaseShare
            var line = String(format: "%5d  %7d  %9.1f  %7.2f  %9.1f%%  %6.1f%% %7.1f%% %8.1f%% %8.1f%% %4.1f%%  %7.1f  %6.1f%%",
                              m.ranks, m.threadsPerRank, m.samplesPerSecond, c.speedup, 100 * c.efficiency,
                              100 * (share["forward"] ?? 0), 100 * (share["backward"] ?? 0),
                              100 * (share["allreduce_wait"] ?? 0), 100 * (share["optimizer"] ?? 0),
                              100 * (share["data"] ?? 0), m.effectiveGFLOPs, 100 * c.fractionOfSgemm)
            if let p = c.prediction {
                line += String(format: "  %15.1f  %+10.1f%%", p.predictedSamplesPerSecond, 100 * p.modelError)
            }
            lines.append(line)
        }
        // Per rank, where there are several: a straggler shows as one rank's long compute.
        for c in configurations where c.measured.rankTimes.count > 1 {
            lines.append("\(c.measured.ranks) ranks, compute per step and wait share by rank: "
                         + c.measured.rankTimes.map { String(format: "%d: %.2f ms %.1f%%", $0.rank,
                                                             1e3 * $0.computeSecondsPerStep, 100 * $0.waitShare) }
                             .joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// The link model, fitted to allreduce timings on 2 ranks of the hostfile.
    func calibrate(log: (String) -> Void) throws -> ScalingModel {
        let path = file("allreduce-2.json")
        try? FileManager.default.removeItem(atPath: path)
        try runWorker(ranks: 2, arguments: ["bench", "--calibrate-result", path])
        let timings = try JSONFile.read(AllreduceTimings.self, path: path).timings
        let model = ScalingModel.fit(twoRankTimings: timings.map { ($0.bytes, $0.seconds) })
        log(String(format: "links: latency %.1f us, bandwidth %.3f Gbit/s (allreduce timings on 2 ranks: %@)",
                   model.latency * 1e6, model.bandwidth * 8 / 1e9,
                   timings.map { String(format: "%.0f B %.3f ms", $0.bytes, $0.seconds * 1e3) }.joined(separator: ", ")))
        return model
    }

    /// One configuration in a worker job, which receives the settings as JSON.
    func measure(ranks: Int) throws -> BenchMeasurement {
        let resultPath = file("ranks-\(ranks).json")
        try? FileManager.default.removeItem(atPath: resultPath)
        try runWorker(ranks: ranks, arguments: ["bench", "--worker-settings", JSONFile.line(settings), "--result", resultPath])
        guard FileManager.default.fileExists(atPath: resultPath) else {
            throw CohortError.failure("benchmark with \(ranks) rank(s) wrote no result")
        }
        return try JSONFile.read(BenchMeasurement.self, path: resultPath)
    }

    /// Runs `cohort ARGUMENTS` on `ranks` ranks: this machine, or the hostfile's first slots
    /// with the ring allreduce (the algorithm the link model describes).
    func runWorker(ranks: Int, arguments: [String]) throws {
        let placement = try hostfile?.placements(ranks: ranks, iface: iface)[0] ?? .local
        let environment = hostfile == nil ? [:] : MPIRun.ringAllreduceEnvironment
        let process = try placement.start(ranks: ranks, arguments: arguments, environment: environment)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CohortError.failure("benchmark worker with \(ranks) rank(s) failed (exit \(process.terminationStatus))")
        }
    }
}
