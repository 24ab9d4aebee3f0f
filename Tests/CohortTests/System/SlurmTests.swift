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

        /// `scontrol requeue` of a running array task: Slurm ends it (SIGTERM to the sweep and
        /// its ranks, which checkpoint and stop) and starts it again, and the task continues its
        /// point from the checkpoint. Every point then has the parameters of an uninterrupted
        /// sweep on 2 local ranks, bit for bit (2 ranks sum in the same tree under srun and mpirun).
        @Test func aRequeuedArrayTaskContinuesItsPoint() throws {
            try #require(getuid() == 0, "Slurm's daemons run as root here; run the tests as root (as CI does)")
            let root = repositoryRoot.path, dir = scratch.path
            let sweepFile = "\(dir)/requeue.toml"
            try Data("""
                name = "requeue"
                [train]
                model = "cnn"
                dataset = "synthetic"
                limit = 2560
                test-limit = 64
                batch-size = 32
                epochs = 3
                optimizer = "sgd"
                checkpoint-steps = 10
                quiet = true
                [grid]
                lr = [0.01, 0.005]

                """.utf8).write(to: URL(fileURLWithPath: sweepFile))
            let reference = try runProcess(CohortBinary.path, ["sweep", sweepFile, "--out", "\(dir)/reference", "--ranks", "2",
                                                               "--threads", "1", "--no-visualize"],
                                           environment: DataParallelTests.environment, timeout: 600)
            #expect(reference.status == 0, "\(reference.stderr)")
            // Slurm holds a requeued job for 2 minutes (its begin time); the test lets it start at once.
            let script = """
                set -e
                cd \(dir)
                out=$(sbatch --parsable --array=0-1 -n 2 --cpus-per-task=1 --open-mode=append -o 'requeue-%a.out' \\
                  \(root)/cluster/slurm/sweep.sbatch \(sweepFile) --out requeued)
                job=${out%%;*}
                # The two tasks take turns on the node's 2 CPUs: the second starts when the first ends.
                waited=0
                until ls requeued/runs/1_lr-0.005/checkpoints/step-* >/dev/null 2>&1; do
                  [ "$waited" -lt 6000 ] || { echo "point 2 wrote no checkpoint in 600 s" >&2; exit 1; }
                  sleep 0.1; waited=$((waited + 1))
                done
                scontrol requeue "${job}_1"
                for i in $(seq 600); do [ "$(squeue -h -j "${job}_1" -o %T)" = PENDING ] && break; sleep 0.1; done
                scontrol update JobId="${job}_1" StartTime=now
                for i in $(seq 3000); do [ -z "$(squeue -h -j "$job")" ] && break; sleep 0.2; done
                """
            let result = try runProcess("\(root)/cluster/slurm/local-slurm", ["--", "/bin/bash", "-c", script],
                                        environment: ["COHORT_BINARY": CohortBinary.path], timeout: 1500)
            let log = (try? String(contentsOfFile: "\(dir)/requeue-1.out", encoding: .utf8)) ?? ""
            #expect(result.status == 0, "\(result.stderr)\n\(log)")
            #expect(log.contains("DUE TO JOB REQUEUE") && log.contains("point 2/2 stopped (exit 0); it continues from its checkpoint"),
                    "\(log)")
            #expect(log.contains("point 2/2: lr=0.005 (2 rank(s)), continuing from step-"), "\(log)")
            for run in ["0_lr-0.01", "1_lr-0.005"] {
                let a = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/requeued/runs/\(run)/model.safetensors"))
                let b = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/reference/runs/\(run)/model.safetensors"))
                #expect(a == b, "\(run): other parameters than the uninterrupted sweep's")
            }
        }
    }
}
