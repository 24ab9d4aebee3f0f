import CohortBase
import CohortDistributed
import CohortNN
import CohortTensor

/// Sums the gradients over all ranks, overlapping communication with backward.
///
/// The flat gradient buffer is cut into buckets of whole layers, in reverse layer
/// order (the order backward produces them): the first bucket is small
/// (`firstBucketBytes` or `bucketBytes`, whichever is smaller, like PyTorch DDP's
/// first bucket) so communication starts early; later ones hold up to `bucketBytes`.
/// A bucket closes at the first layer that brings it to its size or beyond. As soon
/// as backward has finished the lowest layer of a bucket, that bucket's non-blocking
/// allreduce starts; `finish` waits for all of them before the optimizer step. Without overlap the same buckets
/// are reduced one after another once backward is done, so both modes sum the same
/// values in the same groups. The values go as `format`: floats (MPI's allreduce), or
/// bfloat16 in half the bytes (`BF16Reduction`).
final class GradientReducer {
    struct Bucket {
        /// Elements of the flat gradient buffer: the layers' ranges, contiguous.
        let range: Range<Int>
        /// The bucket is complete once backward has finished this (its lowest) layer.
        let lowestLayer: Int
    }

    let buckets: [Bucket]
    /// Bytes of each bucket's float gradients, in the order they are reduced.
    let bucketBytes: [Int]
    private let gradients: UnsafeMutablePointer<Float>
    private let communicator: Communicator
    private let overlap: Bool
    /// What the gradients are sent as (`--allreduce-dtype`).
    private let format: FloatFormat
    /// Buckets whose reduction has been started this step (their slots are 0..<started).
    private var started = 0
    /// Bucket index completed by each layer, if any.
    private let bucketEndingAt: [Int?]
    /// `--trace`: each bucket's reduction as a span, from its start to the completion this
    /// rank saw (`startTimes`, `seenComplete` by slot).
    var timeline: StepTimeline?
    private var startTimes: [Double] = [], seenComplete: [Bool] = []

    init(network: Network, communicator: Communicator, bucketBytes: Int, firstBucketBytes: Int = 1 << 20,
         overlap: Bool, format: FloatFormat = .fp32) {
        self.communicator = communicator
        self.overlap = overlap
        self.format = format
        gradients = network.gradients.pointer
        var buckets: [Bucket] = []
        var upper: Int?, lowestLayer = 0, bytes = 0
        for layer in stride(from: network.layers.count - 1, through: 0, by: -1) {
            let range = network.layerRanges[layer]
            guard !range.isEmpty else { continue }
            if upper == nil { upper = range.upperBound }
            lowestLayer = layer
            bytes += range.count * MemoryLayout<Float>.size
            if bytes >= (buckets.isEmpty ? min(firstBucketBytes, bucketBytes) : bucketBytes) {
                buckets.append(Bucket(range: range.lowerBound..<upper!, lowestLayer: layer))
                upper = nil
                bytes = 0
            }
        }
        if let upper {
            buckets.append(Bucket(range: network.layerRanges[lowestLayer].lowerBound..<upper, lowestLayer: lowestLayer))
        }
        self.buckets = buckets
        self.bucketBytes = buckets.map { $0.range.count * MemoryLayout<Float>.size }
        var ending = [Int?](repeating: nil, count: network.layers.count)
        for (i, b) in buckets.enumerated() { ending[b.lowestLayer] = i }
        bucketEndingAt = ending
    }

    /// Called by backward after each layer; starts that layer's bucket if it is complete,
    /// and lets reductions already in flight progress.
    func layerFinished(_ layer: Int) throws {
        guard overlap, communicator.size > 1 else { return }
        for slot in 0..<started {
            if try communicator.testReduction(slot: slot) { traceCompletion(slot) }
        }
        if let b = bucketEndingAt[layer] {
            let range = buckets[b].range
            if timeline != nil { traceStart(started) }
            try communicator.startAllreduceSum(gradients + range.lowerBound, count: range.count, slot: started, format: format)
            started += 1
        }
    }

    private func traceStart(_ slot: Int) {
        while startTimes.count <= slot { startTimes.append(0); seenComplete.append(false) }
        startTimes[slot] = monotonicSeconds()
        seenComplete[slot] = false
    }

    /// The first time `slot`'s reduction is seen complete, its span.
    private func traceCompletion(_ slot: Int) {
        guard let timeline, !seenComplete[slot] else { return }
        seenComplete[slot] = true
        timeline.bucket(slot, bytes: bucketBytes[slot], from: startTimes[slot], to: monotonicSeconds())
    }

    /// Completes the reduction of every bucket; returns the seconds spent here.
    func finish() throws -> Double {
        guard communicator.size > 1 else { return 0 }
        let start = monotonicSeconds()
        if overlap {
            for slot in 0..<started {
                try communicator.waitReduction(slot: slot)
                traceCompletion(slot)
            }
            started = 0
        } else {
            for (slot, b) in buckets.enumerated() {
                if timeline != nil { traceStart(slot) }
                try communicator.startAllreduceSum(gradients + b.range.lowerBound, count: b.range.count, slot: slot,
                                                   format: format)
                try communicator.waitReduction(slot: slot)
                traceCompletion(slot)
            }
        }
        return monotonicSeconds() - start
    }
}
