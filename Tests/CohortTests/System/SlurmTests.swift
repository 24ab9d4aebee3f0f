import CohortBase
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// The Slurm scripts for real: a one-node Slurm (`cluster/slurm/local-slurm`: munged,
    /// slurmctld and slurmd from Debian's packages) runs `train.sbatch` with 2 tasks started by
    /// `srun --mpi=pmix`, and `sweep.sbatch` as a job array, then `cohort report`. When Slurm
    /// cannot be brought up, the test fails with local-slurm's reason.
    @Suite(.serialized) struct SlurmTests {
        let scratch = ScratchDirectory("cohort-slurm")

        @Test func trainAndASweepArrayRunUnderSlurm() throws {
            try #require(getuid() == 0, "Slurm's daemons run as root here; run the tests as root (as CI does)")
            let root = repositoryRoot.path, dir = scratch.path
            let sweepFile = "\(dir)/grid.toml"
            try Data("""
                name = "slurm"
                [train]
                model = "gru"
                hidden = 16
                dataset = "synthetic"
                limit = 320
                test-limit = 64
                batch-size = 32
                epochs = 2
                quiet = true
                [grid]
                lr = [0.1, 0.01]
                optimizer = ["adam", "adagrad"]

                """.utf8).write(to: URL(fileURLWithPath: sweepFile))
            let script = """
                set -e
                cd \(dir)
                sbatch --wait -n 2 --cpus-per-task=1 -o train.out \(root)/cluster/slurm/train.sbatch \\
                  --model gru --hidden 16 --dataset synthetic --limit 320 --test-limit 64 --batch-size 32 --epochs 2 --out train-run
                n=$("$COHORT_BINARY" sweep \(sweepFile) --count)
                sbatch --wait --array=0-$((n - 1)) -n 2 --cpus-per-task=1 -o 'sweep-%a.out' \\
                  \(root)/cluster/slurm/sweep.sbatch \(sweepFile) --out sweep
                "$COHORT_BINARY" report sweep
                """
            let result = try runProcess("\(root)/cluster/slurm/local-slurm", ["--", "/bin/bash", "-c", script],
                                        environment: ["COHORT_BINARY": CohortBinary.path], timeout: 600)
            let outputs = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".out") }
                .sorted().map { "\($0): " + ((try? String(contentsOfFile: "\(dir)/\($0)", encoding: .utf8)) ?? "") }
            #expect(result.status == 0, "\(result.stderr)\n\(outputs.joined(separator: "\n"))")
            #expect(try RunSummary.read(directory: "\(dir)/train-run")?.worldSize == 2, "train.sbatch: 2 ranks under srun")
            let runs = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/sweep/runs")
            #expect(runs.count == 4, "\(runs)")
            for run in runs { #expect(try RunSummary.read(directory: "\(dir)/sweep/runs/\(run)")?.worldSize == 2, "\(run)") }
            #expect(FileManager.default.fileExists(atPath: "\(dir)/sweep/report.md"))
            // local-slurm stops its daemons: none is left.
            let left = try runProcess("/usr/bin/pgrep", ["-f", "cohort-slurm\\."])
            #expect(left.stdout.isEmpty, "daemons left: \(left.stdout)")
        }
    }
}
