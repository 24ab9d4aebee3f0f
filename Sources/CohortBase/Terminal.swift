import Foundation

/// Whether a person watches this process's standard output on a terminal.
///
/// Under mpirun a rank's output is a pipe to mpirun, which copies it to its own, so the rank
/// cannot see the terminal itself: `cohort launch`, started on one, says so to the ranks in
/// `variable` (passed to other nodes with the job).
public enum Terminal {
    /// `1` when the job was started on a terminal.
    public static let variable = "COHORT_TERMINAL"

    /// This process's standard output is a terminal, or its launcher's was.
    public static var watchesOutput: Bool {
        isatty(STDOUT_FILENO) != 0 || ProcessInfo.processInfo.environment[variable] == "1"
    }

    /// Before starting a job (which inherits this process's environment): tells its ranks
    /// whether this process's standard output is a terminal.
    public static func tellJob() {
        if isatty(STDOUT_FILENO) != 0 { setenv(variable, "1", 1) }
    }
}
