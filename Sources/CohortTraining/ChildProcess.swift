import CohortDistributed
import Foundation

/// Starts this same `cohort` executable with `arguments` as a job of `ranks` ranks: directly
/// for 1 rank, under `mpirun` (with `MPIRun`'s root, oversubscription and binding choices)
/// for more. The child shares this process's standard output and error.
func startCohort(ranks: Int, arguments: [String]) throws -> Process {
    let process = Process()
    let command = [MPIRun.currentExecutable] + arguments
    if ranks == 1 {
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
    } else {
        guard let mpirun = MPIRun.executable else {
            throw RunError("\(ranks) ranks need mpirun, which is not on PATH (apt-get install openmpi-bin libopenmpi-dev)")
        }
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments = MPIRun.arguments(ranks: ranks) + command
    }
    do { try process.run() } catch {
        throw RunError("cannot start \(process.executableURL?.path ?? "?"): \(error.localizedDescription)")
    }
    return process
}
