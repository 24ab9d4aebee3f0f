import ArgumentParser
import CohortBase
import CohortSweep

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write SWEEP_DIR/report.md from a sweep's runs (also done at the end of a sweep).")

    @Argument(help: "The sweep directory.")
    var sweepDirectory: String

    func run() throws {
        try reportingErrors {
            say("report written to \(try SweepReport(directory: sweepDirectory).write())")
        }
    }
}
