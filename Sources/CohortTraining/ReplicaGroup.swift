import CohortBase
import CohortData
import CohortDistributed
import CohortNN
import CohortTensor
import Dispatch
import Foundation

/// A rank's local batch split over R replicas of the network, one thread each.
///
/// The replicas share one parameter buffer and have their own activations and
/// gradients; each takes a contiguous slice of the rank's samples, exactly as ranks
/// take slices of the global batch, and their gradients are summed into the first
/// replica's buffer, which the allreduce and the optimizer then see. On a few cores
/// this uses them better than threading every small matrix product: each replica
/// calls BLAS with one thread, and the elementwise work runs in parallel too.
final class ReplicaGroup: @unchecked Sendable {
    let networks: [Network]
    let replicaBatch: Int
    /// Values per sample (`C·H·W`, or a window's T tokens).
    let sampleSize: Int
    /// Targets per sample: 1 label, or one at each of a window's positions (the loss's rows).
    let targetsPerSample: Int
    private let losses: [SoftmaxCrossEntropy]
    private let inputs: [FloatBuffer]
    private let labels: [UnsafeMutablePointer<Int32>]
    /// One slot per replica, written only by that replica's thread (no shared Swift array).
    private let outcomes: UnsafeMutableBufferPointer<StepOutcome>
    /// With gradient accumulation, the sums of a step's earlier micro-batches (`PartialSums`).
    private let partialSums: PartialSums
    /// `--trace`: the first replica's phases are marked on it.
    var timeline: StepTimeline?
    /// `--sync-batchnorm`: where the replicas' batch norms meet (nil: each normalises alone).
    private var batchStatistics: BatchStatisticsSync?

    var primary: Network { networks[0] }
    /// Whether the model's forward reads which samples it sees (dropout's masks).
    private let usesSampleKeys: Bool
    var count: Int { networks.count }

    init(model: ModelSpec, sample: SampleFormat, localBatch: Int, replicas: Int,
         precision: FloatFormat = .fp32, seed: UInt64 = 0, labelSmoothing: Float = 0) throws {
        precondition(replicas >= 1 && localBatch % replicas == 0, "replicas must divide the local batch")
        let batch = localBatch / replicas
        replicaBatch = batch
        sampleSize = sample.inputShape.elementCount
        targetsPerSample = sample.targetsPerSample
        let (classes, targets, sampleSize) = (sample.classes, batch * sample.targetsPerSample, sampleSize)
        func build(sharing: FloatBuffer?) throws -> Network {
            do {
                return try model.build(on: sample, maxBatch: batch, sharing: sharing, precision: precision, seed: seed)
            } catch { throw CohortError.settings(error.description) }
        }
        let first = try build(sharing: nil)
        networks = try [first] + (1..<replicas).map { _ in try build(sharing: first.parameters) }
        usesSampleKeys = first.allLayers.contains { $0 is Dropout }
        losses = (0..<replicas).map { _ in SoftmaxCrossEntropy(classes: classes, maxBatch: targets,
                                                                      labelSmoothing: labelSmoothing) }
        inputs = (0..<replicas).map { _ in FloatBuffer(count: batch * sampleSize) }
        labels = (0..<replicas).map { _ in UnsafeMutablePointer<Int32>.allocate(capacity: targets) }
        outcomes = .allocate(capacity: replicas)
        partialSums = PartialSums(count: first.parameterCount)
        outcomes.initialize(repeating: StepOutcome())
    }

    /// Makes every batch norm normalise with the statistics of the whole global batch: the
    /// micro-batches of all replicas and all ranks (`BatchStatisticsSync`).
    func synchronizeBatchNorm(communicator: Communicator) {
        let sync = BatchStatisticsSync(replicas: count, communicator: communicator)
        for (r, network) in networks.enumerated() {
            for case let norm as BatchNorm in network.allLayers { norm.statisticsSum = sync.sum(forReplica: r) }
        }
        batchStatistics = sync
    }

    deinit {
        labels.forEach { $0.deallocate() }
        outcomes.deallocate()
    }

