import CohortBase
@testable import CohortBench
@testable import CohortLaunch
@testable import CohortNN
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Testing

/// Every backward checked against central finite differences of the forward.
@Suite struct GradientCheckTests {
    /// Checks `layer` on objective `Σ y·R` for a fixed random `R`, through its input and all parameters.
    func checkLayer(_ layer: Layer, batch: Int, input values: [Float]? = nil, epsilon: Float = 1e-2,
                    _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let network = Network(layers: [("layer", layer)], maxBatch: batch)
        network.initializeParameters(seed: 7)
        let inputCount = batch * layer.inputShape.elementCount, outputCount = batch * layer.outputShape.elementCount
        let x = FloatBuffer(values ?? randomValues(inputCount, seed: 1))
        let r = FloatBuffer(randomValues(outputCount, seed: 2))
        checkFiniteDifferences(
            network: network, input: x, epsilon: epsilon,
            objective: {
                let y = network.forward(x.pointer, batch: batch)
                return (0..<outputCount).reduce(0.0) { $0 + Double(y[$1]) * Double(r[$1]) }
            },
            gradient: {
                _ = network.forward(x.pointer, batch: batch)
                return network.backward(r.pointer, batch: batch, needsInputGradient: true).map { array($0, inputCount) }
            }, what, sourceLocation: sourceLocation)
    }

    @Test func conv2DStridedPadded() {
        checkLayer(Conv2D(inChannels: 2, outChannels: 3, height: 5, width: 5, kernel: 3, stride: 2, padding: 1, maxBatch: 2),
                   batch: 2, "conv k3 s2 p1")
    }

    @Test func conv2DFiveByFive() {
        checkLayer(Conv2D(inChannels: 2, outChannels: 2, height: 6, width: 6, kernel: 5, padding: 2, maxBatch: 2),
                   batch: 2, "conv k5 p2")
    }

    @Test func maxPool() {
        // Distinct inputs 0.05 apart: a perturbation of 0.01 never changes a window's winner.
        var rng = SplitMix64(seed: 5)
        var values = (0..<(2 * 3 * 6 * 6)).map { Float($0) * 0.05 }
        values.shuffle(using: &rng)
        checkLayer(MaxPool2D(channels: 3, height: 6, width: 6, kernel: 2, maxBatch: 2), batch: 2, input: values, "pool k2")
        checkLayer(MaxPool2D(channels: 3, height: 6, width: 6, kernel: 3, stride: 2, padding: 1, maxBatch: 2),
                   batch: 2, input: values, "pool k3 s2 p1")
        // Rows of 20: the 2×2 backward's eight-input steps (16 inputs) and the inputs after them.
        var wide = (0..<(2 * 3 * 4 * 20)).map { Float($0) * 0.05 }
        wide.shuffle(using: &rng)
        checkLayer(MaxPool2D(channels: 3, height: 4, width: 20, kernel: 2, maxBatch: 2), batch: 2, input: wide, "pool k2 w20")
    }

    @Test func relu() {
        checkLayer(ReLU(shape: [3, 4], maxBatch: 2), batch: 2, input: randomValues(24, seed: 3, margin: 0.05), "relu")
    }

