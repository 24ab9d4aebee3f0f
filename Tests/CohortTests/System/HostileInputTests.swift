import CohortBase
@testable import CohortBench
import Foundation
import Testing

extension SystemTests {
    /// Values in flags and files that once reached a trapping conversion or allocation: each
    /// now gives a one-line error and a non-zero exit, in whichever build runs the tests.
    @Suite struct HostileInputTests {
        let scratch = ScratchDirectory("cohort-hostile")

        /// Runs the binary and expects a clean refusal: exit 1 or 64 with an error message, no crash.
        func expectRefused(_ arguments: [String], mentioning fragment: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try CohortBinary.run(arguments)
            #expect(result.status == 1 || result.status == 64, "exit \(result.status): \(result.stderr)",
                    sourceLocation: sourceLocation)
            #expect(result.stderr.hasPrefix("Error: ") && result.stderr.contains(fragment), "\(result.stderr)",
                    sourceLocation: sourceLocation)
        }

        /// A run directory with a config.json made by training, then `edit` applied to its text.
        func run(_ name: String, edit: (String) -> String = { $0 }) throws -> String {
            let out = "\(scratch.path)/\(name)"
            let result = try CohortBinary.run(["train", "--model", "gru", "--hidden", "8", "--dataset", "synthetic",
                                               "--limit", "64", "--test-limit", "16", "--batch-size", "32", "--quiet",
                                               "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            let config = "\(out)/config.json"
            try edit(try String(contentsOfFile: config, encoding: .utf8)).write(toFile: config, atomically: true, encoding: .utf8)
            return out
        }

        @Test func safetensorsShapesThatOverflowOrAreNegative() throws {
            let out = try run("safetensors")
            for shape in ["[4611686018427387904,4]", "[-1,16]", "[9223372036854775807,9223372036854775807]"] {
                let header = #"{"rnn.weight_ih_l0":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,16]}}"#
                var data = Data()
                withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
                data.append(contentsOf: Array(header.utf8) + [UInt8](repeating: 0, count: 16))
                let path = "\(out)/hostile.safetensors"
                try data.write(to: URL(fileURLWithPath: path))
                try expectRefused(["visualize", "--checkpoint", path], mentioning: "hostile.safetensors")
            }
        }

        @Test(arguments: [("\"hidden\" : 8", "\"hidden\" : 0", "--hidden must be positive"),
                          ("\"width\" : 1", "\"width\" : -3", "--width must be in 1...64"),
                          ("\"hidden\" : 8", "\"hidden\" : 1e300", "config.json"),
                          ("\"seed\" : 0", "\"seed\" : -1", "config.json")])
        func configValuesOutOfRange(from: String, to: String, message: String) throws {
            let out = try run("config-\(abs(to.hashValue))") { $0.replacingOccurrences(of: from, with: to) }
            try expectRefused(["visualize", "--run", out], mentioning: message)
            try expectRefused(["train", "--resume", out, "--epochs", "2"], mentioning: message)
        }

        @Test func flagsBeyondWhatTheirNumbersHold() throws {
            try expectRefused(["train", "--bucket-mb", "1e13", "--out", "\(scratch.path)/x"], mentioning: "--bucket-mb")
            try expectRefused(["train", "--timeout", "-1", "--out", "\(scratch.path)/x"], mentioning: "--timeout")
            try expectRefused(["bench", "--bucket-mb", "1e13", "--out", "\(scratch.path)/b"], mentioning: "--bucket-mb")
            let bench = "\(scratch.path)/bench.json"
            let settings = JSONFile.line(BenchSettings())
            let configuration = #"{"ranks": 1, "threads_per_rank": 1, "global_batch": 64, "steps": 30, "seconds": 1.5, "#
                + #""phase_seconds": {"forward": 1}, "model_gflop_per_sample": 1e300, "bucket_bytes": [1048576], "#
                + #""speedup": 1, "efficiency": 1, "machine_sgemm_gflops": 1, "fraction_of_sgemm": 1}"#
            let text = #"{"settings": \#(settings), "cores": 2, "machine_sgemm_gflops": 1, "configurations": [\#(configuration)]}"#
            try Data(text.utf8).write(to: URL(fileURLWithPath: bench))
            let scaled = try CohortBinary.run(["scale", "--bench", bench, "--out", "\(scratch.path)/scale"])
            #expect(scaled.status == 0, "a huge FLOP count is only a number: \(scaled.stderr)")
            try expectRefused(["scale", "--bench", bench, "--per-rank-batch", "99999999999999", "--out", "\(scratch.path)/s"],
                              mentioning: "--per-rank-batch")
            try Data(text.replacingOccurrences(of: #""ranks": 1"#, with: #""ranks": 1e30"#).utf8)
                .write(to: URL(fileURLWithPath: bench))
            try expectRefused(["scale", "--bench", bench, "--out", "\(scratch.path)/s"], mentioning: "bench.json")
        }

        @Test func sweepJSONWithRanksNoNumberHolds() throws {
            let sweep = "\(scratch.path)/sweep"
            try FileManager.default.createDirectory(atPath: sweep, withIntermediateDirectories: true)
            for ranks in ["1e30", "-2", "0"] {
                let text = #"{"name": "s", "ranks": \#(ranks), "fixed": [], "grid": [{"flag": "lr", "values": ["0.1"]}]}"#
                try Data(text.utf8).write(to: URL(fileURLWithPath: "\(sweep)/sweep.json"))
                try expectRefused(["report", sweep], mentioning: "sweep.json")
            }
        }
    }
}