    /// Replica `r`'s forward and backward on its slice of `indices`, whose inputs and labels
    /// start at sample `offset` of `batch`, into its own gradients (which it zeroes first).
    private func runReplica(_ r: Int, batch: BatchLoader.Batch, offset: Int, indices: ArraySlice<Int>, scale: Float,
                            epoch: Int, gradientsReady: ((Int) throws -> Void)?) rethrows {
        let start = offset + r * replicaBatch
        let x = batch.x.pointer + start * sampleSize, y = batch.y + start * targetsPerSample
        let timeline = r == 0 ? self.timeline : nil
        let t1 = monotonicSeconds()
        let network = networks[r]
        if usesSampleKeys {
            let first = indices.startIndex + r * replicaBatch
            network.sampleKeys.epoch = epoch
            network.sampleKeys.samples.removeAll(keepingCapacity: true)
            network.sampleKeys.samples.append(contentsOf: indices[first..<(first + replicaBatch)])
        }
        network.zeroGradients()
        let logits = network.forward(x, batch: replicaBatch)
        let (result, logitGrad) = losses[r].forwardBackward(logits: logits, labels: y,
                                                             batch: replicaBatch * targetsPerSample, scale: scale)
        timeline?.mark("forward")
        let t2 = monotonicSeconds()
        try network.backward(logitGrad, batch: replicaBatch, gradientsReady: gradientsReady)
        timeline?.mark("backward")
        outcomes[r] = StepOutcome(lossSum: result.lossSum, correct: result.correct, data: 0, forward: t2 - t1,
                                  backward: monotonicSeconds() - t2)
    }

    /// Forward and backward of one step over `indices` (the rank's samples), in `microBatches`
    /// consecutive micro-batches whose gradients add up (gradient accumulation): the summed
    /// gradients end in `primary.gradients`, and `gradientsReady(layer)` is called for every
    /// layer in reverse order as its summed gradients become final. Returns the summed loss
    /// and correct count, and the first replica's timings. `batch` holds the samples of
    /// `indices`, prepared (`BatchLoader`); `epoch` and `indices` key dropout's masks.
    ///
    /// The slices' gradients are added in a pairwise tree, `(g₀ + g₁) + (g₂ + g₃)`: the replicas'
    /// here, the micro-batches' through `PartialSums`, and the ranks' by Open MPI's binomial
    /// allreduce. So a global batch cut into the same 2^k slices gives the same bits whether the
    /// slices are ranks, replicas or micro-batches (docs/training.md, "What N ranks compute").
    func step(batch: BatchLoader.Batch, indices: ArraySlice<Int>, microBatches: Int = 1, scale: Float, epoch: Int = 0,
              gradientsReady: ((Int) throws -> Void)?) throws -> StepOutcome {
        var summed = StepOutcome()
        let micro = replicaBatch * count
        let total = primary.gradients.pointer
        defer { partialSums.clear() }
        for m in 0..<microBatches {
            let slice = indices.dropFirst(m * micro).prefix(micro)
            let last = m == microBatches - 1
            if count == 1 {
                // One replica: gradients are final layer by layer in the last micro-batch, so
                // communication can overlap its backward.
                let ready: ((Int) throws -> Void)? = !last ? nil : m == 0 ? gradientsReady : { layer in
                    self.partialSums.add(into: total, self.primary.layerRanges[layer])
                    try gradientsReady?(layer)
                }
                try runReplica(0, batch: batch, offset: m * micro, indices: slice, scale: scale, epoch: epoch,
                               gradientsReady: ready)
            } else {
                if batchStatistics != nil {
                    Self.runAtOnce(count) { r in
                        self.runReplica(r, batch: batch, offset: m * micro, indices: slice, scale: scale, epoch: epoch,
                                        gradientsReady: nil)
                    }
                } else {
                    DispatchQueue.concurrentPerform(iterations: count) { r in
                        runReplica(r, batch: batch, offset: m * micro, indices: slice, scale: scale, epoch: epoch,
                                   gradientsReady: nil)
                    }
                }
                timeline?.mark("other replicas")
                let t3 = monotonicSeconds()
                sumReplicas(addingPartialSums: last)
                timeline?.mark("replica sum")
                outcomes[0].backward += monotonicSeconds() - t3
            }
            if let error = batchStatistics?.takeError() { throw error }
            summed.add(outcomes)
            if !last { partialSums.keep(total) }
        }
        if count > 1 {
            for layer in stride(from: primary.layers.count - 1, through: 0, by: -1) { try gradientsReady?(layer) }
        }
        return summed
    }

