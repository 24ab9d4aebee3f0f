import CohortBase
@testable import CohortBench
import CohortDistributed
@testable import CohortLaunch
import CohortReporting
@testable import CohortRun
@testable import CohortSweep
@testable import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// What real clusters do to a run: a rank killed, a signal, a damaged checkpoint, values
    /// that stop being finite, ranks that drift apart; and the TensorBoard file users open.
    @Suite(.serialized) struct ReliabilityTests {
        let scratch = ScratchDirectory("cohort-reliability")
        static let environment = DataParallelTests.environment

        /// A CNN run on synthetic data long enough to be interrupted (8 epochs of 20 steps),
        /// with a checkpoint every 7 steps.
        static func arguments(_ out: String, epochs: Int = 8, extra: [String] = []) -> [String] {
            ["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "640", "--test-limit", "64", "--batch-size", "32",
             "--epochs", "\(epochs)", "--optimizer", "adam", "--lr", "0.001", "--checkpoint-steps", "7", "--quiet", "--out", out]
                + extra
        }

        func mpirun(_ ranks: Int, _ arguments: [String]) throws -> [String] {
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            return [mpirun] + MPIRun.localArguments(ranks: ranks) + [CohortBinary.path] + arguments
        }

        /// Runs `cohort ARGUMENTS` on `ranks` ranks to the end, with `extra` added to the environment.
        func runUnderMPI(_ ranks: Int, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ProcessOutcome {
            let command = try mpirun(ranks, arguments)
            return try runProcess(command[0], Array(command.dropFirst()), environment: Self.environment.merging(extra) { $1 })
        }

        /// The uninterrupted run every interrupted one must end equal to (made once per test).
        func reference(ranks: Int = 2) throws -> String {
            let out = "\(scratch.path)/reference"
            let result = try runUnderMPI(ranks, Self.arguments(out))
            #expect(result.status == 0, "\(result.stderr)")
            return out
        }

        func sameParameters(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let x = try Data(contentsOf: URL(fileURLWithPath: "\(a)/model.safetensors"))
            let y = try Data(contentsOf: URL(fileURLWithPath: "\(b)/model.safetensors"))
            #expect(x == y, "\(a) and \(b) end with different parameters", sourceLocation: sourceLocation)
        }

        @Test func aKilledRankEndsTheJobAndResumeFinishesTheSame() throws {
            let reference = try reference()
            let out = "\(scratch.path)/killed"
            let job = try BackgroundProcess(try mpirun(2, Self.arguments(out)), environment: Self.environment)
            // Mid-epoch: once the first checkpoint exists, kill rank 1 outright.
            try waitFor("a checkpoint") { !Checkpoint.list(run: out).isEmpty }
            let rank1 = try #require(job.descendant(withEnvironment: "OMPI_COMM_WORLD_RANK=1"), "rank 1 not found")
            let processes = job.liveDescendants()
            #expect(processes.count >= 2, "the ranks (and any orted) below mpirun: \(processes)")
            kill(rank1, SIGKILL)
            let start = Date()
            let status = job.wait(timeout: 30)
            #expect(status != nil, "the job was still running 30 s after rank 1 died")
            #expect(Date().timeIntervalSince(start) < 30)
            #expect(status != 0)
            #expect(job.stderr.contains("rank 1"), "the message names the rank: \(job.stderr)")
            let left = survivors(of: processes)
            #expect(left.isEmpty, "processes of the job are left: \(left)")
            #expect(!FileManager.default.fileExists(atPath: "\(out)/summary.json"))

            let result = try runUnderMPI(2, ["train", "--resume", out, "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            try sameParameters(out, reference)
            #expect(try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").count == 9)
        }

        @Test func sigtermCheckpointsAndResumeFinishesTheSame() throws {
            let reference = try reference()
            // SIGTERM to mpirun (forwarded to every rank), and SIGTERM to rank 1 alone.
            for target in ["mpirun", "rank 1"] {
                let out = "\(scratch.path)/term-\(target.replacingOccurrences(of: " ", with: ""))"
                let job = try BackgroundProcess(try mpirun(2, Self.arguments(out, extra: ["--checkpoint-steps", "1000"])),
                                                environment: Self.environment)
                try waitFor("the first epoch") { FileManager.default.fileExists(atPath: "\(out)/metrics.csv") }
                let pid = target == "mpirun" ? job.pid : try #require(job.descendant(withEnvironment: "OMPI_COMM_WORLD_RANK=1"))
                let processes = job.liveDescendants()
                kill(pid, SIGTERM)
                let status = job.wait(timeout: 10)
                #expect(status != nil, "\(target): still running 10 s after SIGTERM")
                // The ranks exit 0. mpirun, when it was signalled itself, may still report 1 for the
                // job (it marks a signalled job as aborted unless every rank has exited first).
                #expect(status == 0 || (target == "mpirun" && status == 1), "\(target): exit \(String(describing: status)) \(job.stderr)")
                let left = survivors(of: processes)
                #expect(left.isEmpty, "\(target): processes of the job are left: \(left)")
                // (A signalled mpirun stops relaying the ranks' output, so the notice is checked
                // only when a rank got the signal.)
                if target != "mpirun" { #expect(job.stderr.contains("stopped by a signal at "), "\(target): \(job.stderr)") }
                // The newest checkpoint is the one written at the signal: mid-epoch (20 steps an
                // epoch), or at the epoch's end when the signal came at its last step.
                let newest = try Checkpoint.load("\(Checkpoint.directory(run: out))/\(try #require(Checkpoint.list(run: out).first))")
                #expect(newest.position.step > 0 || job.stderr.contains("at the end of epoch \(newest.position.epoch)")
                        || target == "mpirun", "\(target): no checkpoint at the signal")
                let result = try runUnderMPI(2, ["train", "--resume", out, "--quiet"])
                #expect(result.status == 0, "\(result.stderr)")
                try sameParameters(out, reference)
            }
        }

        /// With one step an epoch every step is an epoch's last: a signal there lets the epoch end
        /// (its metrics row and checkpoint), stops at that checkpoint, and the resume finishes
        /// with the uninterrupted run's parameters and figures.
        @Test func aSignalAtAnEpochsLastStepStopsAtTheEpochsEnd() throws {
            let flags = { (out: String) in
                ["train", "--model", "gru", "--hidden", "16", "--dataset", "synthetic", "--limit", "32", "--test-limit", "32",
                 "--batch-size", "32", "--epochs", "400", "--optimizer", "sgd", "--lr", "0.01", "--quiet", "--out", out]
            }
            let reference = "\(scratch.path)/one-step-reference", out = "\(scratch.path)/one-step"
            #expect(try CohortBinary.run(flags(reference)).status == 0)
            let job = try BackgroundProcess([CohortBinary.path] + flags(out))
            try waitFor("the first epoch") { FileManager.default.fileExists(atPath: "\(out)/metrics.csv") }
            kill(job.pid, SIGTERM)
            #expect(job.wait(timeout: 10) == 0, "\(job.stderr)")
            #expect(job.stderr.contains("stopped by a signal at the end of epoch"), "\(job.stderr)")
            let newest = try Checkpoint.load("\(Checkpoint.directory(run: out))/\(try #require(Checkpoint.list(run: out).first))")
            #expect(newest.position.step == 0 && newest.position.epoch > 0 && newest.position.epoch < 400, "\(newest.position)")
            let resumed = try CohortBinary.run(["train", "--resume", out, "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            try sameParameters(out, reference)
            let rows = { (run: String) in
                try String(contentsOfFile: "\(run)/metrics.csv", encoding: .utf8).split(separator: "\n")
                    .map { $0.split(separator: ",").prefix(5).joined(separator: ",") }
            }
            #expect(try rows(out) == rows(reference))
        }

        @Test func damagedCheckpointsAreRefusedAndTheOneBeforeIsUsed() throws {
            // One process, 2 epochs: checkpoints at steps 35 and 40 are kept (epoch ends at 20, 40).
            let run = "\(scratch.path)/damaged"
            #expect(try CohortBinary.run(Self.arguments(run, epochs: 2)).status == 0)
            let names = Checkpoint.list(run: run)
            #expect(names == ["step-000000040", "step-000000035"])
            let newest = "\(Checkpoint.directory(run: run))/\(names[0])", older = "\(Checkpoint.directory(run: run))/\(names[1])"
            #expect(try Checkpoint.load(newest).position.epoch == 2)

            // One flipped byte in the parameters: the checksum finds it.
            var model = try Data(contentsOf: URL(fileURLWithPath: "\(newest)/model.safetensors"))
            model[model.count - 5] ^= 0x10
            try model.write(to: URL(fileURLWithPath: "\(newest)/model.safetensors"))
            expectError(.failure) { _ = try Checkpoint.load(newest) }
            var warnings: [String] = []
            let fallback = try Checkpoint.latest(run: run) { warnings.append($0) }
            #expect(fallback.path == older && fallback.position.epoch == 1 && fallback.position.step == 15)
            #expect(warnings.count == 1 && warnings[0].contains("does not match its checksum"), "\(warnings)")
            // The damaged one is moved aside, out of the newest two the run keeps.
            let root = Checkpoint.directory(run: run)
            #expect(FileManager.default.fileExists(atPath: "\(root)/damaged-step-000000040"))
            #expect(Checkpoint.list(run: run) == ["step-000000035"])

            // Cut short: refused too, and with nothing left, resume has nothing to start from.
            let optimizer = try Data(contentsOf: URL(fileURLWithPath: "\(older)/optimizer.safetensors"))
            try optimizer.prefix(optimizer.count / 2).write(to: URL(fileURLWithPath: "\(older)/optimizer.safetensors"))
            expectError(.failure) { _ = try Checkpoint.load(older) }
            #expect {
                try Checkpoint.latest(run: run) { _ in }
            } throws: { error in
                "\(error)".contains("every checkpoint is damaged")
            }
            // A changed digit in state.json ("step": 15 -> 14): refused by the state's own checksum.
            let aside = "\(root)/damaged-step-000000035"
            try optimizer.write(to: URL(fileURLWithPath: "\(aside)/optimizer.safetensors"))
            #expect(try Checkpoint.load(aside).position.step == 15)
            var state = try Data(contentsOf: URL(fileURLWithPath: "\(aside)/state.json"))
            let at = try #require(state.firstIndex(of: UInt8(ascii: "5")))
            state[at] = UInt8(ascii: "4")
            try state.write(to: URL(fileURLWithPath: "\(aside)/state.json"))
            expectError(.failure) { _ = try Checkpoint.load(aside) }
        }

        @Test func aResumeFromTheCheckpointBeforeADamagedOneEndsTheSame() throws {
            let reference = "\(scratch.path)/one-rank", run = "\(scratch.path)/fallback"
            #expect(try CohortBinary.run(Self.arguments(reference, epochs: 3)).status == 0)
            // Stop after 2 epochs, damage the newest checkpoint, resume to 3 epochs.
            #expect(try CohortBinary.run(Self.arguments(run, epochs: 2)).status == 0)
            let newest = "\(Checkpoint.directory(run: run))/\(Checkpoint.list(run: run)[0])"
            try Data("{}".utf8).write(to: URL(fileURLWithPath: "\(newest)/state.json"))
            let result = try CohortBinary.run(["train", "--resume", run, "--epochs", "3", "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("step-000000040 is unusable (state.json: no format)"),
                    "the fallback is reported: \(result.stderr)")
            try sameParameters(run, reference)
            // Losses and accuracies per epoch are the same as the uninterrupted run's.
            let columns = { (path: String) throws -> [String] in
                try String(contentsOfFile: "\(path)/metrics.csv", encoding: .utf8).split(separator: "\n")
                    .map { $0.split(separator: ",").prefix(5).joined(separator: ",") }
            }
            #expect(try columns(run) == columns(reference))
        }

        /// Stopped mid-epoch on 1 rank in 2 replicas, resumed on 2 ranks with the same global
        /// batch: the same slices summed in the same tree (DataParallelTests), so the parameters
        /// of an uninterrupted 1-rank run, bit for bit.
        @Test func resumeOnAnotherWorldSize() throws {
            let sgd = { (out: String, epochs: Int) -> [String] in
                ["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "640", "--test-limit", "64", "--batch-size", "32",
                 "--epochs", "\(epochs)", "--optimizer", "sgd", "--lr", "0.002", "--momentum", "0.9", "--checkpoint-steps", "7",
                 "--threads", "2", "--replicas", "2", "--quiet", "--out", out]
            }
            let reference = "\(scratch.path)/sgd-reference", run = "\(scratch.path)/sgd-resized"
            #expect(try CohortBinary.run(sgd(reference, 2)).status == 0)
            #expect(try CohortBinary.run(sgd(run, 1)).status == 0)
            // Keep only the mid-epoch checkpoint (step 14 of 20), as if the run had stopped there.
            try FileManager.default.removeItem(atPath: "\(Checkpoint.directory(run: run))/step-000000020")
            #expect(Checkpoint.list(run: run) == ["step-000000014"])
            let result = try runUnderMPI(2, ["train", "--resume", run, "--epochs", "2", "--threads", "1", "--replicas", "1",
                                             "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(!result.stderr.contains("up to float rounding"), "the resume is exact and says nothing: \(result.stderr)")
            try DataParallelTests().expectSameBits(run, reference)
            let summary = try #require(try RunSummary.read(directory: run))
            #expect(summary.worldSize == 2 && summary.epochs == 2)
        }

        /// `launch/train --restarts 1`: a rank killed mid-run, the job started again from its
        /// checkpoint, the same end as an uninterrupted run; SIGTERM to the script: exit 0.
        @Test func launchTrainRestartsAfterAFailureAndStopsOnASignal() throws {
            let reference = try reference()
            let script = repositoryRoot.appendingPathComponent("launch/train").path
            let environment = Self.environment.merging(["COHORT_BINARY": CohortBinary.path]) { $1 }
            let out = "\(scratch.path)/restarted"
            let job = try BackgroundProcess(["/bin/bash", script, "-n", "2", "--restarts", "1"] + Array(Self.arguments(out).dropFirst()),
                                            environment: environment)
            try waitFor("a checkpoint") { !Checkpoint.list(run: out).isEmpty }
            let rank1 = try #require(job.descendant(withEnvironment: "OMPI_COMM_WORLD_RANK=1"), "rank 1 not found")
            kill(rank1, SIGKILL)
            #expect(job.wait(timeout: 300) == 0, "\(job.stderr)")
            #expect(job.stderr.contains("restart 1 of 1"), "\(job.stderr)")
            try sameParameters(out, reference)

            let stopped = "\(scratch.path)/stopped"
            let second = try BackgroundProcess(["/bin/bash", script, "-n", "2"] + Array(Self.arguments(stopped).dropFirst()),
                                               environment: environment)
            try waitFor("the first epoch") { FileManager.default.fileExists(atPath: "\(stopped)/metrics.csv") }
            kill(second.pid, SIGTERM)
            #expect(second.wait(timeout: 10) == 0, "\(second.stderr)")
            #expect(second.stderr.contains("stopped by a signal at epoch"), "\(second.stderr)")
        }

        @Test func aResumeThatDoesNotFitIsRefused() throws {
            let run = "\(scratch.path)/refused"
            #expect(try CohortBinary.run(Self.arguments(run, epochs: 2)).status == 0)
            // Fewer epochs than the checkpoint has already done: refused, exit 64 (nothing to retry).
            let fewer = try CohortBinary.run(["train", "--resume", run, "--epochs", "1", "--quiet"])
            #expect(fewer.status == 64 && fewer.stderr.contains("past --epochs 1"), "\(fewer.status) \(fewer.stderr)")
            // Another training set (here: fewer samples, so fewer steps per epoch) is refused as well.
            let config = "\(run)/config.json"
            let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "\"limit\" : 640", with: "\"limit\" : 320")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            let smaller = try CohortBinary.run(["train", "--resume", run, "--epochs", "3", "--quiet"])
            #expect(smaller.status == 64 && smaller.stderr.contains("20 steps per epoch, this run's data gives 10"), "\(smaller.stderr)")
        }

        @Test func nonFiniteValuesStopTheRunOrAreSkipped() throws {
            let out = "\(scratch.path)/nan"
            let blowUp = ["train", "--model", "cnn", "--dataset", "synthetic", "--limit", "320", "--test-limit", "32",
                          "--batch-size", "32", "--optimizer", "sgd", "--lr", "1e30", "--quiet"]
            let stopped = try CohortBinary.run(blowUp + ["--out", out])
            #expect(stopped.status == 3)
            #expect(stopped.stderr.contains("non-finite loss or gradients at epoch 1, step 2"), "\(stopped.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(out)/summary.json"))
            let skipped = try CohortBinary.run(blowUp + ["--out", "\(out)-skip", "--on-nan", "skip"])
            #expect(skipped.status == 0, "\(skipped.stderr)")
            let summary = try #require(try RunSummary.read(directory: "\(out)-skip"))
            #expect(summary.skippedSteps == 9, "every step after the first: \(JSONFile.line(summary))")
        }

        @Test func ranksThatDriftApartStopTheRun() throws {
            let out = "\(scratch.path)/drift"
            let result = try runUnderMPI(2, Self.arguments(out, extra: ["--check-every", "3"]),
                                         environment: ["COHORT_FAULT_DRIFT": "1:5"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("ranks drifted apart at epoch 1, step 6: the parameters of rank(s) 1 differ"),
                    "\(result.stderr)")
        }

        /// The event file, read with an independent reader: every record's CRC-32C checks,
        /// and the scalars per epoch are metrics.csv's (to float precision).
        @Test func tensorBoardEventsHoldTheMetrics() throws {
            let out = "\(scratch.path)/tensorboard"
            #expect(try CohortBinary.run(Self.arguments(out, epochs: 3)).status == 0)
            let file = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasPrefix("events.out.tfevents.") })
            let events = try readEvents(Data(contentsOf: URL(fileURLWithPath: "\(out)/\(file)")))
            #expect(events.first?.fileVersion == "brain.Event:2")
            let rows = try String(contentsOfFile: "\(out)/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",").map { Double($0)! } }
            let scalarEvents = events.filter { $0.scalars["loss/train"] != nil }
            #expect(scalarEvents.map(\.step) == [1, 2, 3])
            // The rate of every step (20 an epoch), at global steps from 1.
            let rates = events.filter { $0.scalars["lr/step"] != nil }
            #expect(rates.map(\.step) == Array(1...60) && rates.allSatisfy { $0.scalars["lr/step"] == 0.001 })
            for (event, row) in zip(scalarEvents, rows) {
                for (tag, column) in [("loss/train", 1), ("accuracy/train", 2), ("loss/test", 3), ("accuracy/test", 4),
                                      ("throughput/samples_per_s", 6)] {
                    let value = try #require(event.scalars[tag], "\(tag) missing")
                    #expect(value == Float(row[column]), "\(tag) at epoch \(event.step)")
                }
                #expect(event.scalars["lr"] == 0.001)
            }
        }

        @Test func crc32cKnownAnswers() {
            // RFC 3720, appendix B.4: 32 bytes of zeros, and the string "123456789".
            #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
            #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        }
    }
}
