import CohortBase
import Foundation

/// Which hosts of a hostfile still answer, asked the way a job would reach them: for each
/// host, `mpirun` starts `/bin/true` there over the same TCP network (`Placement.hosts`),
/// which needs Open MPI's daemon on the host to start and call back. A host whose node or
/// link is down does not answer within `timeout`.
public struct HostProbe {
    public var iface: String?
    public var timeout = 20.0

    public init(iface: String?) { self.iface = iface }

    /// What one host's probe gave.
    public enum Answer: Equatable, Sendable {
        case answered
        /// `mpirun` ended with `status` before `timeout` (a name that does not resolve, no
        /// route to the host, a daemon that cannot start or call back).
        case failed(status: Int32)
        /// `mpirun` was still waiting for the host after `timeout`.
        case silent

        /// Why a host with this answer does not count as answering.
        func why(timeout: Double) -> String {
            switch self {
            case .answered: return "it answered"
            case .failed(let status): return "mpirun could not start /bin/true there: exit \(status)"
            case .silent: return "mpirun could not start /bin/true there within \(Format.figure(timeout)) s"
            }
        }
    }

    /// `host (why)` for each host of `unanswered`, for a message that names them.
    public func describe(_ unanswered: [(host: String, answer: Answer)]) -> String {
        unanswered.map { "\($0.host) (\($0.answer.why(timeout: timeout)))" }.joined(separator: ", ")
    }

    /// The hosts of `hostfile` that answer, in file order, and those that do not with what
    /// their probe gave. All are asked at once, so this takes the slowest host's time (at
    /// most `timeout`), not the sum.
    public func ask(_ hostfile: Hostfile) throws -> (answering: Hostfile, unanswered: [(host: String, answer: Answer)]) {
        var probes: [Probe] = []
        defer { for probe in probes { probe.directory.remove() } }
        for (index, entry) in hostfile.hosts.enumerated() {
            probes.append(try Probe(host: entry.host, iface: iface, name: "cohort-probe-\(getpid())-\(index + 1)"))
        }
        let deadline = monotonicSeconds() + timeout
        while probes.contains(where: \.process.isRunning) && monotonicSeconds() < deadline { usleep(50_000) }
        let answers = probes.map { $0.answer() }
        return (Hostfile(hosts: zip(hostfile.hosts, answers).filter { $0.1 == .answered }.map(\.0)),
                zip(probes, answers).filter { $0.1 != .answered }.map { ($0.0.host, $0.1) })
    }

    /// `/bin/true` started on `host` over MPI's network, as a job of its own. The probes start
    /// at once, so each has its own TMPDIR (`MPITemporaryDirectory`).
    private struct Probe {
        let host: String
        let directory: MPITemporaryDirectory
        let process = Process()

        init(host: String, iface: String?, name: String) throws {
            self.host = host
            directory = try MPITemporaryDirectory(name: name)
            let command = try Placement.hosts([(host, 1)], iface: iface).command(ranks: 1, arguments: [], binary: "/bin/true")
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.environment = ProcessInfo.processInfo.environment.merging(directory.environment) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// Ends the probe if it still runs, and says what it gave.
        func answer() -> Answer {
            guard !process.isRunning else {
                process.terminate()
                usleep(500_000)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                return .silent
            }
            return process.terminationStatus == 0 ? .answered : .failed(status: process.terminationStatus)
        }
    }
}
