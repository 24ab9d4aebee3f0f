import CohortDistributed
import CohortReporting
import CohortTensor
import Foundation

/// `cohort bench` outside MPI: measures the machine's sgemm rate, then runs the
/// benchmark once per rank count (each under its own `mpirun`, 1 rank directly),
/// and reports speedup, efficiency, phase shares and effective GFLOP/s.
///
/// With a hostfile the ranks go to its first N slots over TCP, Open MPI is told to use
/// the ring allreduce, and the alpha-beta `ScalingModel` is checked against every
/// configuration: α and β are fitted to allreduces timed on 2 ranks, and each
/// configuration's predicted step is its own measured compute (everything but the
/// allreduce wait; run with --no-overlap so that wait is the whole allreduce) plus the
/// model's reduction time of its gradient buckets.
public struct BenchmarkSuite {
    public var settings: BenchSettings
    public var rankCounts: [Int]
    public var outputDirectory: String
    public var sgemmSeconds = 0.5
    /// Extra arguments that reproduce `settings` in a worker (`cohort bench ...`).
    public var workerArguments: [String]
    /// Hosts to spread N ranks over (the first N slots of the hostfile), else this machine.
    public var hostfile: Hostfile?
    public var iface: String?

    public init(settings: BenchSettings, rankCounts: [Int], outputDirectory: String, workerArguments: [String]) {
        self.settings = settings; self.rankCounts = rankCounts
        self.outputDirectory = outputDirectory; self.workerArguments = workerArguments
    }

    public func run(log: (String) -> Void) throws {
        let directory = try RunDirectory(path: outputDirectory)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let sgemm = measureSGEMMGFLOPs(threads: cores, seconds: sgemmSeconds)
        log(String(format: "machine: %d cores, sgemm %.1f GFLOP/s (1024x1024, %d threads)", cores, sgemm, cores))
        var model: ScalingModel?
        if hostfile != nil, rankCounts.contains(where: { $0 > 1 }) {
            let timings = try calibrate(directory: directory)
            model = ScalingModel.fit(twoRankTimings: timings)
            log(String(format: "links: latency %.1f us, bandwidth %.3f Gbit/s (allreduce timings on 2 ranks: %@)",
                       model!.latency * 1e6, model!.bandwidth * 8 / 1e9,
                       timings.map { String(format: "%.0f B %.3f ms", $0.bytes, $0.seconds * 1e3) }.joined(separator: ", ")))
        }
        var results: [BenchMeasurement] = []
        for ranks in rankCounts {
            results.append(try measure(ranks: ranks, directory: directory))
            let r = results[results.count - 1]
            log(String(format: "%d rank(s) x %d thread(s): %.1f samples/s", ranks, r.threadsPerRank, r.samplesPerSecond))
        }
        let baseline = results.first { $0.ranks == 1 } ?? results[0]
        let baseRate = baseline.samplesPerSecond / Double(baseline.ranks)
        var rows: [JSON] = []
        var table = ["ranks  threads  samples/s  speedup  efficiency  forward backward allreduce optimizer data  GFLOP/s  of sgemm"
                     + (model != nil ? "  model samples/s  model error" : "")]
        for r in results {
            let speedup = r.samplesPerSecond / baseRate
            let total = r.phases.reduce(0) { $0 + $1.seconds }
            func share(_ name: String) -> Double { r.phaseSeconds(name) / max(total, 1e-12) }
            guard case .object(var fields) = r.json else { continue }
            fields += [("speedup", .number(speedup)), ("efficiency", .number(speedup / Double(r.ranks))),
                       ("machine_sgemm_gflops", .number(sgemm)), ("fraction_of_sgemm", .number(r.effectiveGFLOPs / sgemm))]
            var line = String(format: "%5d  %7d  %9.1f  %7.2f  %9.1f%%  %6.1f%% %7.1f%% %8.1f%% %8.1f%% %4.1f%%  %7.1f  %6.1f%%",
                              r.ranks, r.threadsPerRank, r.samplesPerSecond, speedup, 100 * speedup / Double(r.ranks),
                              100 * share("forward"), 100 * share("backward"), 100 * share("allreduce_wait"),
                              100 * share("optimizer"), 100 * share("data"), r.effectiveGFLOPs, 100 * r.effectiveGFLOPs / sgemm)
            if let model {
                // Per step, per rank: everything measured except the allreduce wait, plus the model's reduction.
                let compute = r.computeSecondsPerStep
                let predicted = model.predict(ranks: r.ranks, computeSeconds: compute, batch: r.globalBatch, buckets: r.bucketBytes)
                let error = predicted.samplesPerSecond / r.samplesPerSecond - 1
                fields += [("predicted_samples_per_s", .number(predicted.samplesPerSecond)),
                           ("predicted_allreduce_seconds_per_step", .number(predicted.stepSeconds - compute)),
                           ("measured_allreduce_seconds_per_step", .number(r.phaseSeconds("allreduce_wait") / Double(r.steps))),
                           ("model_error", .number(error))]
                line += String(format: "  %15.1f  %+10.1f%%", predicted.samplesPerSecond, 100 * error)
            }
            rows.append(.object(fields))
            table.append(line)
        }
        let report: JSON = .object([
            ("model", .string(settings.model.rawValue)), ("hidden", .number(Double(settings.hidden))),
            ("width", .number(Double(settings.width))),
            ("global_batch", .number(Double(settings.batchSize))), ("steps", .number(Double(settings.steps))),
            ("warmup_steps", .number(Double(settings.warmupSteps))), ("cores", .number(Double(cores))),
            ("machine_sgemm_gflops", .number(sgemm)), ("configurations", .array(rows)),
            ("link_model", model.map { .object([("latency_s", .number($0.latency)), ("bandwidth_bytes_per_s", .number($0.bandwidth)),
                                                ("algorithm", "ring")]) } ?? .null),
        ])
        try writeAtomically(report.serialized(pretty: true) + "\n", to: directory.file("bench.json"))
        let chart = LineChart(title: "\(settings.model.rawValue), global batch \(settings.batchSize): samples/s",
                              xLabel: "ranks", yLabel: "samples/s", series: [
            .init(name: "measured", color: "#1f77b4", points: results.map { (Double($0.ranks), $0.samplesPerSecond) }),
            .init(name: "ideal", color: "#999999", points: results.map { (Double($0.ranks), baseRate * Double($0.ranks)) }),
        ])
        try writeAtomically(chart.svg(), to: directory.file("bench.svg"))
        log(table.joined(separator: "\n"))
        log("written: \(directory.file("bench.json")), \(directory.file("bench.svg"))")
    }

