import Foundation

/// SIGINT and SIGTERM turned into a request to stop at the next step boundary (a second
/// signal of the same kind then ends the process at once, as usual).
struct StopRequest {
    var isRequested: Bool { stopSignalFlag.pointee != 0 }

    static func install() -> StopRequest {
        stopSignalFlag.pointee = 0  // touches the global before any handler may read it
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                stopSignalFlag.pointee = 1
                signal(received, SIG_DFL)
            }
        }
        return StopRequest()
    }
}

/// Written only by the signal handler (one aligned word); read at step boundaries.
nonisolated(unsafe) let stopSignalFlag: UnsafeMutablePointer<sig_atomic_t> = {
    let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()
