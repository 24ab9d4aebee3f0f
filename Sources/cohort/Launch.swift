import ArgumentParser
import CohortBase
import CohortLaunch
import Foundation

extension Placement.SlurmLauncher: ExpressibleByArgument {}

/// `cohort launch`: starts `cohort COMMAND ...` as an MPI job. The one place that builds the
/// command line of `mpirun` or `srun`: `launch/train`, `cluster/train` and the Slurm scripts
/// all call it.
struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start `cohort COMMAND ...` as an MPI job: on this machine, on a hostfile's nodes, or under Slurm.",
        discussion: """
        On this machine, N ranks each get cores/N cores of their own when N divides the cores \
        (--map-by slot:PE=k --bind-to core), no binding otherwise, and --oversubscribe beyond \
        the cores. With --hostfile, one rank per slot (or --per-node K per node) over TCP, \
        MPI's traffic kept on --iface. With --slurm, srun --mpi=pmix (one rank per task) or \
        Open MPI's mpirun inside the allocation. --allow-run-as-root is added for root, and \
        COHORT_DATA is passed on to other nodes, as is COHORT_TERMINAL=1 when this command runs \
        on a terminal (so that rank 0 draws its live progress line). The job replaces this process.
        """)

    @Option(name: [.customShort("n"), .customLong("ranks")], help: "Ranks on this machine (default: one per core).")
    var ranks: Int?
    @Option(help: "An Open MPI hostfile: one rank per slot, over TCP.")
    var hostfile: String?
    @Option(help: "With --hostfile: this many ranks on each node.")
    var perNode: Int?
    @Option(help: "With --hostfile: keep MPI's TCP traffic on this interface or subnet.")
    var iface: String?
    @Option(help: "Inside a Slurm allocation: start the ranks with srun (one per task) or Open MPI's mpirun.")
    var slurm: Placement.SlurmLauncher?
    @Flag(help: "Print the command instead of running it.")
    var dryRun = false
    @Option(help: ArgumentHelp("With --hostfile: start no job, but write to FILE the hosts that still answer (each asked by "
                               + "starting /bin/true there over MPI's network), failing when fewer than --min-nodes do.",
                               valueName: "file"))
    var probeTo: String?
    @Option(help: "With --probe-to: the fewest nodes that must answer.")
    var minNodes = 1
    @Argument(parsing: .postTerminator, help: "After `--`: the cohort command and its flags, e.g. `-- train --model cnn ...`.")
    var command: [String] = []

    var placement: Placement {
        if let slurm { return .slurm(slurm) }
        if let hostfile { return .hostfile(path: hostfile, perNode: perNode, iface: iface) }
        return .local
    }

    func validate() throws {
        if let ranks, !(1...(1 << 20)).contains(ranks) { throw ValidationError("--ranks must be in 1...2^20, got \(ranks)") }
        if let perNode, !(1...(1 << 20)).contains(perNode) {
            throw ValidationError("--per-node must be in 1...2^20, got \(perNode)")
        }
        if hostfile != nil && slurm != nil { throw ValidationError("give --hostfile or --slurm, not both") }
        if hostfile == nil && (perNode != nil || iface != nil) { throw ValidationError("--per-node and --iface go with --hostfile") }
        if probeTo != nil && hostfile == nil { throw ValidationError("--probe-to goes with --hostfile") }
        guard (1...(1 << 20)).contains(minNodes) else { throw ValidationError("--min-nodes must be in 1...2^20, got \(minNodes)") }
        guard !command.isEmpty || probeTo != nil else {
            throw ValidationError("give the cohort command to run, e.g. `-- train --model cnn`")
        }
    }

    func run() throws {
        try reportingErrors {
            let arguments = command
            if let probeTo, let hostfile { return try probe(Hostfile(path: hostfile), writingTo: probeTo) }
            if let hostfile, !dryRun { try checkEveryNodeAnswers(Hostfile(path: hostfile)) }
            let count = hostfile == nil && slurm == nil ? ranks ?? ProcessInfo.processInfo.activeProcessorCount : ranks
            Terminal.tellJob()
            // Even one rank goes through mpirun: it binds the rank as it would bind N.
            let words = try placement.command(ranks: count, arguments: arguments, mpirunForOneRank: true)
            warnIfTimeoutBelowLostNodeDetection()
            if dryRun {
                say(words.map(shellQuoted).joined(separator: " "))
                return
            }
            let program = try MPIRun.path(of: words[0])
            let cWords = words.map { strdup($0) } + [nil]
            execv(program, cWords)
            throw CohortError.failure("cannot start \(program): \(String(cString: strerror(errno)))")
        }
    }
}

extension Launch {
    /// Across nodes, a collective timeout that fires before Open MPI has noticed a lost node
    /// leaves mpirun waiting for the node (`MPIRun.lostNodeArguments`).
    func warnIfTimeoutBelowLostNodeDetection() {
        guard hostfile != nil || slurm == .mpirun, command.first == "train",
              let given = lastValue(of: "--timeout", in: command), let timeout = Double(given),
              timeout > 0, timeout <= Double(MPIRun.lostNodeSeconds) else { return }
        sayError("cohort launch: --timeout \(given) s is not longer than the \(MPIRun.lostNodeSeconds) s in which Open MPI "
            + "notices a lost node: if a node's link goes down, mpirun may wait for it for many minutes (see docs/reliability.md)")
    }

    /// Before a job across nodes: every node of the hostfile answers, or the job does not
    /// start and the error names those that do not (instead of Open MPI's page of text, or
    /// its wait for a node that never connects back).
    func checkEveryNodeAnswers(_ hostfile: Hostfile) throws {
        let probe = HostProbe(iface: iface)
        let unanswered = try probe.ask(hostfile).unanswered
        guard unanswered.isEmpty else {
            throw CohortError.failure("\(unanswered.count) of \(hostfile.hosts.count) node(s) of \(self.hostfile ?? "the hostfile") "
                + "do not answer: \(probe.describe(unanswered)); no job was started")
        }
    }

    /// Writes the hosts of `hostfile` that still answer to `path`, saying which were dropped.
    func probe(_ hostfile: Hostfile, writingTo path: String) throws {
        let probe = HostProbe(iface: iface)
        let (answering, unanswered) = try probe.ask(hostfile)
        sayError("cohort launch: \(answering.hosts.count) of \(hostfile.hosts.count) node(s) answer"
            + (unanswered.isEmpty ? "" : "; dropping \(probe.describe(unanswered))"))
        guard answering.hosts.count >= minNodes else {
            throw CohortError.failure("only \(answering.hosts.count) node(s) answer, fewer than --min-nodes \(minNodes)")
        }
        try writeAtomically(answering.text, to: path)
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-./:=@%+,".contains($0)) }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// The value of the last `NAME VALUE` or `NAME=VALUE` among `arguments`.
func lastValue(of name: String, in arguments: [String]) -> String? {
    var value: String?
    for (index, word) in arguments.enumerated() {
        if word == name, index + 1 < arguments.count { value = arguments[index + 1] }
        if word.hasPrefix(name + "=") { value = String(word.dropFirst(name.count + 1)) }
    }
    return value
}
