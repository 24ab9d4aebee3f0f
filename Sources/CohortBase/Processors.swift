import CLinux
import Foundation

/// The CPUs this process may run on: its affinity mask (`sched_getaffinity`), which a
/// launcher's binding or `taskset` narrows. Foundation's processor count does not follow it.
public var usableCPUCount: Int {
    // Room for 8192 CPUs; the kernel refuses a mask smaller than its own.
    var mask = [UInt64](repeating: 0, count: 128)
    let result = mask.withUnsafeMutableBytes { sched_getaffinity(0, UInt($0.count), $0.baseAddress) }
    guard result == 0 else { return ProcessInfo.processInfo.activeProcessorCount }
    return max(1, mask.reduce(0) { $0 + $1.nonzeroBitCount })
}
