import CohortBase
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// Who may write a run directory: never a run with other settings, a run with checkpoints
    /// only with `--resume`, and one writer at a time (docs/reliability.md, "The run directory").
    /// The runs are ReliabilityTests' CNN on synthetic data.
    @Suite(.serialized) struct RunDirectoryTests {
        let scratch = ScratchDirectory("cohort-run-directory")

        @Test func anExistingRunIsNotOverwrittenByAnother() throws {
            let out = "\(scratch.path)/existing"
            #expect(try CohortBinary.run(ReliabilityTests.arguments(out, epochs: 1)).status == 0)
            let before = try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors"))
            // Other settings: refused, nothing touched.
            let other = try CohortBinary.run(ReliabilityTests.arguments(out).map { $0 == "0.001" ? "0.002" : $0 })
            #expect(other.status != 0 && other.stderr.contains("holds a run with other settings"), "\(other.stderr)")
            // The same settings: the checkpoints would be lost, so only --resume continues.
            let same = try CohortBinary.run(ReliabilityTests.arguments(out, epochs: 1))
            #expect(same.status != 0 && same.stderr.contains("add --resume"), "\(same.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors")) == before)
            // A resumed run keeps its settings.
            let changed = try CohortBinary.run(["train", "--resume", out, "--lr", "0.5"])
            #expect(changed.status != 0 && changed.stderr.contains("a resumed run keeps its settings"), "\(changed.stderr)")
            let missing = try CohortBinary.run(["train", "--resume", "\(scratch.path)/nothing"])
            #expect(missing.status != 0 && missing.stderr.contains("config.json"), "\(missing.stderr)")
        }

        /// A run directory has one writer: a second `cohort train` on the same `--out` is refused
        /// at once (exit 64) naming the first's pid, whatever its settings; once the first is
        /// killed with SIGKILL, the kernel has dropped its lock and the next run takes the
        /// directory (here: resumes it).
        @Test func aRunDirectoryHasOneWriter() throws {
            let out = "\(scratch.path)/one-writer"
            let first = try BackgroundProcess([CohortBinary.path] + ReliabilityTests.arguments(out, extra: ["--checkpoint-steps", "2"]))
            try waitFor("the first checkpoint") { !Checkpoint.list(run: out).isEmpty }
            for seed in ["0", "1"] {
                let second = try CohortBinary.run(ReliabilityTests.arguments(out, extra: ["--seed", seed]))
                #expect(second.status == 64, "\(second.stderr)")
                #expect(second.stderr.contains("--out \(out) is in use by another run (pid \(first.pid) on "), "\(second.stderr)")
            }
            // Refused without waiting for the lock: the first (8 epochs) still runs.
            #expect(first.wait(timeout: 0) == nil, "the first run ended before the second writers were refused")
            kill(first.pid, SIGKILL)
            #expect(first.wait(timeout: 10) != nil)
            let resumed = try CohortBinary.run(["train", "--resume", out, "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try RunSummary.read(directory: out) != nil)
        }
    }
}
