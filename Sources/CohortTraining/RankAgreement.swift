import CohortBase
import CohortDistributed
import CohortNN
import CohortTensor
import Foundation

/// Checks that every rank holds the same parameters, and that gradients are finite.
enum RankAgreement {
    /// Ranks that hold different parameters have drifted apart (a bug, or a bit flip): the
    /// run stops on every rank. Returns the checksum they agree on.
    static func check(_ network: Network, communicator: Communicator, at moment: String) throws -> UInt64 {
        let checksums = try parameterChecksums(network, communicator: communicator)
        guard Set(checksums).count == 1 else {
            let odd = checksums.indices.filter { checksums[$0] != checksums[0] }
            throw CohortError.stopped("ranks drifted apart at \(moment): the parameters of rank(s) "
                                      + "\(odd.map(String.init).joined(separator: ", ")) differ from rank 0's "
                                      + "(checksums \(checksums.map { String($0, radix: 16) }.joined(separator: " ")))")
        }
        return checksums[0]
    }

    /// Every rank's FNV-1a of its parameters, in rank order, known to all ranks.
    static func parameterChecksums(_ network: Network, communicator: Communicator) throws -> [UInt64] {
        let mine = fnv1a(UnsafeRawBufferPointer(start: network.parameters.pointer, count: network.parameterCount * 4))
        // Each rank fills its own slot with the two 32-bit halves (exact in a double); the sum gathers them.
        var slots = [Double](repeating: 0, count: 2 * communicator.size)
        slots[2 * communicator.rank] = Double(mine >> 32)
        slots[2 * communicator.rank + 1] = Double(mine & 0xFFFF_FFFF)
        let all = try communicator.allreduceSum(slots)
        return (0..<communicator.size).map { UInt64(all[2 * $0]) << 32 | UInt64(all[2 * $0 + 1]) }
    }

    /// Whether every value of `buffer` is finite: no exponent field of all ones (NaN, infinity).
    /// Integer tests, so the loop vectorises.
    static func allFinite(_ buffer: FloatBuffer) -> Bool {
        let bits = UnsafeRawPointer(buffer.pointer).assumingMemoryBound(to: UInt32.self)
        var bad: UInt32 = 0
        for i in 0..<buffer.count { bad |= (bits[i] & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
        return bad == 0
    }
}

/// `COHORT_FAULT_DRIFT=RANK:STEP`: rank RANK nudges one parameter after global step STEP, as
/// a bit flip would, so that the tests can see the drift check stop the run.
struct DriftFault {
    let rank: Int, step: Int

    static var fromEnvironment: DriftFault? {
        guard let spec = ProcessInfo.processInfo.environment["COHORT_FAULT_DRIFT"] else { return nil }
        let parts = spec.split(separator: ":").compactMap { Int($0) }
        return parts.count == 2 ? DriftFault(rank: parts[0], step: parts[1]) : nil
    }

    func apply(to network: Network, rank: Int, globalStep: Int) {
        if rank == self.rank, globalStep == step { network.parameters.pointer[0] += 1e-3 }
    }
}
