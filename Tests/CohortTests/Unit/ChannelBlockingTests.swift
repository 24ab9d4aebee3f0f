import CohortNN
import CohortOptim
@testable import CohortTensor
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

    /// A ResNet (n = 1, maps of 10, 5 and 3 pixels, so that planes end inside a group of 16
    /// positions and are shorter than one) trained 3 SGD steps with its maps blocked and planar:
    /// the same bits in logits, input gradients, parameter gradients, parameters and running
    /// statistics at every step, and in the evaluation logits. The convolutions run the same
    /// kernels on the same numbers (a reorder copies), the pooling and batch norm add each
    /// channel's values in the same order in either layout, and the elementwise passes are the
    /// same float operations; so nothing may differ, and a value read from the wrong channel
    /// differs by order 1.
    @Test func blockedMapsComputeWhatPlanarMapsCompute() throws {
        let batch = 6, shape = [3, 10, 10]
        func network(blocked: Bool) throws -> Network {
            var settings = BuildSettings(inputShape: shape, classes: 10, parameters: ["n": 1], maxBatch: batch)
            settings.blocksChannels = blocked
            let network = try ModelFile.builtin(.resnet20).build(settings)
            network.initializeParameters(seed: 3)
            return network
        }
        // Both built with the same kernel thread count: oneDNN's weight gradients add per-thread
        // partial sums, and another suite's in-process training may set the count
        // (`KernelThreads.set`) while these are built.
        var blocked: Network, planar: Network, threads: Int
        repeat {
            threads = KernelThreads.openMPThreads
            (blocked, planar) = (try network(blocked: true), try network(blocked: false))
        } while KernelThreads.openMPThreads != threads
        #expect(blocked.channelBlock != nil && planar.channelBlock == nil)
        var rng = SplitMix64(seed: 11, stream: 0)
        let x = (0..<(batch * shape.elementCount)).map { _ in rng.uniform(-1, 1) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
        func step(_ network: Network, _ sgd: SGD) -> (logits: [Float], inputGradient: [Float]) {
            network.zeroGradients()
            let logits = Array(UnsafeBufferPointer(start: network.forward(x, batch: batch), count: batch * 10))
            let (_, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
            let dx = network.backward(dLogits, batch: batch, needsInputGradient: true)!
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
            return (logits, Array(UnsafeBufferPointer(start: dx, count: x.count)))
        }
        let sgdBlocked = SGD(count: blocked.parameterCount, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4),
            sgdPlanar = SGD(count: planar.parameterCount, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4)
        for s in 0..<3 {
            let (a, b) = (step(blocked, sgdBlocked), step(planar, sgdPlanar))
            #expect(a.logits == b.logits, "step \(s): logits")
            #expect(a.inputGradient == b.inputGradient, "step \(s): input gradients")
            #expect(blocked.gradients.array == planar.gradients.array, "step \(s): parameter gradients")
            #expect(blocked.parameters.array == planar.parameters.array, "step \(s): parameters")
            #expect(blocked.buffers.array == planar.buffers.array, "step \(s): running statistics")
        }
        blocked.training = false; planar.training = false
        #expect(Array(UnsafeBufferPointer(start: blocked.forward(x, batch: batch), count: batch * 10))
                == Array(UnsafeBufferPointer(start: planar.forward(x, batch: batch), count: batch * 10)),
                "evaluation logits")
    }
}