    /// `work(0)` on the calling thread (the one that may call MPI) and `work(1)`, ... each on a
    /// thread of its own, all at once: replicas whose batch norms meet (`BatchStatisticsSync`)
    /// must not wait for each other on one thread, as a thread pool may make them.
    static func runAtOnce(_ count: Int, _ work: @escaping (Int) -> Void) {
        // The threads end before this returns: nothing they use outlives the call.
        nonisolated(unsafe) let work = work
        let group = DispatchGroup()
        for r in 1..<count {
            group.enter()
            let thread = Thread { work(r); group.leave() }
            thread.stackSize = 8 << 20
            thread.start()
        }
        work(0)
        group.wait()
    }

    /// Sums the replicas' gradients into the first replica's in a pairwise tree: at distance
    /// d = 1, 2, 4, ..., replica r (a multiple of 2d) adds replica r + d's sum, the order of
    /// Open MPI's binomial allreduce. Each thread sums its own stretch of the parameters; with
    /// `addingPartialSums`, the earlier micro-batches' sums are added last.
    private func sumReplicas(addingPartialSums: Bool) {
        let n = primary.parameterCount
        DispatchQueue.concurrentPerform(iterations: count) { part in
            let range = Self.stretch(part, of: n, parts: count)
            var distance = 1
            while distance < count {
                for r in stride(from: 0, to: count - distance, by: 2 * distance) {
                    let sum = networks[r].gradients.pointer, other = networks[r + distance].gradients.pointer
                    for i in range { sum[i] += other[i] }
                }
                distance *= 2
            }
            if addingPartialSums { partialSums.add(into: primary.gradients.pointer, range) }
        }
    }

    /// Part `part` of `0..<n` cut into `parts` stretches, `[part·n/parts, (part+1)·n/parts)`: they
    /// tile `0..<n` for every count (empty stretches when there are more parts than elements).
    static func stretch(_ part: Int, of n: Int, parts: Int) -> Range<Int> {
        (part * n / parts)..<((part + 1) * n / parts)
    }

