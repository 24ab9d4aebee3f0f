import CohortNN
import CohortOptim
import CohortTensor
import Testing

/// Feature maps kept channel-blocked (`ChannelBlocking`): which networks do it, and that they
/// compute what the planar layout computes.
@Suite struct ChannelBlockingTests {
    /// On every CPU Cohort runs on, oneDNN's kernels are AVX-512 (blocks of 16) or AVX2 (8).
    @Test func theKernelsChooseABlock() {
        #expect([16, 8].contains(ActivationLayout.preferredBlock), "oneDNN runs \(OneDNNISA.name)")
    }

    /// ResNets qualify; the report's CNN (max-pooling, flatten) and the recurrent models do not,
    /// so their arithmetic is what it always was; a ResNet whose maps are not whole blocks stays planar.
    @Test func whichNetworksKeepBlockedMaps() throws {
        let resnet = try ModelSpec(file: .builtin(.resnet20)).build(inputShape: [3, 32, 32], classes: 10, maxBatch: 2)
        #expect(resnet.channelBlock == ActivationLayout.preferredBlock)
        let narrow = try ModelSpec(file: .builtin(.resnet20), parameters: ["filters": 4])
            .build(inputShape: [3, 32, 32], classes: 10, maxBatch: 2)
        #expect(narrow.channelBlock == nil)
        #expect(Models.make(.cnn, imageShape: [3, 32, 32], hidden: 0, maxBatch: 2).channelBlock == nil)
        #expect(Models.make(.lstm, imageShape: [1, 28, 28], hidden: 16, maxBatch: 2).channelBlock == nil)
    }

    /// A ResNet (n = 1, maps of 16, 8 and 4 pixels, so that batch norm's float runs of 64
    /// positions end inside a plane as well as at its end) with its maps blocked and planar,
    /// over 3 SGD steps, each pass from the same parameters and running statistics: the same
    /// logits, input gradients, parameter gradients and running statistics, to 1e-5 relative
    /// (plus 1e-6), and the same evaluation logits. The convolutions run the same kernels on the
    /// same numbers either way and the pooling sums in the same order; only batch norm's
    /// per-channel sums are added in another order (float runs of 64 positions per channel
    /// against 16 lanes per plane), which moves a mean or variance by a few units of float's
    /// 6e-8 relative. A value read from the wrong channel is off by order 1. (Left to run apart,
    /// the two would part after a few steps, as differently cut batches do: a ReLU input within
    /// rounding of 0 flips and its gradient with it; docs/performance.md.)
    @Test func blockedMapsComputeWhatPlanarMapsCompute() throws {
        let batch = 6, shape = [3, 16, 16]
        func network(blocked: Bool) throws -> Network {
            var settings = BuildSettings(inputShape: shape, classes: 10, parameters: ["n": 1], maxBatch: batch)
            settings.blocksChannels = blocked
            let network = try ModelFile.builtin(.resnet20).build(settings)
            network.initializeParameters(seed: 3)
            return network
        }
        let blocked = try network(blocked: true), planar = try network(blocked: false)
        #expect(blocked.channelBlock != nil && planar.channelBlock == nil)
        var rng = SplitMix64(seed: 11, stream: 0)
        let x = (0..<(batch * shape.elementCount)).map { _ in rng.uniform(-1, 1) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
        func pass(_ network: Network) -> (logits: [Float], inputGradient: [Float]) {
            network.zeroGradients()
            let logits = Array(UnsafeBufferPointer(start: network.forward(x, batch: batch), count: batch * 10))
            let (_, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
            let dx = network.backward(dLogits, batch: batch, needsInputGradient: true)!
            return (logits, Array(UnsafeBufferPointer(start: dx, count: x.count)))
        }
        let sgd = SGD(count: blocked.parameterCount, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4)
        for step in 0..<3 {
            let (a, b) = (pass(blocked), pass(planar))
            expectClose(a.logits, b.logits, atol: 1e-6, rtol: 1e-5, "step \(step): logits")
            expectClose(a.inputGradient, b.inputGradient, atol: 1e-6, rtol: 1e-5, "step \(step): input gradient")
            expectClose(blocked.gradients.array, planar.gradients.array, atol: 1e-6, rtol: 1e-5, "step \(step): gradients")
            expectClose(blocked.buffers.array, planar.buffers.array, atol: 1e-6, rtol: 1e-5, "step \(step): running statistics")
            sgd.step(parameters: blocked.parameters.pointer, gradients: blocked.gradients.pointer)
            planar.parameters.pointer.update(from: blocked.parameters.pointer, count: blocked.parameterCount)
            planar.copyBuffers(from: blocked)
        }
        blocked.training = false; planar.training = false
        expectClose(Array(UnsafeBufferPointer(start: blocked.forward(x, batch: batch), count: batch * 10)),
                    Array(UnsafeBufferPointer(start: planar.forward(x, batch: batch), count: batch * 10)),
                    atol: 1e-6, rtol: 1e-5, "evaluation logits")
    }
}
