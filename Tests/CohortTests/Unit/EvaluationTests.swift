import CohortBase
import CohortData
import CohortNN
@testable import CohortRun
import CohortTensor
@testable import CohortTraining
import Foundation
import Testing

/// Evaluation on the test set: test-time augmentation's views and their mean probabilities,
/// and when `--eval-every` evaluates.
@Suite struct EvaluationTests {
    /// `log softmax(z)_k` in double.
    func logSoftmax(_ z: [Float]) -> [Double] {
        let m = Double(z.max()!), lse = m + log(z.map { exp(Double($0) - m) }.reduce(0, +))
        return z.map { Double($0) - lse }
    }

    /// The mean of two views' probabilities: its loss is `-log((p_a + p_b)/2)` at the label and
    /// its answer the class of the larger mean; one view is the plain loss.
    @Test func viewsAverageTheirProbabilities() {
        let classes = 4, batch = 3
        let a = randomValues(batch * classes, seed: 5).map { $0 * 4 }, b = randomValues(batch * classes, seed: 6).map { $0 * 4 }
        let labels: [Int32] = [0, 3, 1]
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: batch)
        let result = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in loss.evaluate(views: [pa.baseAddress!, pb.baseAddress!], labels: labels, batch: batch) }
        }
        var expectedLoss = 0.0, expectedCorrect = 0
        for n in 0..<batch {
            let pa = logSoftmax(Array(a[(n * classes)..<((n + 1) * classes)])).map(exp)
            let pb = logSoftmax(Array(b[(n * classes)..<((n + 1) * classes)])).map(exp)
            let mean = zip(pa, pb).map { ($0 + $1) / 2 }
            expectedLoss -= log(mean[Int(labels[n])])
            if mean.firstIndex(of: mean.max()!)! == Int(labels[n]) { expectedCorrect += 1 }
        }
        // Both sides in double from the same floats: they differ by a few double roundings.
        #expect(abs(result.lossSum - expectedLoss) <= 1e-12 * expectedLoss)
        #expect(result.correct == expectedCorrect)
        // One view: the plain loss, which `evaluate(logits:)` computes per sample in float (a
        // few float roundings of log-sum-exp, relative 2^-24 each, on losses of order 1).
        let single = a.withUnsafeBufferPointer { loss.evaluate(views: [$0.baseAddress!], labels: labels, batch: batch) }
        let plain = loss.evaluate(logits: a, labels: labels, batch: batch)
        #expect(abs(single.lossSum - plain.lossSum) <= 1e-5 * plain.lossSum && single.correct == plain.correct)
    }

    /// A probability that underflows in float still gives a finite loss.
    @Test func viewsOfAConfidentWrongAnswerGiveAFiniteLoss() {
        let loss = SoftmaxCrossEntropy(classes: 3, maxBatch: 1)
        let a: [Float] = [1000, 0, -1000], b: [Float] = [1000, -1, -1000]
        let result = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in loss.evaluate(views: [pa.baseAddress!, pb.baseAddress!], labels: [2], batch: 1) }
        }
        // -log((e^-2000 + e^-2000)/2) = 2000.
        #expect(abs(result.lossSum - 2000) < 1e-9 && result.correct == 0)
    }

    /// The flip view mirrors every row of every channel; twice is the image again.
    @Test func theFlipViewMirrorsRows() {
        var x: [Float] = (0..<(2 * 3 * 2 * 4)).map(Float.init)  // [2, 3, 2, 4]
        let original = x
        TestTimeAugmentation.flip.makeView(1, of: &x, count: 2, channels: 3, height: 2, width: 4)
        for row in 0..<(2 * 3 * 2) {
            #expect(Array(x[(row * 4)..<(row * 4 + 4)]) == Array(original[(row * 4)..<(row * 4 + 4)].reversed()))
        }
        TestTimeAugmentation.flip.makeView(0, of: &x, count: 2, channels: 3, height: 2, width: 4)
        TestTimeAugmentation.none.makeView(1, of: &x, count: 2, channels: 3, height: 2, width: 4)
        TestTimeAugmentation.flip.makeView(1, of: &x, count: 2, channels: 3, height: 2, width: 4)
        #expect(x == original)
    }

    /// The replicas' evaluation with flips equals the mean of the image's and its mirror's
    /// probabilities computed one network pass at a time.
    @Test func replicasEvaluateTheFlippedView() throws {
        let shape = [3, 8, 8], count = 10
        let pixels = (0..<(count * 3 * 64)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }
        let data = ImageDataset(name: "test", channels: 3, height: 8, width: 8, pixels: pixels,
                                labels: (0..<count).map { UInt8($0 % 10) }, mean: 0.5, std: 0.5)
        let group = try ReplicaGroup(model: ModelSpec(file: .builtin(.cnn)), sample: SampleFormat(inputShape: shape, classes: 10), localBatch: 4,
                                     replicas: 2)
        group.primary.initializeParameters(seed: 9)
        let sums = try group.evaluationSums(on: data, range: 1..<count, augmentation: .flip)

        let network = Models.make(.cnn, imageShape: shape, hidden: 8, classes: 10, maxBatch: 1, sharing: group.primary.parameters)
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: 1)
        var expectedLoss = 0.0, expectedCorrect = 0
        let x = FloatBuffer(count: 3 * 64)
        var label: Int32 = 0
        for i in 1..<count {
            try data.fill(indices: [i], x: x.pointer, y: &label)
            let plain = Array(UnsafeBufferPointer(start: network.forward(x.pointer, batch: 1), count: 10))
            TestTimeAugmentation.flip.makeView(1, of: x.pointer, count: 1, channels: 3, height: 8, width: 8)
            let mirrored = Array(UnsafeBufferPointer(start: network.forward(x.pointer, batch: 1), count: 10))
            let result = plain.withUnsafeBufferPointer { p in
                mirrored.withUnsafeBufferPointer { m in loss.evaluate(views: [p.baseAddress!, m.baseAddress!], labels: [label], batch: 1) }
            }
            expectedLoss += result.lossSum
            expectedCorrect += result.correct
        }
        // Batches of 4 against 1: the kernels may add a sample's products in another order
        // (float rounding of the logits, relative ~1e-6), and the sums over samples run in another order.
        #expect(abs(sums.lossSum - expectedLoss) <= 1e-4 * expectedLoss, "\(sums.lossSum) vs \(expectedLoss)")
        #expect(sums.correct == expectedCorrect)
    }

    @Test func evaluationIntervalsReadLikeLightningsValCheckInterval() throws {
        #expect(try EvaluationInterval(parsing: "250") == .steps(250))
        #expect(try EvaluationInterval(parsing: "0.25") == .epochFraction(0.25))
        for bad in ["0", "-3", "1.0", "1.5", "0.0", "x", ""] {
            #expect(throws: CohortError.self, "\(bad)") { try EvaluationInterval(parsing: bad) }
        }
        // A fraction of an epoch of 10 steps: after steps 3 (2.5 passed) and 5, and at 8 (7.5); the epoch's end
        // (step 10) is always evaluated, so not here.
        let quarter = EvaluationInterval.epochFraction(0.25)
        #expect((0..<10).filter { quarter.evaluates(afterStep: $0, epoch: 0, stepsPerEpoch: 10) } == [2, 4, 7])
        // Steps count globally, across epochs.
        let every4 = EvaluationInterval.steps(4)
        #expect((0..<10).filter { every4.evaluates(afterStep: $0, epoch: 1, stepsPerEpoch: 10) } == [1, 5])
        // Recorded in config.json as the flag is written.
        let config = try TrainingConfig.from(given: ["eval_every": .string("0.5")])
        #expect(config.evalEvery == .epochFraction(0.5))
        #expect(JSONValue(config).objectValue?["eval_every"] == .string("0.5"))
    }
}
