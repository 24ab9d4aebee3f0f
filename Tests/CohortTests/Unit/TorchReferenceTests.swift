import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
import CohortOptim
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Foundation
import Testing

/// Forward outputs and gradients compared with PyTorch's on the same inputs and
/// parameters (`Fixtures/make_torch_fixtures.py`).
@Suite struct TorchReferenceTests {
    /// Runs `layer` forward on the fixture's `x`, backward on its `dy`, and compares `y`,
    /// `dx` and every parameter gradient. `prefix` is the fixture's name for the layer's parameters.
    @discardableResult
    func compare(_ layer: Layer, fixture name: String, prefix: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) -> Network {
        let c = Fixtures.torchCase(name)
        let x = FixtureTensor(c["x"]), dy = FixtureTensor(c["dy"]), y = FixtureTensor(c["y"]), dx = FixtureTensor(c["dx"])
        let batch = x.shape[0]
        let network = Network(layers: [("layer", layer)], maxBatch: batch)
        let params = c["params"] as! [String: Any], grads = c["grads"] as! [String: Any]
        for t in network.tensors {
            let key = prefix + t.name.dropFirst("layer.".count)
            let p = FixtureTensor(params[key])
            #expect(p.shape == t.shape, "\(name): shape of \(key)", sourceLocation: sourceLocation)
            (network.parameters.pointer + t.offset).update(from: p.data, count: t.count)
        }
        network.zeroGradients()
        let out = network.forward(x.data, batch: batch)
        expectClose(array(out, y.data.count), y.data, "\(name) y", sourceLocation: sourceLocation)
        let inputGrad = network.backward(dy.data, batch: batch, needsInputGradient: true)!
        expectClose(array(inputGrad, dx.data.count), dx.data, "\(name) dx", sourceLocation: sourceLocation)
        for t in network.tensors {
            let key = prefix + t.name.dropFirst("layer.".count)
            let g = FixtureTensor(grads[key])
            expectClose(Array(network.gradients.array[t.offset..<(t.offset + t.count)]), g.data, "\(name) d\(key)",
                        sourceLocation: sourceLocation)
        }
        return network
    }

    @Test func conv2D() {
        for name in ["conv2d_k3_s2_p1", "conv2d_k5_s1_p2"] {
            let config = Fixtures.torchCase(name)["config"] as! [String: Int]
            let x = FixtureTensor(Fixtures.torchCase(name)["x"])
            compare(Conv2D(inChannels: config["in"]!, outChannels: config["out"]!, height: x.shape[2], width: x.shape[3],
                           kernel: config["kernel"]!, stride: config["stride"]!, padding: config["padding"]!,
                           maxBatch: x.shape[0]), fixture: name)
        }
    }

    @Test func conv2DWithoutBias() {
        let x = FixtureTensor(Fixtures.torchCase("conv2d_k3_s2_p1_nobias")["x"])
        let network = compare(Conv2D(inChannels: 3, outChannels: 4, height: x.shape[2], width: x.shape[3], kernel: 3, stride: 2,
                                     padding: 1, bias: false, maxBatch: x.shape[0]), fixture: "conv2d_k3_s2_p1_nobias")
        #expect(network.tensors.map(\.name) == ["layer.weight"])
    }

    /// Training forward and backward with the batch's statistics, the running statistics it
    /// leaves (PyTorch's names, unbiased variance, one batch tracked), and an evaluation forward
    /// with them.
    @Test(arguments: ["batchnorm2d", "batchnorm1d", "batchnorm1d_length"])
    func batchNorm(fixture name: String) {
        let c = Fixtures.torchCase(name)
        let x = FixtureTensor(c["x"])
        let network = compare(BatchNorm(shape: Array(x.shape.dropFirst()), maxBatch: x.shape[0]), fixture: name)
        let buffers = c["buffers"] as! [String: Any]
        #expect(network.bufferTensors.map(\.name) == ["layer.running_mean", "layer.running_var", "layer.num_batches_tracked"])
        for t in network.bufferTensors {
            let expected = FixtureTensor(buffers[String(t.name.dropFirst("layer.".count))])
            #expect(t.shape == expected.shape, "\(name): shape of \(t.name)")
            expectClose(Array(network.buffers.array[t.offset..<(t.offset + t.count)]), expected.data, "\(name) \(t.name)")
        }
        let evaluation = c["eval"] as! [String: Any]
        let xe = FixtureTensor(evaluation["x"]), ye = FixtureTensor(evaluation["y"])
        network.training = false
        expectClose(array(network.forward(xe.data, batch: xe.shape[0]), ye.data.count), ye.data, "\(name) evaluation y")
    }