    /// Allreduce timings on 2 ranks of the hostfile, for the link model.
    func calibrate(directory: RunDirectory) throws -> [(bytes: Double, seconds: Double)] {
        let path = directory.file("allreduce-2.json")
        try? FileManager.default.removeItem(atPath: path)
        try runWorker(ranks: 2, arguments: ["bench", "--calibrate-result", path])
        return try BenchmarkRunner.readAllreduceTimings(path)
    }

    /// One configuration in a child process (1 rank) or under mpirun (N ranks).
    func measure(ranks: Int, directory: RunDirectory) throws -> BenchMeasurement {
        let resultPath = directory.file("ranks-\(ranks).json")
        try? FileManager.default.removeItem(atPath: resultPath)
        try runWorker(ranks: ranks, arguments: ["bench"] + workerArguments + ["--result", resultPath])
        guard let json = try? JSON(contentsOfFile: resultPath) else {
            throw RunError("benchmark with \(ranks) rank(s) wrote no result")
        }
        return try BenchMeasurement(json: json)
    }

    /// Runs `cohort ARGUMENTS` on `ranks` ranks: this machine, or the hostfile's first slots
    /// with the ring allreduce (the algorithm the link model describes).
    func runWorker(ranks: Int, arguments: [String]) throws {
        let placement = try hostfile?.placements(ranks: ranks, iface: iface)[0] ?? .local
        // On hosts: the ring allreduce (what the model describes), and ranks that yield their core
        // while they wait: a test cluster's nodes may share cores, and a spinning rank slows its neighbour.
        let environment = hostfile == nil ? [:] : [
            "OMPI_MCA_coll_tuned_use_dynamic_rules": "1", "OMPI_MCA_coll_tuned_allreduce_algorithm": "4",
            "OMPI_MCA_mpi_yield_when_idle": "1",
        ]
        let process = try placement.start(ranks: ranks, arguments: arguments, environment: environment)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RunError("benchmark worker with \(ranks) rank(s) failed (exit \(process.terminationStatus))")
        }
    }
}
