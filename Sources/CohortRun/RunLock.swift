import CohortBase
import Foundation

/// One writer per run directory: an advisory lock on `DIR/.lock`, held by rank 0 of a run for
/// as long as its process lives.
///
/// The lock is an open file description lock (`fcntl(F_OFD_SETLK)`), which the kernel drops
/// when the process ends in any way, SIGKILL included, so a killed run never leaves a stale
/// lock behind. On NFS the Linux client passes such locks to the server (NLM for NFSv3, the
/// protocol's own locks for NFSv4), so writers on different nodes exclude each other too;
/// mounts with `nolock` keep locks on the node (docs/reliability.md). The file holds the
/// holder's host and pid, for the message the next writer gets.
public final class RunLock {
    /// The open file that holds the lock; closing it releases the lock.
    private let descriptor: Int32
    public let path: String

    /// `fcntl`'s open-file-description lock commands (Linux 3.15; not exported to Swift).
    private static let setLock: Int32 = 37  // F_OFD_SETLK

    /// Takes the lock of `directory` (which must exist), or fails at once naming its holder.
    public init(directory: String) throws {
        path = "\(directory)/.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CohortError.failure("--out \(directory): cannot open \(path) (\(String(cString: strerror(errno))))")
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        guard fcntl(descriptor, Self.setLock, &lock) == 0 else {
            let reason = errno
            let holder = Self.holder(descriptor)
            close(descriptor)
            guard reason == EAGAIN || reason == EACCES else {
                throw CohortError.failure("--out \(directory): cannot lock \(path) (\(String(cString: strerror(reason))))")
            }
            throw CohortError.refused("--out \(directory) is in use by another run (\(holder ?? "holder unknown"), "
                                      + "which holds \(path)); one run directory has one writer")
        }
        let line = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
        ftruncate(descriptor, 0)
        _ = line.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit { close(descriptor) }

    /// What the holder wrote: "pid P on HOST".
    private static func holder(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
