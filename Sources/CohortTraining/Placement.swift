import CohortDistributed
import Foundation

/// Where the ranks of one run go, and so how its job is started.
public enum Placement: Sendable {
    /// This machine: the binary alone for 1 rank, else `mpirun` with `MPIRun`'s choices.
    case local
    /// A launcher command in front of the binary, e.g. `srun --mpi=pmix` inside a Slurm
    /// allocation, which decides the ranks itself.
    case launcher([String])
    /// Slots on named hosts (`host:count` each), over TCP, restricted to `iface` if given.
    case hosts([(host: String, slots: Int)], iface: String?)

    /// The command that starts `cohort ARGUMENTS` with `ranks` ranks here.
    func command(ranks: Int, arguments: [String]) throws -> [String] {
        let binary = [MPIRun.currentExecutable] + arguments
        switch self {
        case .local:
            guard ranks > 1 else { return binary }
            return [try Self.mpirun(ranks)] + MPIRun.arguments(ranks: ranks) + binary
        case .launcher(let prefix):
            guard let program = prefix.first, let path = MPIRun.find(program) else {
                throw RunError("launcher \(prefix.first ?? "(empty)"): not found on PATH")
            }
            return [path] + prefix.dropFirst() + binary
        case .hosts(let hosts, let iface):
            var args = [try Self.mpirun(ranks)] + MPIRun.rankArguments(ranks: ranks)
                + ["--host", hosts.map { "\($0.host):\($0.slots)" }.joined(separator: ","),
                   "--mca", "btl", "tcp,self", "--bind-to", "none"]
            if let iface { args += ["--mca", "btl_tcp_if_include", iface, "--mca", "oob_tcp_if_include", iface] }
            return args + binary
        }
    }

    /// Starts `cohort ARGUMENTS` on `ranks` ranks, sharing this process's output, with
    /// `environment` added to this process's.
    func start(ranks: Int, arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let command = try command(ranks: ranks, arguments: arguments)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        do { try process.run() } catch {
            throw RunError("cannot start \(command[0]): \(error.localizedDescription)")
        }
        return process
    }

    static func mpirun(_ ranks: Int) throws -> String {
        guard let path = MPIRun.executable else {
            throw RunError("\(ranks) ranks need mpirun, which is not on PATH (apt-get install openmpi-bin libopenmpi-dev)")
        }
        return path
    }
}

/// An Open MPI hostfile: `host [slots=N]` per line, `#` comments.
public struct Hostfile: Sendable {
    public let hosts: [(host: String, slots: Int)]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SettingsError("--hostfile \(path): cannot read it")
        }
        var hosts: [(String, Int)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let host = words.first else { continue }
            var slots = 1
            for word in words.dropFirst() {
                let pair = word.split(separator: "=")
                if pair.count == 2, pair[0] == "slots", let n = Int(pair[1]), n > 0 { slots = n; continue }
                if pair.count == 2, pair[0] == "max_slots" { continue }
                throw SettingsError("--hostfile \(path):\(number + 1): expected 'host slots=N', got '\(raw)'")
            }
            hosts.append((String(host), slots))
        }
        guard !hosts.isEmpty else { throw SettingsError("--hostfile \(path): no hosts") }
        self.hosts = hosts
    }

    /// Slots over all hosts.
    public var slotCount: Int { hosts.map(\.slots).reduce(0, +) }

    /// Disjoint groups of `ranks` slots each, filled host by host in file order (a group
    /// may span hosts); the slots left over, fewer than `ranks`, go unused.
    public func groups(of ranks: Int) -> [[(host: String, slots: Int)]] {
        var groups: [[(host: String, slots: Int)]] = [], current: [(host: String, slots: Int)] = []
        var need = ranks
        for (host, slots) in hosts {
            var free = slots
            while free > 0 {
                let take = min(free, need)
                current.append((host, take))
                free -= take; need -= take
                if need == 0 { groups.append(current); current = []; need = ranks }
            }
        }
        return groups
    }

    /// One placement per group of `groups(of: ranks)`; an error when the slots do not hold one.
    public func placements(ranks: Int, iface: String?) throws -> [Placement] {
        let groups = groups(of: ranks)
        guard !groups.isEmpty else { throw SettingsError("--ranks \(ranks): the hostfile has only \(slotCount) slots") }
        return groups.map { .hosts($0, iface: iface) }
    }
}
