import ArgumentParser
import CohortRun

/// `cohort`: the command line. Each command has its file beside this one; they parse flags
/// and call the layers below.
@main
struct Cohort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Data-parallel neural-network training over MPI.",
        version: cohortVersion,
        subcommands: [Train.self, Evaluate.self, Predict.self, Generate.self, DataCommand.self, Bench.self, Scale.self, Sweep.self, Report.self,
                      Visualize.self, Launch.self])
}