    /// Loss sum and correct count of the shared parameters over samples `range` of `dataset`:
    /// chunks of `replicaBatch` samples dealt round-robin to the replicas, summed in replica
    /// order. With test-time augmentation each chunk is also seen as its other views, and the
    /// views' probabilities are averaged (`SoftmaxCrossEntropy.evaluate(views:)`).
    /// The replicas evaluate in evaluation mode with the first replica's running statistics.
    func evaluationSums(on dataset: ImageDataset, range: Range<Int>, augmentation: TestTimeAugmentation) throws
        -> (lossSum: Double, correct: Int) {
        for network in networks {
            if network !== primary { network.copyBuffers(from: primary) }
            network.training = false
        }
        defer { networks.forEach { $0.training = true } }
        let chunks = (range.count + replicaBatch - 1) / replicaBatch
        let classes = primary.outputShape.elementCount
        // A sample that cannot be read (an image file changed since it was checked) ends the evaluation.
        nonisolated(unsafe) let failures = UnsafeMutableBufferPointer<Error?>.allocate(capacity: count)
        failures.initialize(repeating: nil)
        defer { _ = failures.deinitialize(); failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: count) { r in
            var outcome = StepOutcome()
            // The logits of the views before the last, kept while the network computes the next.
            var kept = [Float](repeating: 0, count: (augmentation.views - 1) * replicaBatch * classes)
            for chunk in stride(from: r, to: chunks, by: count) {
                let start = range.lowerBound + chunk * replicaBatch, n = min(replicaBatch, range.upperBound - start)
                do { try dataset.fill(indices: start..<(start + n), x: inputs[r].pointer, y: labels[r]) } catch {
                    failures[r] = error
                    return
                }
                let result: SoftmaxCrossEntropy.Result
                if augmentation.views == 1 {
                    result = losses[r].evaluate(logits: networks[r].forward(inputs[r].pointer, batch: n),
                                                labels: labels[r], batch: n * targetsPerSample)
                } else {
                    result = kept.withUnsafeMutableBufferPointer { kept in
                        for view in 0..<(augmentation.views - 1) {
                            augmentation.makeView(view, of: inputs[r].pointer, count: n, channels: dataset.channels,
                                                  height: dataset.height, width: dataset.width)
                            (kept.baseAddress! + view * n * classes)
                                .update(from: networks[r].forward(inputs[r].pointer, batch: n), count: n * classes)
                        }
                        augmentation.makeView(augmentation.views - 1, of: inputs[r].pointer, count: n,
                                              channels: dataset.channels, height: dataset.height, width: dataset.width)
                        let last = networks[r].forward(inputs[r].pointer, batch: n)
                        let views = (0..<(augmentation.views - 1)).map { UnsafePointer(kept.baseAddress! + $0 * n * classes) }
                        return losses[r].evaluate(views: views + [last], labels: labels[r], batch: n)
                    }
                }
                outcome.lossSum += result.lossSum
                outcome.correct += result.correct
            }
            outcomes[r] = outcome
        }
        if let failure = failures.compactMap({ $0 }).first { throw failure }
        return (outcomes.reduce(0) { $0 + $1.lossSum }, outcomes.reduce(0) { $0 + $1.correct })
    }
}

/// One rank's share of a step: its loss sum and correct count, and the seconds the first
/// replica's thread spent on data, forward and backward (all replicas run at once).
public struct StepOutcome: Sendable {
    public var lossSum = 0.0, correct = 0, data = 0.0, forward = 0.0, backward = 0.0

    /// Adds one micro-batch: every replica's loss sum and correct count, the first replica's times.
    mutating func add(_ replicas: UnsafeMutableBufferPointer<StepOutcome>) {
        for outcome in replicas {
            lossSum += outcome.lossSum
            correct += outcome.correct
        }
        data += replicas[0].data; forward += replicas[0].forward; backward += replicas[0].backward
    }
}

/// The gradients of a step's earlier micro-batches, summed as a binary counter so that the
/// micro-batches add up in the pairwise tree that replicas and ranks use: level l holds the sum
/// of 2^l consecutive micro-batches. Keeping a micro-batch carries it up through the occupied
/// levels (`g = level + g`); the last one's gradients then take every occupied level, lowest
/// first. For K = 4 that is `(g₀ + g₁) + (g₂ + g₃)`; for K = 3, `(g₀ + g₁) + g₂`. Levels are
/// allocated as a step first needs them: ⌈log₂ K⌉ buffers of the parameters' size.
final class PartialSums: @unchecked Sendable {
    private let count: Int
    private var levels: [FloatBuffer] = []
    private var occupied: [Bool] = []

    init(count: Int) { self.count = count }

    /// Adds the micro-batch whose gradients are in `gradients` (which it may change).
    func keep(_ gradients: UnsafeMutablePointer<Float>) {
        var level = 0
        while level < levels.count, occupied[level] {
            let sum = levels[level].pointer
            for i in 0..<count { gradients[i] = sum[i] + gradients[i] }
            occupied[level] = false
            level += 1
        }
        if level == levels.count {
            levels.append(FloatBuffer(count: count))
            occupied.append(false)
        }
        levels[level].pointer.update(from: gradients, count: count)
        occupied[level] = true
    }

    /// Adds the kept sums to the last micro-batch's gradients over `range`, lowest level first.
    func add(into gradients: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for (level, buffer) in levels.enumerated() where occupied[level] {
            let sum = buffer.pointer
            for i in range { gradients[i] = sum[i] + gradients[i] }
        }
    }

    /// Empties every level, for the next step.
    func clear() { occupied = occupied.map { _ in false } }
}
