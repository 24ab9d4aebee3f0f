import CohortBase
@testable import CohortLaunch
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// A rank that stops answering (SIGSTOP: as a hung rank or a frozen node) would keep the
    /// others waiting in a collective for ever; the collective timeout ends the job, names
    /// the rank, and `launch/train --restarts` continues from the last checkpoint. A rank that
    /// is only slow is named by the straggler report.
    @Suite(.serialized) struct WatchdogTests {
        let scratch = ScratchDirectory("cohort-watchdog")
        static let timeout = 8.0

        /// A CNN run of 3 epochs of 20 steps with a checkpoint every 5 steps (SGD: exact
        /// across a restart whatever is reduced in which order).
        func arguments(_ out: String) -> [String] {
            ["--model", "cnn", "--dataset", "synthetic", "--limit", "640", "--test-limit", "64", "--batch-size", "32",
             "--epochs", "3", "--optimizer", "sgd", "--lr", "0.01", "--checkpoint-steps", "5",
             "--timeout", "\(Self.timeout)", "--quiet", "--out", out]
        }

        func mpirun(_ out: String) throws -> [String] {
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            return [mpirun] + MPIRun.localArguments(ranks: 2) + [CohortBinary.path, "train"] + arguments(out)
        }

        /// Stops rank 1 of `job` once `out` has a checkpoint; returns when it did and the job's processes.
        func stopRankOne(of job: BackgroundProcess, run out: String) throws -> (Date, [Int32]) {
            try waitFor("a checkpoint") { !Checkpoint.list(run: out).isEmpty }
            let rank1 = try #require(job.descendant(withEnvironment: "OMPI_COMM_WORLD_RANK=1"), "rank 1 not found")
            let processes = job.liveDescendants()
            kill(rank1, SIGSTOP)
            return (Date(), processes)
        }

        @Test func aStoppedRankEndsTheJobWithinTheTimeout() throws {
            let out = "\(scratch.path)/stopped"
            let job = try BackgroundProcess(try mpirun(out), environment: DataParallelTests.environment)
            let (stoppedAt, processes) = try stopRankOne(of: job, run: out)
            let status = job.wait(timeout: Self.timeout + 30)
            defer { for pid in processes { kill(pid, SIGCONT); kill(pid, SIGKILL) } }
            #expect(status != nil, "the job was still running \(Self.timeout + 30) s after rank 1 stopped")
            #expect(Date().timeIntervalSince(stoppedAt) < Self.timeout + 10, "ended only after \(Date().timeIntervalSince(stoppedAt)) s")
            #expect(status == CohortError(.timedOut, "").exitCode, "exit \(String(describing: status)): \(job.stderr)")
            #expect(job.stderr.contains("waited longer than --timeout 8 s"), "\(job.stderr)")
            #expect(job.stderr.contains("rank(s) 1 never reached it"), "\(job.stderr)")
            #expect(job.stderr.contains(" at epoch "), "the message names the step: \(job.stderr)")
            let left = survivors(of: processes)
            #expect(left.isEmpty, "processes of the job are left: \(left)")
        }

        @Test func launchTrainRestartsAfterATimeoutAndFinishesTheSame() throws {
            let reference = "\(scratch.path)/reference"
            let whole = try runProcess("/bin/bash", [repositoryRoot.appendingPathComponent("launch/train").path, "-n", "2"]
                                       + arguments(reference),
                                       environment: DataParallelTests.environment.merging(["COHORT_BINARY": CohortBinary.path]) { $1 })
            #expect(whole.status == 0, "\(whole.stderr)")
            let out = "\(scratch.path)/restarted"
            let job = try BackgroundProcess(["/bin/bash", repositoryRoot.appendingPathComponent("launch/train").path,
                                             "-n", "2", "--restarts", "1"] + arguments(out),
                                            environment: DataParallelTests.environment.merging(["COHORT_BINARY": CohortBinary.path]) { $1 })
            let (_, processes) = try stopRankOne(of: job, run: out)
            defer { for pid in processes { kill(pid, SIGCONT); kill(pid, SIGKILL) } }
            #expect(job.wait(timeout: 300) == 0, "\(job.stderr)")
            #expect(job.stderr.contains("restart 1 of 1"), "\(job.stderr)")
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(reference)/model.safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors"))
            #expect(a == b, "the restarted run ends with other parameters")
        }

        /// A rank slowed on purpose (COHORT_FAULT_SLOW) is named while the run goes on, and
        /// summary.json gives every rank's compute per step and wait share. The delay, 50 ms a
        /// step, stays well above what other tests running beside this one add to rank 0's steps.
        @Test func aSlowRankIsNamedByTheStragglerReport() throws {
            let out = "\(scratch.path)/straggler"
            let command = [try #require(MPIRun.executable)] + MPIRun.localArguments(ranks: 2)
                + [CohortBinary.path, "train", "--model", "gru", "--hidden", "16", "--dataset", "synthetic",
                   "--limit", "3200", "--test-limit", "32", "--batch-size", "32", "--out", out]
            let result = try runProcess(command[0], Array(command.dropFirst()),
                                        environment: DataParallelTests.environment.merging(["COHORT_FAULT_SLOW": "1:0.05"]) { $1 })
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("rank 1 is a straggler"), "\(result.stderr)")
            #expect(!result.stderr.contains("rank 0 is a straggler"))
            let summary = try #require(try RunSummary.read(directory: out))
            #expect(summary.ranks.map(\.rank) == [0, 1] && summary.ranks.allSatisfy { $0.steps == 100 })
            #expect(summary.ranks[1].computeSecondsPerStep > summary.ranks[0].computeSecondsPerStep + 0.04, "\(summary.ranks)")
            #expect(summary.ranks[0].waitShare > summary.ranks[1].waitShare, "the fast rank waits: \(summary.ranks)")
        }
    }
}
