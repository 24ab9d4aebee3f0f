import CohortBase
import CohortData
import CohortTensor
import Foundation

/// A rank's batches of one epoch, read, decoded, augmented and normalised ahead of the step that
/// needs them (`--loader-threads N`): a background thread fills the next batches into a bounded
/// set of buffers (`depth` of them), each batch cut over N threads, while the current step
/// computes; `next` hands them out in step order and says how long the step waited.
/// With 0 threads each batch is filled by the caller when it asks for it.
///
/// What a batch holds depends only on (data, epoch, the sampler's indices, augmentation), never
/// on the threads or on timing, so the loader changes no bit of training.
public final class BatchLoader: @unchecked Sendable {
    /// One local batch: inputs `x[localBatch, C, H, W]` and labels `y[localBatch]` (windows of
    /// a text: `x[localBatch, T]`, `y[localBatch, T]`).
    final class Batch: @unchecked Sendable {
        let x: FloatBuffer
        let y: UnsafeMutablePointer<Int32>
        fileprivate(set) var step = -1

        init(samples: Int, sampleSize: Int, targetsPerSample: Int) {
            x = FloatBuffer(count: samples * sampleSize)
            y = .allocate(capacity: max(1, samples * targetsPerSample))
        }

        deinit { y.deallocate() }
    }

    let threads: Int
    private let data: ImageDataset
    /// Which samples it reads.
    var dataID: ObjectIdentifier { ObjectIdentifier(data.samples) }
    private let batches: [Batch]
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var free: [Batch]
    private var ready: [Int: Batch] = [:]
    private var failure: Error?
    private var generation = 0
    private var running = false

    /// `depth` batches of `localBatch` samples of `data`, filled by `threads` threads (0: by the caller).
    init(data: ImageDataset, localBatch: Int, threads: Int, depth: Int = 2) {
        self.data = data
        self.threads = threads
        batches = (0..<max(1, threads == 0 ? 1 : depth)).map { _ in Batch(samples: localBatch, sampleSize: data.sampleSize,
                                                                                   targetsPerSample: data.targetsPerSample) }
        free = batches
    }

    deinit { stop() }

    /// What the loader is reading: the samples of each step, and the augmentation of `epoch`.
    struct Plan: Sendable {
        let epoch: Int
        let steps: Range<Int>
        let indices: @Sendable (Int) -> ArraySlice<Int>
        let augmentation: Augmentation?
    }
    private var plan: Plan?

    /// Starts reading `plan`'s steps in order (any earlier epoch's reading is stopped first).
    func start(_ plan: Plan) {
        stop()
        self.plan = plan
        guard threads > 0 else { return }
        condition.lock()
        running = true
        let generation = self.generation
        condition.unlock()
        let thread = Thread { [self] in produce(plan, generation: generation) }
        thread.name = "cohort loader"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stops the background reading and waits until it has (a batch being filled is finished
    /// first); unused batches become free again.
    func stop() {
        condition.lock()
        generation += 1
        condition.broadcast()
        while running { condition.wait() }
        free = batches
        ready = [:]
        failure = nil
        condition.unlock()
    }

    /// The batch of `step` (the next one of the plan) and the seconds spent waiting for it.
    /// The caller gives it back with `recycle` once the step no longer reads it.
    func next(step: Int) throws -> (batch: Batch, waitSeconds: Double) {
        let start = monotonicSeconds()
        guard threads > 0 else {
            let batch = batches[0]
            try fill(batch, step: step, plan: plan!)
            return (batch, monotonicSeconds() - start)
        }
        condition.lock()
        defer { condition.unlock() }
        while ready[step] == nil && failure == nil { condition.wait() }
        if let batch = ready.removeValue(forKey: step) { return (batch, monotonicSeconds() - start) }
        throw failure!
    }

    /// Gives a batch back to be filled again.
    func recycle(_ batch: Batch) {
        guard threads > 0 else { return }
        condition.lock()
        free.append(batch)
        condition.signal()
        condition.unlock()
    }

    /// The background thread: fills free batches with the plan's steps, in order, until the
    /// plan ends, a batch fails or `stop` asks.
    private func produce(_ plan: Plan, generation: Int) {
        defer {
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        for step in plan.steps {
            condition.lock()
            while free.isEmpty && self.generation == generation { condition.wait() }
            guard self.generation == generation else { condition.unlock(); return }
            let batch = free.removeLast()
            condition.unlock()
            do {
                try fill(batch, step: step, plan: plan)
            } catch {
                condition.lock()
                if self.generation == generation { failure = error }
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.lock()
            guard self.generation == generation else { condition.unlock(); return }
            ready[step] = batch
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Fills `batch` with step `step`'s samples, cut into `threads` contiguous parts filled at once.
    private func fill(_ batch: Batch, step: Int, plan: Plan) throws {
        let indices = plan.indices(step), n = indices.count, parts = max(1, min(threads, n))
        let data = self.data, size = data.sampleSize
        batch.step = step
        guard parts > 1 else {
            try data.fill(indices: indices, x: batch.x.pointer, y: batch.y, augmentation: plan.augmentation, epoch: plan.epoch)
            return
        }
        // Each part writes its own rows and its own error slot.
        nonisolated(unsafe) let errors = UnsafeMutableBufferPointer<Error?>.allocate(capacity: parts)
        errors.initialize(repeating: nil)
        defer { _ = errors.deinitialize(); errors.deallocate() }
        let x = batch.x.pointer, y = batch.y
        nonisolated(unsafe) let (xs, ys) = (x, y)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let range = (part * n / parts)..<((part + 1) * n / parts)
            let slice = indices[(indices.startIndex + range.lowerBound)..<(indices.startIndex + range.upperBound)]
            do {
                try data.fill(indices: slice, x: xs + range.lowerBound * size, y: ys + range.lowerBound * data.targetsPerSample,
                              augmentation: plan.augmentation, epoch: plan.epoch)
            } catch { errors[part] = error }
        }
        if let error = errors.compactMap({ $0 }).first { throw error }
    }
}

extension BatchLoader {
    /// Samples/s of the loader alone: `steps` batches of `batch` samples (after `warmup`
    /// untimed ones) in the order of epoch 0's permutation, each taken as soon as it is ready.
    public static func samplesPerSecond(data: ImageDataset, batch: Int, threads: Int, warmup: Int, steps: Int,
                                        augmentation: Augmentation?) throws -> Double {
        guard data.count >= batch else {
            throw CohortError.settings("--batch-size \(batch) is larger than the \(data.count) training samples")
        }
        var sampler = EpochSampler(datasetSize: data.count, globalBatch: batch, rank: 0, worldSize: 1, seed: 0)
        sampler.startEpoch(0)
        let loader = BatchLoader(data: data, localBatch: batch, threads: threads)
        let frozen = sampler, perEpoch = sampler.stepsPerEpoch
        loader.start(Plan(epoch: 0, steps: 0..<(warmup + steps), indices: { frozen.indices(step: $0 % perEpoch) },
                          augmentation: augmentation))
        defer { loader.stop() }
        var start = monotonicSeconds()
        for step in 0..<(warmup + steps) {
            if step == warmup { start = monotonicSeconds() }
            loader.recycle(try loader.next(step: step).batch)
        }
        return Double(steps * batch) / (monotonicSeconds() - start)
    }
}
