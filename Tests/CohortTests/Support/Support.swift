import CZlib
import CohortBase
import CohortData
import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Foundation
import Testing

/// Shared helpers of the tests: PyTorch fixtures, comparisons, finite differences.

/// The repository's top directory (for its scripts and sweep files).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// Writes `bytes` gzip-compressed to `path`.
func writeGzip(_ bytes: [UInt8], to path: String) {
    let file = gzopen(path, "wb")!
    _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
}

/// A tensor from `Fixtures/torch_fixtures.json` (written by `make_torch_fixtures.py`).
struct FixtureTensor {
    let shape: [Int]
    let data: [Float]
    init(_ any: Any?) {
        let dict = any as! [String: Any]
        shape = dict["shape"] as! [Int]
        data = (dict["data"] as! [Double]).map(Float.init)
    }
}

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// Writes the small user data of `make_user_data.py` (an image folder, arrays, archives) into `directory`.
    static func makeUserData(in directory: String) throws {
        let script = Self.directory.appendingPathComponent("make_user_data.py").path
        let made = try runProcess("/usr/bin/python3", [script, directory], timeout: 120)
        try #require(made.status == 0, "make_user_data.py failed (apt-get install python3-pil python3-numpy): \(made.stderr)")
    }

    nonisolated(unsafe) static let torch: [String: Any] = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("torch_fixtures.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func torchCase(_ name: String) -> [String: Any] { torch[name] as! [String: Any] }

    /// `make_transformer_fixtures.py`'s cases: the transformers' layers, models and steps.
    nonisolated(unsafe) static let transformer: [String: Any] = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("transformer_fixtures.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func transformerCase(_ name: String) -> [String: Any] { transformer[name] as! [String: Any] }
}

/// Copies a fixture's tensors into `network`'s parameters by name, `torchName` mapping each of the
/// network's names to the fixture's; every tensor must be there with its shape.
func loadFixtureParameters(_ params: [String: Any], into network: Network, torchName: (String) -> String = { $0 },
                           sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(network.tensors.count == params.count, "tensor count", sourceLocation: sourceLocation)
    for t in network.tensors {
        let key = torchName(t.name)
        guard params[key] != nil else {
            Issue.record("the fixture has no tensor \(key)", sourceLocation: sourceLocation)
            continue
        }
        let p = FixtureTensor(params[key])
        #expect(p.shape == t.shape, "shape of \(key)", sourceLocation: sourceLocation)
        (network.parameters.pointer + t.offset).update(from: p.data, count: min(t.count, p.data.count))
    }
}

/// Compares every parameter gradient of `network` with the fixture's, by name.
func expectFixtureGradients(_ grads: [String: Any], of network: Network, torchName: (String) -> String = { $0 },
                            atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    for t in network.tensors {
        let key = torchName(t.name)
        expectClose(Array(network.gradients.array[t.offset..<(t.offset + t.count)]), FixtureTensor(grads[key]).data,
                    atol: atol, rtol: rtol, "\(what) d\(key)", sourceLocation: sourceLocation)
    }
}

/// Asserts `|a - b| <= atol + rtol·|b|` elementwise, reporting the worst element.
func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
    guard a.count == b.count else { return }
    var worst = 0, worstExcess: Float = -.infinity
    for i in 0..<a.count {
        let excess = abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if !(excess <= worstExcess) || excess.isNaN { worstExcess = excess.isNaN ? .infinity : excess; worst = i }
    }
    #expect(worstExcess <= 0, "\(what)[\(worst)] = \(a[worst]), expected \(b[worst])", sourceLocation: sourceLocation)
}

extension Trait where Self == ConditionTrait {
    /// For tests of oneDNN's bf16 kernels: left out, with the reason in the test output, where
    /// oneDNN has none (a CPU without AVX-512, or oneDNN limited below it). What users get
    /// there is tested everywhere: `CommandLineTests.bf16IsRefusedWhereOneDNNHasNoBF16Kernels`.
    static var needsBF16Kernels: Self {
        .enabled(if: BF16Support.current != .unavailable, Comment(rawValue: BF16Support.missing ?? ""))
    }
}

func array(_ p: UnsafePointer<Float>, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

/// Each value rounded to the nearest bfloat16 (as a float).
func bf16Rounded(_ values: [Float]) -> [Float] { values.map { BFloat16.float(BFloat16.rounded($0)) } }

/// A bf16 kernel's result against the definition in double: on operands that are bf16 values
/// already (`exact`) equal to float accumulation, within 1e-5 of the largest expected value;
/// on others off by bf16's rounding (2^-9 of a value), more than 1e-4 and less than 2e-2 of it.
func expectBF16Agreement(_ name: String, _ value: [Float], _ expected: [Double], exact: Bool,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    let scale = expected.map(abs).max() ?? 0
    let worst = zip(value, expected).map { abs(Double($0) - $1) }.max() ?? 0
    if exact {
        #expect(worst <= 1e-5 * scale, "\(name) on bf16 values: worst difference \(worst), scale \(scale)",
                sourceLocation: sourceLocation)
    } else {
        #expect(worst > 1e-4 * scale && worst < 2e-2 * scale,
                "\(name) on float values: worst difference \(worst) is not bf16's rounding (scale \(scale))",
                sourceLocation: sourceLocation)
    }
}

