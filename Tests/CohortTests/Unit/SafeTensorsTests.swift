import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import CohortTraining
import Foundation
import Testing

@Suite struct SafeTensorsTests {
    let scratch = ScratchDirectory("cohort-st")
    var path: String { "\(scratch.path)/model.safetensors" }

    @Test func roundTripWithPyTorchNamesAndShapes() throws {
        let network = TestModels.cnn(channels: 3, size: 32, maxBatch: 1)
        network.initializeParameters(seed: 1)
        try SafeTensors.write(tensors: network.tensors, storage: network.parameters.pointer, to: path)
        let read = try SafeTensors.read(path)
        #expect(Set(read.keys) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"])
        #expect(read["conv1.weight"]?.shape == [32, 3, 5, 5])
        #expect(read["conv2.weight"]?.shape == [64, 32, 5, 5])
        #expect(read["fc.weight"]?.shape == [10, 4096])
        let copy = TestModels.cnn(channels: 3, size: 32, maxBatch: 1)
        try SafeTensors.load(path, into: copy)
        #expect(copy.parameters.array == network.parameters.array)
        // The header is padded to 8 bytes and says how long it is.
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        #expect(headerLength % 8 == 0)
        #expect(bytes.count == 8 + headerLength + network.parameterCount * 4)
    }

    @Test func recurrentNamesMatchTorch() {
        let names = Models.make(.lstm, imageShape: [1, 28, 28], hidden: 16, maxBatch: 1).tensors.map(\.name)
        #expect(names == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "fc.weight", "fc.bias"])
    }

    @Test func truncatedOrMismatchedFilesAreRefused() throws {
        let network = Models.make(.gru, imageShape: [1, 28, 28], hidden: 8, maxBatch: 1)
        try SafeTensors.write(tensors: network.tensors, storage: network.parameters.pointer, to: path)
        let bytes = FileManager.default.contents(atPath: path)!
        put(path, bytes.prefix(bytes.count - 4))
        expectError(.failure) { _ = try SafeTensors.read(path) }
        put(path, Data([1, 2, 3]))
        expectError(.failure) { _ = try SafeTensors.read(path) }
        try SafeTensors.write(tensors: network.tensors, storage: network.parameters.pointer, to: path)
        let other = Models.make(.gru, imageShape: [1, 28, 28], hidden: 9, maxBatch: 1)
        expectError(.failure) { _ = try SafeTensors.load(path, into: other) }
    }
}
