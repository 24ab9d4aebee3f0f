import ArgumentParser
import CohortBase
import CohortDistributed
import Foundation

/// Runs `body` as one rank of the job (MPI when launched by mpirun, else alone). An
/// error on one rank ends the whole job: other ranks may be waiting in a collective.
///
/// A bad setting, or a stop every rank decides at the same step (non-finite values, ranks
/// that drifted apart), is found by every rank alike: each prints it, and they leave
/// together (barrier, finalize), so none is killed before it has spoken. Anything found by
/// one rank alone (rank 0's run directory, a checkpoint) aborts the job. The exit code is
/// the error's (`CohortError.exitCode`), so a launcher knows whether a restart can help.
func runOnEveryRank(_ body: (Communicator) throws -> Void) throws {
    let communicator = try makeCommunicator()
    do {
        try body(communicator)
    } catch let error as CohortError where error.kind == .settings || error.kind == .stopped || communicator.size == 1 {
        let prefix = communicator.size > 1 ? "rank \(communicator.rank): " : ""
        sayError("Error: \(prefix)\(error)")
        try? communicator.barrier()
        communicator.finalize()
        Foundation.exit(error.exitCode)
    } catch {
        // One process passes other errors on to the command's own reporting.
        guard communicator.size > 1 else { throw error }
        sayError("Error: rank \(communicator.rank): \(error)")
        communicator.abort(code: (error as? CohortError)?.exitCode ?? 1)
    }
    communicator.finalize()
}

/// Errors of the commands that run in one process (sweep, report, visualize, scale, launch):
/// one line, and the error's exit code.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error as CohortError {
        sayError("Error: \(error)")
        throw ExitCode(error.exitCode)
    }
}

/// A settings error as swift-argument-parser reports one (usage, exit 64) from `validate()`.
func validating(_ body: () throws -> Void) throws {
    do { try body() } catch let error as CohortError {
        throw ValidationError(error.description)
    }
}

/// `"1, 2,4"` -> `[1, 2, 4]` (empty items skipped); nil if an item is not a `T`.
func commaSeparated<T: LosslessStringConvertible>(_ text: String) -> [T]? {
    var values: [T] = []
    for item in text.split(separator: ",") {
        guard let value = T(item.trimmingCharacters(in: .whitespaces)) else { return nil }
        values.append(value)
    }
    return values
}
