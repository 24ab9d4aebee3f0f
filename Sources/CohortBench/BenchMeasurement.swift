import CohortBase
import CohortRun
import Foundation

/// One configuration's figures, as a worker writes them and `bench.json` keeps them.
public struct BenchMeasurement: Codable, Sendable {
    /// The phases of a step, in the order tables show them.
    public static let phaseNames = ["data", "forward", "backward", "allreduce_wait", "optimizer"]

    public var ranks: Int
    public var threadsPerRank: Int
    public var globalBatch: Int
    public var steps: Int
    public var seconds: Double
    /// Mean seconds per rank in each phase over the timed steps.
    public var phaseSeconds: [String: Double]
    public var modelGflopPerSample: Double
    /// Bytes of each gradient bucket (one allreduce each per step).
    public var bucketBytes: [Int]
    /// Each rank's compute per step and wait share over the timed steps.
    public var rankTimes: [RankTiming] = []

    public var samplesPerSecond: Double { Double(steps * globalBatch) / seconds }
    public var effectiveGFLOPs: Double { modelGflopPerSample * samplesPerSecond }
    /// Each phase's share of the phases' total.
    public var phaseShare: [String: Double] {
        let total = phaseSeconds.values.reduce(0, +)
        return phaseSeconds.mapValues { total > 0 ? $0 / total : 0 }
    }

    /// Seconds per rank in the phase `name` over the timed steps (0 for a phase not measured).
    public func phaseSeconds(_ name: String) -> Double { phaseSeconds[name] ?? 0 }

    /// Seconds per step of everything a rank does but wait for the allreduce: what the
    /// scaling model keeps and adds its predicted reduction to.
    public var computeSecondsPerStep: Double { (seconds - phaseSeconds("allreduce_wait")) / Double(steps) }

    enum CodingKeys: String, CodingKey {
        case ranks, threadsPerRank = "threads_per_rank", globalBatch = "global_batch", steps, seconds
        case phaseSeconds = "phase_seconds", modelGflopPerSample = "model_gflop_per_sample", bucketBytes = "bucket_bytes"
        case rankTimes = "rank_times"
        // Derived, written for readers of the file.
        case samplesPerSecond = "samples_per_s", effectiveGFLOPs = "effective_gflops", phaseShare = "phase_share"
    }

    public init(ranks: Int, threadsPerRank: Int, globalBatch: Int, steps: Int, seconds: Double,
                phaseSeconds: [String: Double], modelGflopPerSample: Double, bucketBytes: [Int]) {
        self.ranks = ranks; self.threadsPerRank = threadsPerRank; self.globalBatch = globalBatch; self.steps = steps
        self.seconds = seconds; self.phaseSeconds = phaseSeconds; self.modelGflopPerSample = modelGflopPerSample
        self.bucketBytes = bucketBytes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ranks = try c.decode(Int.self, forKey: .ranks)
        threadsPerRank = try c.decode(Int.self, forKey: .threadsPerRank)
        globalBatch = try c.decode(Int.self, forKey: .globalBatch)
        steps = try c.decode(Int.self, forKey: .steps)
        seconds = try c.decode(Double.self, forKey: .seconds)
        phaseSeconds = try c.decode([String: Double].self, forKey: .phaseSeconds)
        modelGflopPerSample = try c.decode(Double.self, forKey: .modelGflopPerSample)
        bucketBytes = try c.decode([Int].self, forKey: .bucketBytes)
        rankTimes = try c.decodeIfPresent([RankTiming].self, forKey: .rankTimes) ?? []
        guard ranks > 0, steps > 0, globalBatch > 0, seconds.isFinite, seconds > 0 else {
            throw CohortError.failure("a configuration needs positive ranks, steps, global_batch and seconds")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ranks, forKey: .ranks); try c.encode(threadsPerRank, forKey: .threadsPerRank)
        try c.encode(globalBatch, forKey: .globalBatch); try c.encode(steps, forKey: .steps)
        try c.encode(seconds, forKey: .seconds); try c.encode(phaseSeconds, forKey: .phaseSeconds)
        try c.encode(modelGflopPerSample, forKey: .modelGflopPerSample); try c.encode(bucketBytes, forKey: .bucketBytes)
        try c.encode(rankTimes, forKey: .rankTimes)
        try c.encode(samplesPerSecond, forKey: .samplesPerSecond); try c.encode(effectiveGFLOPs, forKey: .effectiveGFLOPs)
        try c.encode(phaseShare, forKey: .phaseShare)
    }
}

