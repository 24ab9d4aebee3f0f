import CohortTensor

/// The per-epoch sharded sampler.
///
/// Every epoch has one permutation of the training set, drawn from (seed, epoch) and
/// therefore identical on every rank. Global batch `B` is cut into `worldSize` equal,
/// contiguous slices; rank `r` takes `perm[s·B + r·b ..< s·B + (r+1)·b]` at step `s`,
/// with `b = B / worldSize`. The last incomplete global batch is dropped.
public struct EpochSampler: Sendable {
    public let datasetSize: Int, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64
    public var localBatch: Int { globalBatch / worldSize }
    public var stepsPerEpoch: Int { datasetSize / globalBatch }
    public private(set) var permutation: [Int] = []

    public init(datasetSize: Int, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64) {
        precondition(globalBatch % worldSize == 0, "global batch must be divisible by the world size")
        self.datasetSize = datasetSize; self.globalBatch = globalBatch
        self.rank = rank; self.worldSize = worldSize; self.seed = seed
    }

    /// Draws epoch `epoch`'s permutation (Fisher–Yates from the (seed, epoch) stream).
    public mutating func startEpoch(_ epoch: Int) {
        var rng = SplitMix64(seed: seed, stream: 2, index: UInt64(epoch))
        permutation = rng.permutation(of: datasetSize)
    }

    /// This rank's sample indices for step `step` of the current epoch.
    public func indices(step: Int) -> ArraySlice<Int> {
        let start = step * globalBatch + rank * localBatch
        return permutation[start..<(start + localBatch)]
    }
}
