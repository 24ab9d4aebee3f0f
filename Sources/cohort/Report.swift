import ArgumentParser
import CohortBase
import CohortSweep

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write SWEEP_DIR/report.md from a sweep's runs (also done at the end of a sweep).")

    @Argument(help: "The sweep directory.")
    var sweepDirectory: String
    @Option(help: ArgumentHelp("A reference's best figures per grid point (JSON, see docs/sweeps.md#reference-files): "
                               + "the report sets them beside the sweep's, with the differences.", valueName: "file"))
    var reference: String?

    func run() throws {
        try reportingErrors {
            say("report written to \(try SweepReport(directory: sweepDirectory, referenceFile: reference).write())")
        }
    }
}