/// A configuration of `bench.json`: the measurement, set against the 1-rank one and the
/// machine's sgemm rate and, on a cluster, against the scaling model's prediction.
public struct BenchConfiguration: Codable, Sendable {
    public var measured: BenchMeasurement
    public var speedup: Double, efficiency: Double
    public var machineSgemmGflops: Double, fractionOfSgemm: Double
    public var prediction: Prediction?

    public struct Prediction: Codable, Sendable {
        public var predictedSamplesPerSecond: Double
        public var predictedAllreduceSecondsPerStep: Double, measuredAllreduceSecondsPerStep: Double
        public var modelError: Double

        enum CodingKeys: String, CodingKey {
            case predictedSamplesPerSecond = "predicted_samples_per_s"
            case predictedAllreduceSecondsPerStep = "predicted_allreduce_seconds_per_step"
            case measuredAllreduceSecondsPerStep = "measured_allreduce_seconds_per_step", modelError = "model_error"
        }
    }

    enum CodingKeys: String, CodingKey {
        case speedup, efficiency, machineSgemmGflops = "machine_sgemm_gflops", fractionOfSgemm = "fraction_of_sgemm"
    }

    public init(measured: BenchMeasurement, speedup: Double, efficiency: Double, machineSgemmGflops: Double,
                fractionOfSgemm: Double, prediction: Prediction?) {
        self.measured = measured; self.speedup = speedup; self.efficiency = efficiency
        self.machineSgemmGflops = machineSgemmGflops; self.fractionOfSgemm = fractionOfSgemm; self.prediction = prediction
    }

    // One flat object per configuration: the measurement's keys beside these.
    public init(from decoder: Decoder) throws {
        measured = try BenchMeasurement(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        speedup = try c.decode(Double.self, forKey: .speedup)
        efficiency = try c.decode(Double.self, forKey: .efficiency)
        machineSgemmGflops = try c.decode(Double.self, forKey: .machineSgemmGflops)
        fractionOfSgemm = try c.decode(Double.self, forKey: .fractionOfSgemm)
        prediction = try? Prediction(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        try measured.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(speedup, forKey: .speedup); try c.encode(efficiency, forKey: .efficiency)
        try c.encode(machineSgemmGflops, forKey: .machineSgemmGflops); try c.encode(fractionOfSgemm, forKey: .fractionOfSgemm)
        try prediction?.encode(to: encoder)
    }
}

/// `bench.json`.
public struct BenchReport: Codable, Sendable {
    public var settings: BenchSettings
    public var cores: Int
    public var machineSgemmGflops: Double
    public var configurations: [BenchConfiguration]
    public var linkModel: LinkModel?

    /// The ring's fitted latency and bandwidth.
    public struct LinkModel: Codable, Sendable {
        public var latencyS: Double, bandwidthBytesPerS: Double, algorithm = "ring"

        enum CodingKeys: String, CodingKey {
            case latencyS = "latency_s", bandwidthBytesPerS = "bandwidth_bytes_per_s", algorithm
        }
    }

    enum CodingKeys: String, CodingKey {
        case settings, cores, machineSgemmGflops = "machine_sgemm_gflops", configurations, linkModel = "link_model"
    }
}

/// Allreduce times of several sizes, for the link model (a calibration worker writes them).
public struct AllreduceTimings: Codable, Sendable {
    public var ranks: Int
    public var timings: [Timing]

    public struct Timing: Codable, Sendable {
        public var bytes: Double, seconds: Double
    }
}