/// Copies fixture parameters into a network by their PyTorch names.
func loadParameters(_ params: [String: Any], into network: Network) {
    for t in network.tensors {
        let fixture = FixtureTensor(params[t.name])
        #expect(fixture.shape == t.shape, "shape of \(t.name)")
        (network.parameters.pointer + t.offset).update(from: fixture.data, count: t.count)
    }
}

/// Central finite differences of a scalar function of the network's parameters and its
/// input, compared with the analytic gradients.
///
/// `objective` runs forward and returns the scalar in double precision;
/// `gradient` runs forward and backward and returns dObjective/dx (the parameter
/// gradients are read from `network.gradients`). At most `samples` coordinates of each
/// are checked, chosen by a fixed stream.
func checkFiniteDifferences(network: Network, input: FloatBuffer, epsilon: Float = 1e-2,
                            atol: Double = 2e-3, rtol: Double = 2e-2, samples: Int = 60,
                            objective: () -> Double, gradient: () -> [Float]?,
                            _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    network.zeroGradients()
    let inputGradient = gradient()
    let parameterGradient = network.gradients.array
    var rng = SplitMix64(seed: 99)
    func numeric(_ p: UnsafeMutablePointer<Float>) -> Double {
        let saved = p.pointee
        p.pointee = saved + epsilon
        let up = objective()
        p.pointee = saved - epsilon
        let down = objective()
        p.pointee = saved
        return (up - down) / Double(2 * epsilon)
    }
    func check(_ count: Int, _ pointer: UnsafeMutablePointer<Float>, _ analytic: [Float], _ label: String) {
        let indices = count <= samples ? Array(0..<count) : (0..<samples).map { _ in rng.nextIndex(below: count) }
        for i in indices {
            let n = numeric(pointer + i), a = Double(analytic[i])
            #expect(abs(n - a) <= atol + rtol * max(abs(n), abs(a)),
                    "\(what): d/d\(label)[\(i)] analytic \(a), numeric \(n)", sourceLocation: sourceLocation)
        }
    }
    for t in network.tensors {
        check(t.count, network.parameters.pointer + t.offset, Array(parameterGradient[t.offset..<(t.offset + t.count)]), t.name)
    }
    if let inputGradient {
        check(input.count, input.pointer, inputGradient, "input")
    }
}

/// Random values with a fixed seed, kept away from 0 by at least `margin` (for ReLU's kink).
func randomValues(_ count: Int, seed: UInt64, margin: Float = 0) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let v = rng.uniform(-1, 1)
        return v >= 0 ? v + margin : v - margin
    }
}

/// Writes a test file, failing the test if it cannot.
func put(_ path: String, _ contents: Data, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(FileManager.default.createFile(atPath: path, contents: contents), "cannot write \(path)",
            sourceLocation: sourceLocation)
}

struct ProcessOutcome {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
}

/// Runs a program to completion (or kills it after `timeout` seconds), capturing its
/// output through files so that a hung child cannot block the test on a pipe.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                timeout: Double = 600) throws -> ProcessOutcome {
    let scratch = NSTemporaryDirectory() + "cohort-proc-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: scratch + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: scratch + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: scratch + ".out")
        try? FileManager.default.removeItem(atPath: scratch + ".err")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    // Closed here: a test that runs thousands of commands (a screen polled) must not pile up
    // descriptors, which every child started afterwards would inherit.
    let out = FileHandle(forWritingAtPath: scratch + ".out"), err = FileHandle(forWritingAtPath: scratch + ".err")
    defer { try? out?.close(); try? err?.close() }
    process.standardOutput = out
    process.standardError = err
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    let timedOut = finished.wait(timeout: .now() + timeout) == .timedOut
    if timedOut {
        process.terminate()
        finished.wait()
    }
    let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
    return ProcessOutcome(status: process.terminationStatus, stdout: read(scratch + ".out"),
                          stderr: read(scratch + ".err"), timedOut: timedOut)
}

/// A temporary directory that lives as long as one test (its suite instance) and is
/// removed with everything in it afterwards.
final class ScratchDirectory: Sendable {
    let path: String

    init(_ prefix: String) {
        path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The suites that start processes: the `cohort` binary, `mpirun` jobs, network namespaces.
/// `swift test --skip SystemTests` runs the others, the fast unit tests, alone.
@Suite enum SystemTests {}

/// Expects `body` to throw Cohort's error of `kind`.
func expectError(_ kind: CohortError.Kind, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a \(kind) error\(comment.map { ": \($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let error as CohortError {
        #expect(error.kind == kind, "\(error)\(comment.map { ": \($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a CohortError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

/// A JSON file as Foundation reads it, for checks of the files' keys as other tools see them.
func jsonObject(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
}

extension ImageDataset {
    /// Every sample's bytes, `[count, C, H, W]` (a set of pixels in memory or mapped).
    var pixels: [UInt8] { (0..<count).flatMap { try! values($0).map { UInt8($0) } } }
}