    @Test func averagePool2D() {
        for name in ["avgpool_k2", "avgpool_k3_s2_p1"] {
            let config = Fixtures.torchCase(name)["config"] as! [String: Int]
            let x = FixtureTensor(Fixtures.torchCase(name)["x"])
            compare(AvgPool2D(channels: x.shape[1], height: x.shape[2], width: x.shape[3], kernel: config["kernel"]!,
                              stride: config["stride"]!, padding: config["padding"]!, maxBatch: x.shape[0]), fixture: name)
        }
        let x = FixtureTensor(Fixtures.torchCase("global_avgpool")["x"])
        compare(GlobalAvgPool2D(channels: x.shape[1], height: x.shape[2], width: x.shape[3], maxBatch: x.shape[0]),
                fixture: "global_avgpool")
    }

    /// The reference's ResNet block, with a projection shortcut and with the identity: the same
    /// parameter names (`conv1.weight`, `shortcut.0.weight`, ...) and PyTorch's numbers.
    @Test(arguments: ["basic_block_projection", "basic_block_identity"])
    func basicBlock(fixture name: String) {
        let c = Fixtures.torchCase(name)
        let config = c["config"] as! [String: Int]
        let x = FixtureTensor(c["x"])
        let (cin, cout, stride, size, batch) = (config["in"]!, config["out"]!, config["stride"]!, x.shape[2], x.shape[0])
        let half = (size - 1) / stride + 1
        let body: [(name: String?, layer: Layer)] = [
            ("conv1", Conv2D(inChannels: cin, outChannels: cout, height: size, width: size, kernel: 3, stride: stride,
                             padding: 1, bias: false, maxBatch: batch)),
            ("bn1", BatchNorm(shape: [cout, half, half], maxBatch: batch)),
            (nil, ReLU(shape: [cout, half, half], maxBatch: batch)),
            ("conv2", Conv2D(inChannels: cout, outChannels: cout, height: half, width: half, kernel: 3, padding: 1,
                             bias: false, maxBatch: batch)),
            ("bn2", BatchNorm(shape: [cout, half, half], maxBatch: batch))]
        let projection: [(name: String?, layer: Layer)] = stride == 1 && cin == cout ? [] : [
            (nil, Conv2D(inChannels: cin, outChannels: cout, height: size, width: size, kernel: 1, stride: stride, bias: false,
                         maxBatch: batch)),
            (nil, BatchNorm(shape: [cout, half, half], maxBatch: batch))]
        let block = Residual(body: body, shortcut: projection, after: [(nil, ReLU(shape: [cout, half, half], maxBatch: batch))],
                             maxBatch: batch)
        let network = compare(block, fixture: name)
        let expected = (c["params"] as! [String: Any]).keys.map { "layer." + $0 }
        #expect(Set(network.tensors.map(\.name)) == Set(expected))
    }

