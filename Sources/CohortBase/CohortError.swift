/// The one error type of Cohort's own code: a message that names what is wrong (the flag,
/// the file, the rank), and a kind that decides who reports it and how the process exits.
public struct CohortError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable {
        /// A bad setting: a flag's value, flags that do not fit together, a hostfile or sweep
        /// file. Every rank reads the same settings, so every rank finds it at the same point.
        case settings
        /// A run that rank 0 refuses to start: its directory holds another run, or its
        /// checkpoints do not fit. Nothing a restart would change.
        case refused
        /// A run ended on purpose by a condition every rank sees at the same step
        /// (non-finite values, drifted ranks).
        case stopped
        /// A collective that waited longer than `--timeout`: a rank hung, stopped or cut off.
        /// The job ends; a restart from the last checkpoint may well succeed.
        case timedOut
        /// Anything else: an unreadable file, a failed child process, a broken link.
        case failure
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    public static func settings(_ message: String) -> CohortError { CohortError(.settings, message) }
    public static func refused(_ message: String) -> CohortError { CohortError(.refused, message) }
    public static func stopped(_ message: String) -> CohortError { CohortError(.stopped, message) }
    public static func failure(_ message: String) -> CohortError { CohortError(.failure, message) }

    /// The process's exit code: 64 (EX_USAGE, as swift-argument-parser's own) for settings and
    /// refused runs, 3 for a deliberate stop, 4 for a collective that timed out, 1 otherwise.
    /// Launchers restart on 1 and 4 (and on signals), not on 64 or 3: those would end the
    /// same way again.
    public var exitCode: Int32 {
        switch kind {
        case .settings, .refused: return 64
        case .stopped: return 3
        case .timedOut: return 4
        case .failure: return 1
        }
    }

    /// The same error with `prefix` in front of its message (a file, a grid point).
    public func prefixed(_ prefix: String) -> CohortError { CohortError(kind, prefix + description) }
}
