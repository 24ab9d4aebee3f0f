import CohortData
import CohortNN
import CohortTensor
import Dispatch

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
    private let losses: [SoftmaxCrossEntropy]
    private let inputs: [FloatBuffer]
    private let labels: [UnsafeMutablePointer<Int32>]
    /// Per replica: loss sum, correct count, and seconds in data, forward, backward (replica 0's are reported).
    private var results: [(loss: Double, correct: Int, data: Double, forward: Double, backward: Double)]

    var primary: Network { networks[0] }
    var count: Int { networks.count }

    init(model: ModelKind, imageShape: Shape, hidden: Int, classes: Int, localBatch: Int, replicas: Int) {
        precondition(replicas >= 1 && localBatch % replicas == 0, "replicas must divide the local batch")
        let batch = localBatch / replicas
        replicaBatch = batch
        let first = Models.make(model, imageShape: imageShape, hidden: hidden, classes: classes, maxBatch: batch)
        networks = [first] + (1..<replicas).map { _ in
            Models.make(model, imageShape: imageShape, hidden: hidden, classes: classes, maxBatch: batch,
                        sharing: first.parameters)
        }
        losses = (0..<replicas).map { _ in SoftmaxCrossEntropy(classes: classes, maxBatch: batch) }
        inputs = (0..<replicas).map { _ in FloatBuffer(count: batch * imageShape.elementCount) }
        labels = (0..<replicas).map { _ in UnsafeMutablePointer<Int32>.allocate(capacity: batch) }
        results = Array(repeating: (0, 0, 0, 0, 0), count: replicas)
    }

    deinit { labels.forEach { $0.deallocate() } }

    /// Forward and backward of one step over `indices` (the rank's samples): the summed
    /// gradients end in `primary.gradients`, and `gradientsReady(layer)` is called for
    /// every layer in reverse order as its summed gradients become final.
    func step(data: ImageDataset, indices: ArraySlice<Int>, scale: Float,
              gradientsReady: ((Int) throws -> Void)?) throws -> (lossSum: Double, correct: Int, data: Double,
                                                                  forward: Double, backward: Double) {
        if count == 1 {
            let t0 = monotonicSeconds()
            data.fill(indices: indices, x: inputs[0].pointer, y: labels[0])
            let t1 = monotonicSeconds()
            primary.zeroGradients()
            let logits = primary.forward(inputs[0].pointer, batch: replicaBatch)
            let (result, logitGrad) = losses[0].forwardBackward(logits: logits, labels: labels[0], batch: replicaBatch,
                                                                 scale: scale)
            let t2 = monotonicSeconds()
            try primary.backward(logitGrad, batch: replicaBatch, gradientsReady: gradientsReady)
            return (result.lossSum, result.correct, t1 - t0, t2 - t1, monotonicSeconds() - t2)
        }
        DispatchQueue.concurrentPerform(iterations: count) { r in
            let t0 = monotonicSeconds()
            let start = indices.startIndex + r * replicaBatch
            data.fill(indices: indices[start..<(start + replicaBatch)], x: inputs[r].pointer, y: labels[r])
            let t1 = monotonicSeconds()
            let network = networks[r]
            network.zeroGradients()
            let logits = network.forward(inputs[r].pointer, batch: replicaBatch)
            let (result, logitGrad) = losses[r].forwardBackward(logits: logits, labels: labels[r], batch: replicaBatch,
                                                                 scale: scale)
            let t2 = monotonicSeconds()
            network.backward(logitGrad, batch: replicaBatch)
            results[r] = (result.lossSum, result.correct, t1 - t0, t2 - t1, monotonicSeconds() - t2)
        }
        let t3 = monotonicSeconds()
        // Sum in replica order, so the result does not depend on which thread finished first.
        let total = primary.gradients.pointer, n = primary.parameterCount
        for r in 1..<count {
            let g = networks[r].gradients.pointer
            for i in 0..<n { total[i] += g[i] }
        }
        for layer in stride(from: primary.layers.count - 1, through: 0, by: -1) { try gradientsReady?(layer) }
        let first = results[0]
        return (results.reduce(0) { $0 + $1.loss }, results.reduce(0) { $0 + $1.correct }, first.data, first.forward,
                first.backward + monotonicSeconds() - t3)
    }
}

extension ReplicaGroup {
    /// Mean loss and accuracy of the shared parameters over all of `dataset`: chunks of
    /// `replicaBatch` samples dealt round-robin to the replicas, summed in replica order.
    func evaluate(on dataset: ImageDataset) -> (loss: Double, accuracy: Double) {
        let chunks = (dataset.count + replicaBatch - 1) / replicaBatch
        DispatchQueue.concurrentPerform(iterations: count) { r in
            var lossSum = 0.0, correct = 0
            for chunk in stride(from: r, to: chunks, by: count) {
                let start = chunk * replicaBatch, n = min(replicaBatch, dataset.count - start)
                dataset.fill(range: start..<(start + n), x: inputs[r].pointer, y: labels[r])
                let result = losses[r].evaluate(logits: networks[r].forward(inputs[r].pointer, batch: n),
                                                labels: labels[r], batch: n)
                lossSum += result.lossSum
                correct += result.correct
            }
            results[r] = (lossSum, correct, 0, 0, 0)
        }
        let lossSum = results.reduce(0) { $0 + $1.loss }, correct = results.reduce(0) { $0 + $1.correct }
        return (lossSum / Double(dataset.count), Double(correct) / Double(dataset.count))
    }
}