    /// ResNet (n = 1) started from PyTorch's initial weights (`--init`'s loader, strict) takes
    /// PyTorch's 3 SGD steps (`Fixtures/make_resnet_steps.py`): every parameter and running
    /// statistic within 1e-4 relative (plus 1e-5). Both sides compute in float32 with their own
    /// kernels' summation orders: each gradient element's sum of up to 4·8·8 products differs
    /// by a few units of float's 6e-8 relative, batch norm divides by the batch's deviation
    /// (of order 1 here), and three steps of lr 0.1 add three such differences to weights of
    /// order 0.1 to 1, far below 1e-4; a wrong layer, name or buffer update is off by far more.
    @Test func resnetStepsFromPyTorchsStart() throws {
        let directory = Fixtures.directory
        let c = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("resnet_steps.json")))
            as! [String: Any]
        let x = FixtureTensor(c["x"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let batch = x.shape[0]
        let network = try ModelSpec(file: .builtin(.resnet20), parameters: ["n": c["n"] as! Int])
            .build(inputShape: Array(x.shape.dropFirst()), classes: 10, maxBatch: batch)
        try SafeTensors.load(directory.appendingPathComponent("resnet_steps_initial.safetensors").path, into: network)
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
        let sgd = SGD(count: network.parameterCount, learningRate: Float(c["lr"] as! Double),
                      momentum: Float(c["momentum"] as! Double), weightDecay: Float(c["weight_decay"] as! Double),
                      nesterov: c["nesterov"] as! Bool)
        for _ in 0..<(c["steps"] as! Int) {
            network.zeroGradients()
            let logits = network.forward(x.data, batch: batch)
            let (_, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
            network.backward(dLogits, batch: batch)
            sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
        }
        let final = try SafeTensors.read(directory.appendingPathComponent("resnet_steps_final.safetensors").path)
        #expect(Set(final.keys) == Set((network.tensors + network.bufferTensors).map(\.name)))
        for (t, storage) in network.tensors.map({ ($0, network.parameters) }) + network.bufferTensors.map({ ($0, network.buffers) }) {
            let expected = try #require(final[t.name])
            expectClose(Array(storage.array[t.offset..<(t.offset + t.count)]), expected.values, atol: 1e-5, rtol: 1e-4,
                        "after 3 steps: \(t.name)")
        }
    }

    @Test func maxPool2D() {
        for name in ["maxpool_k2", "maxpool_k3_s2_p1"] {
            let config = Fixtures.torchCase(name)["config"] as! [String: Int]
            let x = FixtureTensor(Fixtures.torchCase(name)["x"])
            compare(MaxPool2D(channels: x.shape[1], height: x.shape[2], width: x.shape[3], kernel: config["kernel"]!,
                              stride: config["stride"]!, padding: config["padding"]!, maxBatch: x.shape[0]), fixture: name)
        }
    }

    @Test func linear() {
        compare(Linear(inFeatures: 5, outFeatures: 4, maxBatch: 3), fixture: "linear")
    }

    @Test(arguments: CellKind.allCases)
    func recurrent(kind: CellKind) {
        compare(Recurrent(kind: kind, inputSize: 5, hidden: 6, steps: 4, maxBatch: 3), fixture: kind.rawValue,
                prefix: "rnn.")
    }

    @Test func crossEntropy() {
        let c = Fixtures.torchCase("cross_entropy")
        let logits = FixtureTensor(c["logits"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let batch = logits.shape[0]
        let loss = SoftmaxCrossEntropy(classes: logits.shape[1], maxBatch: batch)
        let (result, grad) = loss.forwardBackward(logits: logits.data, labels: labels, batch: batch, scale: 1 / Float(batch))
        #expect(abs(result.lossSum / Double(batch) - (c["loss"] as! Double)) < 1e-5)
        expectClose(array(grad, logits.data.count), FixtureTensor(c["dlogits"]).data, "dlogits")
    }

    /// `F.cross_entropy(logits, labels, label_smoothing=0.1)`: the smoothed loss and its
    /// gradient; evaluation's plain loss is the unsmoothed one.
    @Test func crossEntropyWithLabelSmoothing() {
        let c = Fixtures.torchCase("cross_entropy_smoothed")
        let logits = FixtureTensor(c["logits"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let batch = logits.shape[0], smoothing = Float(c["label_smoothing"] as! Double)
        let loss = SoftmaxCrossEntropy(classes: logits.shape[1], maxBatch: batch, labelSmoothing: smoothing)
        let (result, grad) = loss.forwardBackward(logits: logits.data, labels: labels, batch: batch, scale: 1 / Float(batch))
        #expect(abs(result.lossSum / Double(batch) - (c["loss"] as! Double)) < 1e-5)
        expectClose(array(grad, logits.data.count), FixtureTensor(c["dlogits"]).data, "dlogits")
        let smoothed = loss.evaluate(logits: logits.data, labels: labels, batch: batch, smoothed: true).lossSum
        #expect(smoothed == result.lossSum)
        let plain = SoftmaxCrossEntropy(classes: logits.shape[1], maxBatch: batch)
            .evaluate(logits: logits.data, labels: labels, batch: batch).lossSum
        #expect(loss.evaluate(logits: logits.data, labels: labels, batch: batch).lossSum == plain)
    }

    /// Logits, mean loss and every parameter gradient of a whole model.
    func compareModel(_ network: Network, fixture name: String) {
        let c = Fixtures.torchCase(name)
        let x = FixtureTensor(c["x"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let batch = x.shape[0]
        loadParameters(c["params"] as! [String: Any], into: network)
        network.zeroGradients()
        let logits = network.forward(x.data, batch: batch)
        expectClose(array(logits, batch * 10), FixtureTensor(c["logits"]).data, "\(name) logits")
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
        let (result, g) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
        #expect(abs(result.lossSum / Double(batch) - (c["loss"] as! Double)) < 1e-5, "\(name) loss")
        network.backward(g, batch: batch)
        let grads = c["grads"] as! [String: Any]
        for t in network.tensors {
            expectClose(Array(network.gradients.array[t.offset..<(t.offset + t.count)]), FixtureTensor(grads[t.name]).data,
                        "\(name) d\(t.name)")
        }
    }

    @Test func cnnModel() {
        compareModel(TestModels.cnn(channels: 1, size: 8, filters: (4, 6), maxBatch: 3), fixture: "cnn_model")
    }

    @Test func gruModel() {
        compareModel(Models.make(.gru, imageShape: [1, 4, 5], hidden: 6, maxBatch: 3), fixture: "gru_model")
    }

    /// Several steps of each optimizer against `torch.optim`, from the same start and gradients.
    @Test func optimizersMatchTorch() {
        let cases = Fixtures.torch["optimizers"] as! [[String: Any]]
        for c in cases {
            let name = c["name"] as! String
            var p = FixtureTensor(c["start"]).data
            let n = p.count
            let optimizer: Optimizer
            switch name {
            case "sgd": optimizer = SGD(count: n, learningRate: 0.1)
            case "sgd_momentum_wd": optimizer = SGD(count: n, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
            case "sgd_nesterov": optimizer = SGD(count: n, learningRate: 0.1, momentum: 0.9, nesterov: true)
            case "adam": optimizer = Adam(count: n, learningRate: 0.01)
            case "adam_wd": optimizer = Adam(count: n, learningRate: 0.01, weightDecay: 0.1)
            case "adamw": optimizer = OptimizerKind.adamw.make(count: n, learningRate: 0.01)
            case "adagrad": optimizer = Adagrad(count: n, learningRate: 0.1)
            case "rmsprop": optimizer = RMSProp(count: n, learningRate: 0.01)
            case "rmsprop_momentum": optimizer = RMSProp(count: n, learningRate: 0.01, momentum: 0.9)
            default: Issue.record("unknown optimizer fixture \(name)"); continue
            }
            let grads = (c["grads"] as! [Any]).map { FixtureTensor($0).data }
            let after = (c["after"] as! [Any]).map { FixtureTensor($0).data }
            for (step, (g, expected)) in zip(grads, after).enumerated() {
                p.withUnsafeMutableBufferPointer { optimizer.step(parameters: $0.baseAddress!, gradients: g) }
                expectClose(p, expected, atol: 1e-6, rtol: 1e-5, "\(name) step \(step + 1)")
            }
        }
    }
}
