import CohortBase
import Foundation

/// Open MPI's `mpirun` and its flags, as every placement uses them.
public enum MPIRun {
    public static var executable: String? { find("mpirun") }

    /// The path of `mpirun`, or an error saying how to install it.
    static func mpirun() throws -> String {
        guard let path = executable else {
            throw CohortError.failure("more than one rank needs mpirun, which is not on PATH (apt-get install openmpi-bin libopenmpi-dev)")
        }
        return path
    }

    /// `name` as a path: itself if it has a slash, else the first executable of that name on PATH.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `find(name)`, or an error naming what is missing.
    public static func path(of name: String) throws -> String {
        guard let path = find(name) else { throw CohortError.failure("\(name): not found on PATH") }
        return path
    }

    /// `--allow-run-as-root` for root (Open MPI refuses root without it).
    static var rootArguments: [String] { getuid() == 0 ? ["--allow-run-as-root"] : [] }

    /// `-np N` and the root flag: what every mpirun command here starts with.
    public static func rankArguments(ranks: Int) -> [String] { ["-np", "\(ranks)"] + rootArguments }

    /// N ranks on this machine: cores/N cores each, bound (`--map-by slot:PE=k --bind-to core`),
    /// when N divides the cores; unbound otherwise; `--oversubscribe` beyond the cores.
    public static func localArguments(ranks: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> [String] {
        var args = rankArguments(ranks: ranks)
        if ranks > cores {
            args += ["--oversubscribe", "--bind-to", "none"]
        } else if cores % ranks == 0 {
            args += ["--map-by", "slot:PE=\(cores / ranks)", "--bind-to", "core"]
        } else {
            args += ["--bind-to", "none"]
        }
        return args
    }

    /// Ranks on other nodes: TCP between nodes (shared memory within one), no binding (the
    /// nodes' cores are not known here), and MPI's traffic on `iface` (an interface or a
    /// subnet) for both the byte transfer layer and the out-of-band channel, if given.
    static func tcpArguments(iface: String?) -> [String] {
        ["--mca", "btl", "tcp,self", "--bind-to", "none"] + lostNodeArguments
            + (iface.map { ["--mca", "btl_tcp_if_include", $0, "--mca", "oob_tcp_if_include", $0] } ?? [])
    }

    /// Seconds of silence after which mpirun gives up a node's daemon: TCP keepalive on
    /// Open MPI's out-of-band channel, idle `time`, then `probes` probes `interval` apart.
    public static let lostNodeKeepalive = (time: 10, interval: 5, probes: 3)
    public static var lostNodeSeconds: Int { lostNodeKeepalive.time + lostNodeKeepalive.interval * lostNodeKeepalive.probes }

    /// A node whose link goes down answers nothing, and its TCP connections neither close nor
    /// fail; Open MPI's defaults notice after 300 s + 9 x 20 s. Worse, once the collective
    /// timeout has ended the job, mpirun waits for every daemon's goodbye and the lost one's
    /// connection then has data in flight, which disables keepalive: mpirun waits for TCP's
    /// retransmissions to give up (about 15 minutes). With short keepalive, mpirun notices the
    /// lost daemon first (`lostNodeSeconds`, below the collective timeout) and ends the job
    /// itself, without waiting for it.
    static var lostNodeArguments: [String] {
        ["--mca", "oob_tcp_keepalive_time", "\(lostNodeKeepalive.time)",
         "--mca", "oob_tcp_keepalive_intvl", "\(lostNodeKeepalive.interval)",
         "--mca", "oob_tcp_keepalive_probes", "\(lostNodeKeepalive.probes)"]
    }

    /// Variables passed on to ranks on other nodes (`-x NAME`): where the data is, and whether
    /// the job was started on a terminal (`Terminal`).
    static var forwardedEnvironment: [String] {
        ["COHORT_DATA", Terminal.variable].filter { ProcessInfo.processInfo.environment[$0] != nil }
    }

    /// Open MPI settings, as environment, that make its allreduce the ring (the algorithm the
    /// scaling model describes), and ranks yield their core while they wait (a test cluster's
    /// nodes may share cores, and a spinning rank slows its neighbour).
    public static let ringAllreduceEnvironment = [
        "OMPI_MCA_coll_tuned_use_dynamic_rules": "1", "OMPI_MCA_coll_tuned_allreduce_algorithm": "4",
        "OMPI_MCA_mpi_yield_when_idle": "1",
    ]

    /// The path of the running executable, to start more copies of it.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
