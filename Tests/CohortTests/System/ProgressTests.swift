import CohortLaunch
import Foundation
import Testing

extension SystemTests {
    /// What a person sees of a run between its epoch lines. On a terminal (a tmux session, its
    /// screen read back with `capture-pane`), also under `launch/train -n 2`, where rank 0's
    /// output is a pipe to mpirun: a live line, redrawn and then replaced by the epoch's line. In
    /// a log file: a plain line per interval and never a carriage return.
    @Suite(.serialized) struct ProgressTests {
        let scratch = ScratchDirectory("cohort-progress")

        /// 2 epochs of 200 steps of the CNN on synthetic data: a few seconds each in a debug build.
        func launchTrain(_ out: String, _ extra: [String] = []) -> [String] {
            [repositoryRoot.appendingPathComponent("launch/train").path, "-n", "2", "--model", "cnn",
             "--dataset", "synthetic", "--limit", "6400", "--test-limit", "640", "--batch-size", "32", "--epochs", "2",
             "--optimizer", "sgd", "--lr", "0.01", "--out", out] + extra
        }

        var environment: [String: String] {
            DataParallelTests.environment.merging(["COHORT_BINARY": CohortBinary.path]) { $1 }
        }

        @Test func aTerminalShowsALiveLineUnderMpirun() throws {
            let tmux = try #require(MPIRun.find("tmux"), "tmux is not installed (apt-get install tmux)")
            let server = ["-L", "cohort-progress-\(getpid())"]
            let variables = environment.map { "\($0)=\(quoted($1))" }.sorted().joined(separator: " ")
            let command = "env \(variables) bash " + launchTrain("\(scratch.path)/terminal").map(quoted).joined(separator: " ")
                + "; echo cohort-exit-$?; sleep 600"
            // tmux's commands through posix_spawn and waitpid (`BackgroundProcess`): Foundation's
            // Process never saw `new-session`'s client end once it had started the server.
            func run(_ arguments: [String]) -> (status: Int32?, stdout: String) {
                guard let process = try? BackgroundProcess([tmux] + server + arguments) else { return (nil, "") }
                return (process.wait(timeout: 30), process.stdout)
            }
            #expect(run(["new-session", "-d", "-x", "160", "-y", "40", command]).status == 0)
            defer { _ = run(["kill-server"]) }
            func screen() -> [Substring] { run(["capture-pane", "-p"]).stdout.split(separator: "\n") }
            // A live line: the step of steps, samples/s, the loss so far, the time left.
            var live: Substring = ""
            try waitFor("a live progress line", timeout: 240) {
                live = screen().first { $0.hasPrefix("epoch 1/2 [") } ?? ""
                return live.contains("/200") && live.contains("samples/s") && live.contains("loss")
                    && live.contains("ETA") && live.contains("(run ")
            }
            // Redrawn: a later step in the same place.
            try waitFor("the live line to move on", timeout: 120) {
                screen().contains { $0.hasPrefix("epoch ") && $0.contains(" [") && $0 != live }
            }
            try waitFor("the run to end", timeout: 300) { screen().contains { $0.hasPrefix("cohort-exit-") } }
            let end = screen()
            #expect(end.contains("cohort-exit-0"), "\(end.joined(separator: "\n"))")
            #expect(end.contains { $0.hasPrefix("epoch 1/2  train loss") } && end.contains { $0.hasPrefix("epoch 2/2  train loss") },
                    "\(end.joined(separator: "\n"))")
            // Every live line was replaced: none is left beside the epoch lines.
            #expect(!end.contains { $0.contains(" [#") || $0.contains(" [.") }, "\(end.joined(separator: "\n"))")
        }

        @Test func aLogFileGetsAPlainLinePerInterval() throws {
            let out = "\(scratch.path)/log"
            let job = try BackgroundProcess(["/bin/bash"] + launchTrain(out, ["--progress-every", "0.5"]),
                                            environment: environment)
            #expect(job.wait(timeout: 300) == 0, "\(job.stderr)")
            let log = try String(contentsOfFile: job.outPath, encoding: .utf8)
            #expect(!log.contains("\r") && !log.contains("\u{1B}"), "a carriage return or an escape in the log")
            let lines = log.split(separator: "\n")
            for epoch in 1...2 {
                let steps = lines.filter { $0.hasPrefix("epoch \(epoch)/2 step ") && $0.contains("samples/s") && $0.contains("ETA") }
                #expect(steps.count >= 2, "epoch \(epoch): \(steps.count) progress lines in\n\(log)")
            }
            #expect(lines.contains { $0.hasPrefix("epoch 2/2  train loss") }, "\(log)")
            // The first evaluation, of unknown length, says that it runs.
            #expect(lines.contains { $0.hasPrefix("epoch 1/2 evaluating 640 test images") }, "\(log)")
        }

        private func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    }
}
