import CohortTensor

/// The per-epoch sharded sampler.
///
/// Every epoch has one permutation of the training set, drawn from (seed, epoch) and
/// therefore identical on every rank. Global batch `B` is cut into `worldSize` equal,
/// contiguous slices; rank `r` takes `perm[s·B + r·b ..< s·B + (r+1)·b]` at step `s`,
/// with `b = B / worldSize`. The last incomplete global batch is dropped.
///
/// With `draws` (the windows of a text, as the peer `torch_lm.py` samples them) each sample of
/// a step is drawn instead, uniformly with replacement: sample j of global step g is
/// `SplitMix64(seed, stream 3, index g·B + j).nextIndex(below: datasetSize)`, the same on every
/// rank, and rank r takes samples `r·b ..< (r+1)·b` of it; an epoch is `datasetSize / B` steps.
public struct EpochSampler: Sendable {
    public let datasetSize: Int, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64
    public let draws: Bool
    public var localBatch: Int { globalBatch / worldSize }
    public var stepsPerEpoch: Int { datasetSize / globalBatch }
    public private(set) var permutation: [Int] = []
    private var epoch = 0

    public init(datasetSize: Int, globalBatch: Int, rank: Int, worldSize: Int, seed: UInt64, draws: Bool = false) {
        precondition(globalBatch % worldSize == 0, "global batch must be divisible by the world size")
        self.datasetSize = datasetSize; self.globalBatch = globalBatch
        self.rank = rank; self.worldSize = worldSize; self.seed = seed; self.draws = draws
    }

    /// Draws epoch `epoch`'s permutation (Fisher–Yates from the (seed, epoch) stream).
    public mutating func startEpoch(_ epoch: Int) {
        self.epoch = epoch
        guard !draws else { return }
        var rng = SplitMix64(seed: seed, stream: 2, index: UInt64(epoch))
        permutation = rng.permutation(of: datasetSize)
    }

    /// This rank's sample indices for step `step` of the current epoch.
    public func indices(step: Int) -> ArraySlice<Int> {
        let start = step * globalBatch + rank * localBatch
        guard draws else { return permutation[start..<(start + localBatch)] }
        let first = (epoch * stepsPerEpoch) * globalBatch + start
        return ArraySlice((first..<(first + localBatch)).map { sample in
            var rng = SplitMix64(seed: seed, stream: 3, index: UInt64(sample))
            return rng.nextIndex(below: datasetSize)
        })
    }
}
