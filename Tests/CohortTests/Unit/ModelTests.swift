import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
import CohortTensor
@testable import CohortRun
@testable import CohortSweep
import Testing

/// Model structure: shapes, parameter counts, the FLOP count that `cohort bench` reports.
@Suite struct ModelTests {
    @Test func cnnShapesAndCost() {
        let cifar = TestModels.cnn(channels: 3, size: 32, maxBatch: 1)
        #expect(cifar.outputShape == [10])
        // conv1 32·3·25 + 32, conv2 64·32·25 + 64, fc 10·4096 + 10: PyTorch's SeedCNN has 94,666 parameters.
        #expect(cifar.parameterCount == 94_666)
        // conv1 forward + dW, conv2 and fc forward + dW + dX (2·multiply-adds each).
        let conv1 = 2 * 32 * 75 * 1024, conv2 = 2 * 64 * 800 * 256, fc = 2 * 4096 * 10
        #expect(cifar.trainingFLOPsPerSample == 2 * conv1 + 3 * conv2 + 3 * fc)
        #expect(cifar.trainingFLOPsPerSample == 88_719_360)
        let mnist = TestModels.cnn(channels: 1, size: 28, maxBatch: 1)
        #expect(mnist.tensor(named: "fc.weight")?.shape == [10, 64 * 7 * 7])
    }

    @Test func recurrentParameterCounts() {
        // PyTorch: G·H·(I + H) + 2·G·H for the cell, H·10 + 10 for fc.
        for (kind, gates) in [(ModelKind.rnn, 1), (.lstm, 4), (.gru, 3)] {
            let network = Models.make(kind, imageShape: [1, 28, 28], hidden: 128, maxBatch: 1)
            #expect(network.parameterCount == gates * 128 * (28 + 128) + 2 * gates * 128 + 1290)
            #expect(network.trainingFLOPsPerSample == 2 * 28 * gates * 128 * (28 + 128) * 2 + 3 * 2 * 128 * 10)
        }
    }

    /// `--precision bf16` on a recurrent model: the same parameters and batch give the output
    /// and the gradients of fp32 to bf16's rounding (2^-9 of a value per product, carried
    /// through 28 steps), and not the same bits (the products do run in bf16).
    @Test(.needsBF16Kernels, arguments: [ModelKind.rnn, .lstm, .gru])
    func recurrentBF16StaysWithinRoundingOfFloat(kind: ModelKind) throws {
        let batch = 8, shape: Shape = [1, 28, 28]
        let x = randomValues(batch * 28 * 28, seed: 31), dy = randomValues(batch * 10, seed: 32)
        let results = [FloatFormat.fp32, .bf16].map { precision in
            let network = Models.make(kind, imageShape: shape, hidden: 32, maxBatch: batch, precision: precision)
            network.initializeParameters(seed: 33)
            let y = x.withUnsafeBufferPointer { array(network.forward($0.baseAddress!, batch: batch), dy.count) }
            network.zeroGradients()
            _ = dy.withUnsafeBufferPointer { network.backward($0.baseAddress!, batch: batch, needsInputGradient: false) }
            return (y, network.gradients.array)
        }
        for (name, float, bf16) in [("output", results[0].0, results[1].0), ("gradients", results[0].1, results[1].1)] {
            let scale = float.map { Double(abs($0)) }.max()!
            let worst = zip(float, bf16).map { Double(abs($0 - $1)) }.max()!
            #expect(worst > 1e-5 * scale && worst < 3e-2 * scale,
                    "\(kind) \(name): worst difference \(worst) is not bf16's rounding (scale \(scale))")
        }
    }
}
