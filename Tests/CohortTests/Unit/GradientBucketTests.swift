import CohortBase
@testable import CohortBench
import CohortDistributed
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
@testable import CohortTraining
import Testing

/// How gradients are grouped for the allreduce.
@Suite struct GradientBucketTests {
    @Test func bucketsCoverEveryParameterOnceInReverseLayerOrder() {
        let network = TestModels.cnn(channels: 3, size: 32, maxBatch: 1)
        // fc 160 KiB, conv2 200 KiB, conv1 9.5 KiB; 0.1 MiB buckets: fc alone, conv2 alone, conv1 alone.
        let reducer = GradientReducer(network: network, communicator: SingleProcessCommunicator(),
                                      bucketBytes: 100_000, overlap: true)
        #expect(reducer.buckets.map(\.lowestLayer) == [7, 3, 0])
        #expect(reducer.buckets.map(\.range) == [network.layerRanges[7], network.layerRanges[3], network.layerRanges[0]])
        // 25 MiB: one bucket with everything.
        let one = GradientReducer(network: network, communicator: SingleProcessCommunicator(),
                                  bucketBytes: 25 << 20, overlap: true)
        #expect(one.buckets.map(\.range) == [0..<network.parameterCount])
    }
}
