import Foundation

/// SIGINT and SIGTERM turned into a request to stop at the next safe point (a training step's
/// end, a sweep's running point). A signal that comes a second or more after the first ends
/// the process at once, as a second Ctrl-C does; copies of the first that arrive together
/// (a terminal's Ctrl-C to the whole process group, Slurm's SIGTERM to every process of a job,
/// and the same signal passed on by the parent) only repeat the request.
public struct StopRequest: Sendable {
    public var isRequested: Bool { stopSignalState[0] != 0 }

    public static func install() -> StopRequest {
        stopSignalState[0] = 0  // touches the global before any handler may read it
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                // Only async-signal-safe calls here: clock_gettime, signal, raise.
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let milliseconds = Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
                if stopSignalState[0] == 0 {
                    stopSignalState[1] = milliseconds
                    stopSignalState[0] = 1
                } else if milliseconds - stopSignalState[1] >= 1000 {
                    signal(received, SIG_DFL)
                    raise(received)
                }
            }
        }
        return StopRequest()
    }
}

/// [requested, milliseconds of the first signal]: written only by the signal handler (aligned
/// words), read at safe points.
nonisolated(unsafe) let stopSignalState: UnsafeMutablePointer<Int> = {
    let p = UnsafeMutablePointer<Int>.allocate(capacity: 2)
    p.initialize(repeating: 0, count: 2)
    return p
}()
