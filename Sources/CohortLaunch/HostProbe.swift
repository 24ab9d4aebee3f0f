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

    /// The hosts of `hostfile` that answer, in file order. All are asked at once, so the
    /// answer takes the slowest host's time (at most `timeout`), not the sum.
    public func answering(_ hostfile: Hostfile) throws -> Hostfile {
        let probes = try hostfile.hosts.map { try start($0.host) }
        let deadline = monotonicSeconds() + timeout
        while probes.contains(where: \.isRunning) && monotonicSeconds() < deadline { usleep(50_000) }
        let answers = probes.map { process -> Bool in
            guard !process.isRunning else {
                process.terminate()
                usleep(500_000)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
                return false
            }
            return process.terminationStatus == 0
        }
        return Hostfile(hosts: zip(hostfile.hosts, answers).filter(\.1).map(\.0))
    }

    /// `/bin/true` started on `host` over MPI's network, as a job of its own.
    private func start(_ host: String) throws -> Process {
        let command = try Placement.hosts([(host, 1)], iface: iface).command(ranks: 1, arguments: [], binary: "/bin/true")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}
