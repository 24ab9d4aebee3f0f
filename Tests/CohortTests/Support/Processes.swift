import Foundation
import Testing

/// A child process started in the background, its output in files, with its descendants
/// found through /proc (mpirun's ranks are its children's children or children).
///
/// Started with posix_spawn and an empty signal mask: the test runner's threads block
/// signals, and a child started by Foundation's Process inherits that mask, so an mpirun
/// started that way would never see the SIGTERM these tests send it.
final class BackgroundProcess {
    let pid: Int32
    let outPath: String, errPath: String
    private var status: Int32?

    init(_ command: [String], environment: [String: String] = [:]) throws {
        let base = NSTemporaryDirectory() + "cohort-bg-\(UUID().uuidString)"
        outPath = base + ".out"; errPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty); sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        var child: pid_t = 0
        let argv = command.map { strdup($0) } + [nil], envp = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        let result = posix_spawn(&child, command[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            struct SpawnFailed: Error { let code: Int32 }
            throw SpawnFailed(code: result)
        }
        pid = child
    }

    deinit {
        if wait(timeout: 0) == nil { kill(pid, SIGKILL); _ = wait(timeout: 10) }
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }

    /// The exit status (128 + signal when killed), or nil if it still runs after `timeout` seconds.
    func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while status == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                let signal = raw & 0x7F
                status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
            } else if Date() >= deadline {
                return nil
            } else {
                usleep(50_000)
            }
        }
        return status
    }

    var stdout: String { String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self) }
    var stderr: String { String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self) }

    /// Every live process below this one.
    func liveDescendants() -> [Int32] {
        var parents: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(entry), let fields = procStat(p) else { continue }
            // State, then the parent's pid; zombies have exited already.
            if fields.count > 1, fields[0] != "Z", let parent = Int32(fields[1]) { parents[p] = parent }
        }
        var found: [Int32] = [], frontier: Set<Int32> = [pid]
        while !frontier.isEmpty {
            let next = Set(parents.filter { frontier.contains($0.value) }.map(\.key))
            found += next
            frontier = next
        }
        return found
    }

    /// A descendant whose environment contains `variable` (e.g. OMPI_COMM_WORLD_RANK=1).
    func descendant(withEnvironment variable: String) -> Int32? {
        liveDescendants().first { p in
            guard let data = FileManager.default.contents(atPath: "/proc/\(p)/environ") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == variable }
        }
    }
}

/// The fields of /proc/PID/stat after the command name (state, parent's pid, ...); nil when gone.
func procStat(_ pid: Int32) -> [Substring]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
        return nil
    }
    return stat[stat.index(after: close)...].split(separator: " ")
}

/// Whether `pid` is a live process (not gone, not a zombie awaiting its parent).
func isAlive(_ pid: Int32) -> Bool {
    guard let fields = procStat(pid) else { return false }
    return fields.first != "Z"
}

/// The processes of `pids` still alive a few seconds after their job ended, with their /proc/PID/stat
/// lines. When a rank dies, Open MPI's mpirun ends the others (SIGTERM, then SIGKILL) and can exit
/// before the kernel has finished tearing one down: in a loop of such kills, rank 0 was still running
/// right after mpirun returned in most rounds, and gone milliseconds later. A rank the job failed to
/// end (e.g. one waiting forever on a dead peer) is still alive after the grace period.
func survivors(of pids: [Int32], grace: Double = 5) -> [String] {
    try? waitFor("the job's processes to end", timeout: grace) { !pids.contains(where: isAlive) }
    return pids.filter(isAlive).map { (try? String(contentsOfFile: "/proc/\($0)/stat", encoding: .utf8)) ?? "\($0)" }
}

/// Polls `condition` every 50 ms for up to `timeout` seconds.
func waitFor(_ what: String, timeout: Double = 120, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        guard Date() < deadline else {
            struct TimedOut: Error, CustomStringConvertible { let description: String }
            throw TimedOut(description: "waited \(timeout) s for \(what)")
        }
        usleep(50_000)
    }
}
