import Foundation

/// Whether a person watches this process's standard output on a terminal.
///
/// Under mpirun a rank's output goes to mpirun, which copies it to its own, so the rank
/// cannot see the terminal itself (Open MPI even gives ranks a pseudo-terminal of its own
/// when mpirun writes to a file): `cohort launch`, started on one, says so to the ranks in
/// `variable` (passed to other nodes with the job).
public enum Terminal {
    /// `1` when the job was started on a terminal.
    public static let variable = "COHORT_TERMINAL"

    /// A process started by an MPI launcher believes only what its launcher said; any other
    /// looks at its standard output.
    public static func watchesOutput(underLauncher: Bool) -> Bool {
        underLauncher ? ProcessInfo.processInfo.environment[variable] == "1" : isatty(STDOUT_FILENO) != 0
    }

    /// Before starting a job (which inherits this process's environment): tells its ranks
    /// whether this process's standard output is a terminal.
    public static func tellJob() {
        if isatty(STDOUT_FILENO) != 0 { setenv(variable, "1", 1) } else { unsetenv(variable) }
    }
}
