import CohortBase
import Foundation

/// Where the ranks of one job go, and so the command that starts it. This is the one place
/// that knows how `mpirun` and `srun` are called: `cohort launch` (behind `launch/train`,
/// `cluster/train` and the Slurm scripts), sweeps and benchmark workers all start jobs here.
public enum Placement: Sendable {
    /// This machine: the binary alone for 1 rank, else `mpirun` with one binding per rank
    /// (`MPIRun.localArguments`).
    case local
    /// A launcher command in front of the binary, e.g. `srun --mpi=pmix` inside a Slurm
    /// allocation, which decides the ranks itself.
    case launcher([String])
    /// Inside a Slurm allocation: `srun --mpi=pmix` (one rank per task), or Open MPI's
    /// `mpirun`, which reads the allocation from Slurm.
    case slurm(SlurmLauncher)
    /// Slots on named hosts (`host:count` each), over TCP, restricted to `iface` if given.
    case hosts([(host: String, slots: Int)], iface: String?)
    /// Every slot of an Open MPI hostfile (or `perNode` ranks on each of its nodes), over TCP.
    case hostfile(path: String, perNode: Int?, iface: String?)

    public enum SlurmLauncher: String, CaseIterable, Sendable {
        case srun, mpirun
    }

    /// The command that starts `BINARY ARGUMENTS` with `ranks` ranks (nil: as many as the
    /// placement has: a hostfile's slots, a Slurm allocation's tasks). One rank here runs the
    /// binary alone unless `mpirunForOneRank`.
    public func command(ranks: Int?, arguments: [String], binary: String = MPIRun.currentExecutable,
                        mpirunForOneRank: Bool = false) throws -> [String] {
        let program = [binary] + arguments
        let forwarded = MPIRun.forwardedEnvironment.flatMap { ["-x", $0] }
        switch self {
        case .local:
            guard let ranks, ranks > 1 || mpirunForOneRank else { return program }
            return [try MPIRun.mpirun()] + MPIRun.localArguments(ranks: ranks) + program
        case .launcher(let prefix):
            guard let name = prefix.first, let path = MPIRun.find(name) else {
                throw CohortError.failure("launcher \(prefix.first ?? "(empty)"): not found on PATH")
            }
            return [path] + prefix.dropFirst() + program
        case .slurm(.srun):
            return ["srun", "--mpi=pmix", "--cpu-bind=cores"] + (ranks.map { ["--ntasks", "\($0)"] } ?? []) + program
        case .slurm(.mpirun):
            return ["mpirun"] + (ranks.map { ["-np", "\($0)"] } ?? []) + MPIRun.rootArguments
                + ["--bind-to", "none", "--mca", "btl", "tcp,self,vader"] + MPIRun.lostNodeArguments + forwarded + program
        case .hosts(let hosts, let iface):
            guard let ranks else { throw CohortError.settings("a group of hosts needs a rank count") }
            return [try MPIRun.mpirun()] + MPIRun.rankArguments(ranks: ranks)
                + ["--host", hosts.map { "\($0.host):\($0.slots)" }.joined(separator: ",")]
                + MPIRun.tcpArguments(iface: iface) + forwarded + program
        case .hostfile(let path, let perNode, let iface):
            let count = ranks.map { ["-np", "\($0)"] } ?? []
            let spread = perNode.map { ["--npernode", "\($0)", "--oversubscribe"] } ?? []
            return [try MPIRun.mpirun()] + count + MPIRun.rootArguments + ["--hostfile", path] + spread
                + MPIRun.tcpArguments(iface: iface) + forwarded + program
        }
    }

    /// Starts `cohort ARGUMENTS` on `ranks` ranks, sharing this process's output, with
    /// `environment` added to this process's.
    public func start(ranks: Int, arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let command = try command(ranks: ranks, arguments: arguments)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try MPIRun.path(of: command[0]))
        process.arguments = Array(command.dropFirst())
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        do { try process.run() } catch {
            throw CohortError.failure("cannot start \(command[0]): \(error.localizedDescription)")
        }
        return process
    }
}