    /// In a network, a max-pooling after a ReLU applies the ReLU's mask in its own backward
    /// and the ReLU's backward passes the gradient through: the result must equal the two
    /// layers' separate backward passes, for the 2×2 fast path (rows of 20: its eight-input
    /// steps and the inputs after them) and for overlapping windows.
    @Test(arguments: [(2, 2, 0), (3, 2, 1)])
    func reluThenPoolEqualsSeparateBackwards(kernel: Int, stride: Int, padding: Int) throws {
        let shape: Shape = [3, 6, 20], batch = 2
        func pool() -> MaxPool2D {
            MaxPool2D(channels: 3, height: 6, width: 20, kernel: kernel, stride: stride, padding: padding, maxBatch: batch)
        }
        let x = FloatBuffer(randomValues(batch * shape.elementCount, seed: 8))
        let fused = Network(layers: [(nil, ReLU(shape: shape, maxBatch: batch)), (nil, pool())], maxBatch: batch)
        let (relu, alone) = (ReLU(shape: shape, maxBatch: batch), pool())
        let outputCount = batch * alone.outputShape.elementCount
        let dy = FloatBuffer(randomValues(outputCount, seed: 9))

        let fusedOut = array(fused.forward(x.pointer, batch: batch), outputCount)
        let fusedGrad = try #require(fused.backward(dy.pointer, batch: batch, needsInputGradient: true))
        let separateOut = array(alone.forward(relu.forward(x.pointer, batch: batch), batch: batch), outputCount)
        let poolGrad = try #require(alone.backward(dy.pointer, batch: batch, needsInputGradient: true))
        let separateGrad = try #require(relu.backward(poolGrad, batch: batch, needsInputGradient: true))
        #expect(fusedOut == separateOut)
        let count = batch * shape.elementCount
        #expect(array(fusedGrad, count) == array(separateGrad, count))
        // Both are right, not merely equal: a negative input never gets a gradient.
        #expect(zip(array(UnsafePointer(x.pointer), count), array(fusedGrad, count)).allSatisfy { $0.0 > 0 || $0.1 == 0 })
        #expect(array(fusedGrad, count).contains { $0 != 0 })
    }

    /// A residual block's layers: `conv 3x3 (stride) -> batch norm -> ReLU -> conv 3x3 -> batch
    /// norm`, and a `conv 1x1 -> batch norm` projection where the shape changes.
    static func basicBlockLayers(in cin: Int, out cout: Int, stride: Int, size: Int, batch: Int)
        -> (body: [(name: String?, layer: Layer)], shortcut: [(name: String?, layer: Layer)]) {
        let half = (size - 1) / stride + 1, shape: Shape = [cout, half, half]
        let body: [(name: String?, layer: Layer)] = [
            ("conv1", Conv2D(inChannels: cin, outChannels: cout, height: size, width: size, kernel: 3, stride: stride,
                             padding: 1, bias: false, maxBatch: batch)),
            ("bn1", BatchNorm(shape: shape, maxBatch: batch)), (nil, ReLU(shape: shape, maxBatch: batch)),
            ("conv2", Conv2D(inChannels: cout, outChannels: cout, height: half, width: half, kernel: 3, padding: 1,
                             bias: false, maxBatch: batch)),
            ("bn2", BatchNorm(shape: shape, maxBatch: batch))]
        let shortcut: [(name: String?, layer: Layer)] = stride == 1 && cin == cout ? [] : [
            (nil, Conv2D(inChannels: cin, outChannels: cout, height: size, width: size, kernel: 1, stride: stride,
                         bias: false, maxBatch: batch)),
            (nil, BatchNorm(shape: shape, maxBatch: batch))]
        return (body, shortcut)
    }

