import Foundation

/// How to start N ranks of a program with Open MPI's `mpirun` on this machine, with
/// the same choices as `launch/train`: `--allow-run-as-root` for root,
/// `--oversubscribe` and no binding beyond the cores, else cores/N cores per rank.
public enum MPIRun {
    public static var executable: String? { find("mpirun") }

    /// `name` as a path: itself if it has a slash, else the first executable of that name on PATH.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `-np N`, and `--allow-run-as-root` for root: what every mpirun command here starts with.
    public static func rankArguments(ranks: Int, isRoot: Bool = getuid() == 0) -> [String] {
        ["-np", "\(ranks)"] + (isRoot ? ["--allow-run-as-root"] : [])
    }

    public static func arguments(ranks: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                                 isRoot: Bool = getuid() == 0) -> [String] {
        var args = rankArguments(ranks: ranks, isRoot: isRoot)
        if ranks > cores {
            args += ["--oversubscribe", "--bind-to", "none"]
        } else if cores % ranks == 0 {
            args += ["--map-by", "slot:PE=\(cores / ranks)", "--bind-to", "core"]
        } else {
            args += ["--bind-to", "none"]
        }
        return args
    }

    /// The path of the running executable, to start more copies of it.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