    /// A residual block applies the batch norms that close its body and shortcut as it sums them
    /// (`BatchNorm.foldedIntoSum`). Against the same layers run one by one, with the sum, its ReLU
    /// and their backward written out here: the same bits forward (training and evaluation), in
    /// the input gradient and in every parameter gradient.
    @Test(arguments: [false, true])
    func foldedBatchNormsGiveTheSeparatePassesBits(projection: Bool) throws {
        let (cin, cout, stride, size, batch) = projection ? (2, 4, 2, 7, 3) : (4, 4, 1, 6, 3)
        let parts = { Self.basicBlockLayers(in: cin, out: cout, stride: stride, size: size, batch: batch) }
        let (body, shortcut) = parts()
        let outShape = body.last!.layer.outputShape
        let block = Network(layers: [("block", Residual(body: body, shortcut: shortcut,
                                                          after: [(nil, ReLU(shape: outShape, maxBatch: batch))],
                                                          maxBatch: batch))], maxBatch: batch)
        block.initializeParameters(seed: 7)
        // The reference: the body and the shortcut as plain chains, holding the block's
        // parameters (body first, then shortcut) and running statistics.
        let (bodyLayers, shortcutLayers) = parts()
        let bodyNet = Network(layers: bodyLayers, maxBatch: batch)
        let shortcutNet = projection ? Network(layers: shortcutLayers, maxBatch: batch) : nil
        let bodyCount = bodyNet.parameterCount, bodyBuffers = bodyNet.buffers.count
        bodyNet.parameters.pointer.update(from: block.parameters.pointer, count: bodyCount)
        bodyNet.buffers.pointer.update(from: block.buffers.pointer, count: bodyBuffers)
        if let shortcutNet {
            shortcutNet.parameters.pointer.update(from: block.parameters.pointer + bodyCount, count: shortcutNet.parameterCount)
            shortcutNet.buffers.pointer.update(from: block.buffers.pointer + bodyBuffers, count: shortcutNet.buffers.count)
        }
        let inCount = batch * body[0].layer.inputShape.elementCount, outCount = batch * outShape.elementCount
        let x = FloatBuffer(randomValues(inCount, seed: 3)), dy = FloatBuffer(randomValues(outCount, seed: 4))

        func separateForward(_ x: UnsafePointer<Float>) -> [Float] {
            let b = array(bodyNet.forward(x, batch: batch), outCount)
            let s = shortcutNet.map { array($0.forward(x, batch: batch), outCount) } ?? array(x, outCount)
            return zip(b, s).map { let v = $0 + $1; return v > 0 ? v : 0 }
        }
        let y = separateForward(x.pointer)
        #expect(array(block.forward(x.pointer, batch: batch), outCount) == y, "training forward")

        let blockDx = array(try #require(block.backward(dy.pointer, batch: batch, needsInputGradient: true)), inCount)
        let g = FloatBuffer(zip(y, array(dy.pointer, outCount)).map { $0 > 0 ? $1 : 0 })
        let fromBody = array(try #require(bodyNet.backward(g.pointer, batch: batch, needsInputGradient: true)), inCount)
        let fromShortcut = try shortcutNet.map {
            array(try #require($0.backward(g.pointer, batch: batch, needsInputGradient: true)), inCount)
        } ?? g.array
        #expect(blockDx == zip(fromBody, fromShortcut).map(+), "input gradient")
        #expect(Array(block.gradients.array[0..<bodyCount]) == bodyNet.gradients.array, "body's parameter gradients")
        if let shortcutNet {
            #expect(Array(block.gradients.array[bodyCount...]) == shortcutNet.gradients.array, "shortcut's parameter gradients")
        }
        #expect(blockDx.contains { $0 != 0 })

        for net in [block, bodyNet] + (shortcutNet.map { [$0] } ?? []) { net.training = false }
        let x2 = FloatBuffer(randomValues(inCount, seed: 5))
        #expect(array(block.forward(x2.pointer, batch: batch), outCount) == separateForward(x2.pointer), "evaluation forward")
    }

    /// A residual block after a ReLU (here the ReLU closing the block before) masks its input
    /// gradient with `[x > 0]` as it sums it, and the ReLU passes its gradient on: the same bits
    /// as the two blocks' backward passes one after the other.
    @Test func aBlockAfterAReLUMasksItsInputGradient() throws {
        let batch = 2, size = 6
        func block() -> Residual {
            let (body, shortcut) = Self.basicBlockLayers(in: 4, out: 4, stride: 1, size: size, batch: batch)
            return Residual(body: body, shortcut: shortcut, after: [(nil, ReLU(shape: [4, size, size], maxBatch: batch))],
                            maxBatch: batch)
        }
        let chained = Network(layers: [("a", block()), ("b", block())], maxBatch: batch)
        chained.initializeParameters(seed: 7)
        let second = try #require(chained.layers[1] as? Residual)
        #expect(second.masksInputGradient, "the second block masks the first one's ReLU gradient")
        let (a, b) = (Network(layers: [("a", block())], maxBatch: batch), Network(layers: [("b", block())], maxBatch: batch))
        let half = a.parameterCount
        a.parameters.pointer.update(from: chained.parameters.pointer, count: half)
        b.parameters.pointer.update(from: chained.parameters.pointer + half, count: half)
        let count = batch * 4 * size * size
        let x = FloatBuffer(randomValues(count, seed: 3)), dy = FloatBuffer(randomValues(count, seed: 4))

        let between = a.forward(x.pointer, batch: batch)
        #expect(array(between, count).contains(0), "some of the second block's inputs are rectified to 0")
        #expect(array(chained.forward(x.pointer, batch: batch), count) == array(b.forward(between, batch: batch), count))
        let dx = array(try #require(chained.backward(dy.pointer, batch: batch, needsInputGradient: true)), count)
        let fromB = try #require(b.backward(dy.pointer, batch: batch, needsInputGradient: true))
        let separate = array(try #require(a.backward(fromB, batch: batch, needsInputGradient: true)), count)
        #expect(dx == separate)
        #expect(chained.gradients.array == a.gradients.array + b.gradients.array)
        #expect(dx.contains { $0 != 0 })
    }

    @Test func conv2DWithoutBias() {
        checkLayer(Conv2D(inChannels: 2, outChannels: 3, height: 5, width: 5, kernel: 3, stride: 2, padding: 1, bias: false,
                          maxBatch: 2), batch: 2, "conv k3 s2 p1 without bias")
    }

    /// Training mode: the batch's statistics depend on every input, so each input's gradient
    /// has the terms through the mean and the variance too.
    @Test func batchNorm() {
        checkLayer(BatchNorm(shape: [3, 4, 4], maxBatch: 3), batch: 3, "batch norm 2-D")
        checkLayer(BatchNorm(shape: [5], maxBatch: 4), batch: 4, "batch norm 1-D")
        checkLayer(BatchNorm(shape: [2, 6], maxBatch: 3), batch: 3, "batch norm 1-D over a length")
    }

    @Test func averagePool() {
        checkLayer(AvgPool2D(channels: 3, height: 6, width: 6, kernel: 2, maxBatch: 2), batch: 2, "avg pool k2")
        checkLayer(AvgPool2D(channels: 2, height: 7, width: 7, kernel: 3, stride: 2, padding: 1, maxBatch: 2), batch: 2,
                   "avg pool k3 s2 p1")
        checkLayer(GlobalAvgPool2D(channels: 3, height: 5, width: 4, maxBatch: 2), batch: 2, "global avg pool")
    }

    /// With the batch's sample keys fixed, the mask is fixed and the layer is linear in its input.
    @Test func dropout() {
        let keys = SampleKeys()
        keys.epoch = 3
        keys.samples = [17, 4]
        let dropout = Dropout(shape: [3, 5], probability: 0.4, seed: 9, stream: 100, keys: keys, maxBatch: 2)
        checkLayer(dropout, batch: 2, "dropout")
    }

    /// A projection shortcut (1×1 convolution and batch norm) beside a body of convolutions and
    /// batch norms, and an identity shortcut; no ReLU, whose kink finite differences cannot cross.
    @Test func residual() {
        func body(_ c: Int, _ out: Int, stride: Int, size: Int) -> [(name: String?, layer: Layer)] {
            let half = (size - 1) / stride + 1
            return [("conv1", Conv2D(inChannels: c, outChannels: out, height: size, width: size, kernel: 3, stride: stride,
                                     padding: 1, bias: false, maxBatch: 2)),
                    ("bn1", BatchNorm(shape: [out, half, half], maxBatch: 2)),
                    ("conv2", Conv2D(inChannels: out, outChannels: out, height: half, width: half, kernel: 3, padding: 1,
                                     maxBatch: 2))]
        }
        let projection: [(name: String?, layer: Layer)] = [
            (nil, Conv2D(inChannels: 2, outChannels: 3, height: 6, width: 6, kernel: 1, stride: 2, bias: false, maxBatch: 2)),
            (nil, BatchNorm(shape: [3, 3, 3], maxBatch: 2))]
        checkLayer(Residual(body: body(2, 3, stride: 2, size: 6), shortcut: projection, after: [], maxBatch: 2), batch: 2,
                   "residual with a projection")
        checkLayer(Residual(body: body(3, 3, stride: 1, size: 4), shortcut: [], after: [], maxBatch: 2), batch: 2,
                   "residual with the identity")
        // Batch norms closing the body and the projection, applied by the sum.
        checkLayer(Residual(body: body(2, 3, stride: 2, size: 6) + [("bn2", BatchNorm(shape: [3, 3, 3], maxBatch: 2))],
                            shortcut: projection, after: [], maxBatch: 2), batch: 2, "residual with folded batch norms")
    }

    @Test func linear() {
        checkLayer(Linear(inFeatures: 5, outFeatures: 4, maxBatch: 3), batch: 3, "linear")
    }

    @Test(arguments: CellKind.allCases)
    func recurrent(kind: CellKind) {
        checkLayer(Recurrent(kind: kind, inputSize: 4, hidden: 5, steps: 3, maxBatch: 2), batch: 2, "\(kind)")
    }

    /// The gradient of the loss, plain and with label smoothing (against the smoothed objective).
    @Test(arguments: [Float(0), 0.1, 0.3])
    func softmaxCrossEntropy(labelSmoothing: Float) {
        let batch = 3, classes = 5
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: batch, labelSmoothing: labelSmoothing)
        var logits = randomValues(batch * classes, seed: 11).map { $0 * 3 }
        let labels: [Int32] = [0, 4, 2]
        let (_, grad) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
        let analytic = array(grad, batch * classes)
        for i in 0..<logits.count {
            let saved = logits[i], eps: Float = 1e-2
            logits[i] = saved + eps
            let up = loss.evaluate(logits: logits, labels: labels, batch: batch, smoothed: true).lossSum / Double(batch)
            logits[i] = saved - eps
            let down = loss.evaluate(logits: logits, labels: labels, batch: batch, smoothed: true).lossSum / Double(batch)
            logits[i] = saved
            let numeric = (up - down) / Double(2 * eps)
            #expect(abs(numeric - Double(analytic[i])) <= 1e-3, "dlogits[\(i)]: \(analytic[i]) vs \(numeric)")
        }
    }

    @Test func softmaxCrossEntropyIsStableForHugeLogits() {
        let loss = SoftmaxCrossEntropy(classes: 3, maxBatch: 1)
        let result = loss.evaluate(logits: [1000, 0, -1000], labels: [1], batch: 1)
        #expect(abs(result.lossSum - 1000) < 1e-3)
        #expect(result.correct == 0)
    }

    /// The whole loss of a model (mean cross-entropy over the batch) w.r.t. every parameter.
    func checkModel(_ network: Network, batch: Int, labels: [Int32], epsilon: Float, _ what: String) {
        network.initializeParameters(seed: 3)
        let inputCount = batch * network.inputShape.elementCount
        let x = FloatBuffer(randomValues(inputCount, seed: 4))
        let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
        checkFiniteDifferences(
            network: network, input: x, epsilon: epsilon, samples: 40,
            objective: {
                let logits = network.forward(x.pointer, batch: batch)
                return loss.evaluate(logits: logits, labels: labels, batch: batch).lossSum / Double(batch)
            },
            gradient: {
                let logits = network.forward(x.pointer, batch: batch)
                let (_, g) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
                return network.backward(g, batch: batch, needsInputGradient: true).map { array($0, inputCount) }
            }, what)
    }

    @Test func wholeCNN() {
        checkModel(TestModels.cnn(channels: 2, size: 8, filters: (3, 4), maxBatch: 2), batch: 2, labels: [3, 8],
                   epsilon: 1e-3, "cnn")
    }

    @Test(arguments: CellKind.allCases)
    func wholeRecurrentModel(kind: CellKind) {
        checkModel(TestModels.sequence(ModelKind(rawValue: kind.rawValue)!, steps: 4, inputSize: 3, hidden: 5, maxBatch: 2), batch: 2, labels: [1, 9],
                   epsilon: 1e-2, "\(kind) model")
    }
}
