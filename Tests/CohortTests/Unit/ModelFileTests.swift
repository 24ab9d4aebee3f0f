import CohortBase
import CohortNN
import CohortOptim
import CohortTensor
import Foundation
import Testing

/// Model files: the built-in models are files that build exactly the networks the code built
/// before, ResNet-20's file builds the reference's module, and mistakes get one line naming
/// the place.
@Suite struct ModelFileTests {
    static let repository = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Names, shapes and the initial parameters' bits (seed 7) as `Models.make` gave them before
    /// the models were files (`Fixtures/builtin_models.json`).
    @Test func builtinModelsInitialiseAsBeforeTheyWereFiles() throws {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("builtin_models.json"))
        let models = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["models"] as? [String: Any])
        #expect(models.count == 6)
        for (name, value) in models {
            let c = try #require(value as? [String: Any])
            let kind = try #require(ModelKind(rawValue: c["model"] as! String))
            let network = Models.make(kind, imageShape: c["input"] as! [Int], hidden: c["hidden"] as! Int,
                                      width: c["width"] as! Int, maxBatch: 1)
            network.initializeParameters(seed: UInt64(c["seed"] as! Int))
            let hash = fnv1a(UnsafeRawBufferPointer(start: network.parameters.pointer, count: network.parameterCount * 4))
            #expect(String(hash, radix: 16) == c["parameters_fnv1a"] as! String, "\(name): initial parameters")
            let tensors = c["tensors"] as! [String: [Int]]
            #expect(Dictionary(uniqueKeysWithValues: network.tensors.map { ($0.name, $0.shape) }) == tensors, "\(name)")
            #expect(network.tensors.count == tensors.count)
        }
    }

    /// The layers the code chained by hand before: the same tensors, and bit for bit the same
    /// parameters after three SGD steps with momentum from the same start.
    @Test(arguments: ["cnn", "gru"])
    func builtinModelsTrainAsTheHandBuiltChain(model: String) {
        let batch = 4
        let handBuilt: Network, fromFile: Network
        if model == "cnn" {
            let (c, s) = (3, 16)
            handBuilt = Network(layers: [
                ("conv1", Conv2D(inChannels: c, outChannels: 32, height: s, width: s, kernel: 5, padding: 2, maxBatch: batch)),
                (nil, ReLU(shape: [32, s, s], maxBatch: batch)),
                (nil, MaxPool2D(channels: 32, height: s, width: s, kernel: 2, maxBatch: batch)),
                ("conv2", Conv2D(inChannels: 32, outChannels: 64, height: s / 2, width: s / 2, kernel: 5, padding: 2,
                                 maxBatch: batch)),
                (nil, ReLU(shape: [64, s / 2, s / 2], maxBatch: batch)),
                (nil, MaxPool2D(channels: 64, height: s / 2, width: s / 2, kernel: 2, maxBatch: batch)),
                (nil, Flatten(shape: [64, s / 4, s / 4])),
                ("fc", Linear(inFeatures: 64 * (s / 4) * (s / 4), outFeatures: 10, maxBatch: batch)),
            ], maxBatch: batch)
            fromFile = Models.make(.cnn, imageShape: [c, s, s], hidden: 0, maxBatch: batch)
        } else {
            handBuilt = Network(layers: [
                ("rnn", Recurrent(kind: .gru, inputSize: 28, hidden: 16, steps: 28, maxBatch: batch, inputShape: [1, 28, 28])),
                ("fc", Linear(inFeatures: 16, outFeatures: 10, maxBatch: batch)),
            ], maxBatch: batch)
            fromFile = Models.make(.gru, imageShape: [1, 28, 28], hidden: 16, maxBatch: batch)
        }
        #expect(handBuilt.tensors.map(\.name) == fromFile.tensors.map(\.name))
        #expect(handBuilt.tensors.map(\.shape) == fromFile.tensors.map(\.shape))
        let x = FloatBuffer(randomValues(batch * handBuilt.inputShape.elementCount, seed: 21))
        let labels: [Int32] = [3, 1, 4, 1]
        func train(_ network: Network) -> [Float] {
            network.initializeParameters(seed: 5)
            let loss = SoftmaxCrossEntropy(classes: 10, maxBatch: batch)
            let sgd = SGD(count: network.parameterCount, learningRate: 0.05, momentum: 0.9)
            for _ in 0..<3 {
                network.zeroGradients()
                let logits = network.forward(x.pointer, batch: batch)
                let (_, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: batch, scale: 1 / Float(batch))
                network.backward(dLogits, batch: batch)
                sgd.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
            }
            return network.parameters.array
        }
        #expect(train(handBuilt) == train(fromFile))
    }

    /// `models/` holds the files the program has built in, and they parse.
    @Test(arguments: ModelKind.allCases)
    func shippedFilesAreTheBuiltins(kind: ModelKind) throws {
        let path = Self.repository.appendingPathComponent("models/\(kind.rawValue).toml").path
        let shipped = try ModelFile(path: path)
        #expect(shipped.text == ModelFile.builtin(kind).text)
        #expect(try ModelFile.named(kind.rawValue) == ModelFile.builtin(kind))
        #expect(try ModelFile.named(path).description == ModelFile.builtin(kind).description)
    }

    /// ResNet-20's file builds the reference trainer's `ResNet(3)`: its state dict's names,
    /// shapes and order (parameters and buffers), and 272,474 parameters.
    @Test func resnet20IsTheReferencesModule() throws {
        let network = Models.make(.resnet20, imageShape: [3, 32, 32], hidden: 0, maxBatch: 1)
        let reference = Fixtures.torchCase("resnet20_state")
        #expect(network.parameterCount == reference["parameters"] as! Int)
        #expect(network.parameterCount == 272_474)
        let expected = (reference["tensors"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int]) }
        // PyTorch lists each module's parameters then its buffers; Cohort keeps the two apart.
        let parameterNames = Set(network.tensors.map(\.name))
        let expectedParameters = expected.filter { parameterNames.contains($0.0) }
        #expect(network.tensors.map(\.name) == expectedParameters.map(\.0))
        #expect(network.tensors.map(\.shape) == expectedParameters.map(\.1))
        let expectedBuffers = expected.filter { !parameterNames.contains($0.0) }
        #expect(network.bufferTensors.map(\.name) == expectedBuffers.map(\.0))
        #expect(network.bufferTensors.map(\.shape) == expectedBuffers.map(\.1))
        #expect(network.trainingFLOPsPerSample > 100_000_000)
    }

    /// A width and a depth set from outside (`--model-param`), as a sweep varies them.
    @Test func parametersChangeTheNetwork() throws {
        let file = ModelFile.builtin(.resnet20)
        let wide = try file.build(BuildSettings(inputShape: [3, 32, 32], classes: 10, parameters: ["filters": 8, "n": 1],
                                                maxBatch: 1))
        #expect(wide.tensor(named: "conv1.weight")?.shape == [8, 3, 3, 3])
        #expect(wide.tensor(named: "layer3.0.conv2.weight")?.shape == [32, 32, 3, 3])
        #expect(wide.tensor(named: "layer1.1.conv1.weight") == nil)
    }

    static let good = """
        parameters = { width = 4 }
        layers = [
          { type = "conv", name = "conv1", filters = "width", kernel = 3, padding = 1 },
          { type = "relu" },
          { type = "block", name = "stage", block = "plain", repeat = 2, out = "2 * width" },
          { type = "globalavgpool" },
          { type = "dropout", p = 0.5 },
          { type = "linear", name = "fc", out = "classes" },
        ]
        [blocks.plain]
        parameters = { out = 8 }
        layers = [{ type = "conv", filters = "out", kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" }]
        """

    /// One line naming the place, the key and the shapes, for each kind of mistake.
    @Test(arguments: [
        ("layers = [{ type = \"conv\", filters = 4, kernel = 9 }]", "layers[0] (conv): kernel 9 is larger than the input [3, 8, 8]"),
        ("layers = [{ type = \"linear\", out = 10 }, { type = \"conv\", filters = 4, kernel = 3 }]",
         "layers[1] (conv): needs an input [C, H, W], gets [10]"),
        ("layers = [{ type = \"convolution\", filters = 4 }]", "layers[0] (convolution): unknown layer type \"convolution\""),
        ("layers = [{ type = \"conv\", name = \"c\", kernel = 3 }]", "layers[0] (conv \"c\"): missing key 'filters'"),
        ("layers = [{ type = \"conv\", filtres = 4, filters = 4, kernel = 3 }]", "layers[0] (conv): unknown key 'filtres'"),
        ("layers = [{ name = \"x\" }]", "layers[0]: missing key 'type'"),
        ("layers = [{ type = \"linear\", out = \"2 * widht\" }]", "layers[0] (linear): out: unknown name 'widht'"),
        ("layers = [{ type = \"linear\", out = 7 }]", "layers: the last layer gives [7] per sample, the data has 10 classes"),
        ("input = [1, 28, 28]\nlayers = [{ type = \"linear\", out = 10 }]", "input: the file's input [1, 28, 28] differs from the data's [3, 8, 8]"),
        ("layers = [{ type = \"block\", block = \"a\" }]\n[blocks.a]\nlayers = [{ type = \"block\", block = \"b\" }]\n[blocks.b]\nlayers = [{ type = \"block\", block = \"a\" }]",
         "the blocks form a cycle: a -> b -> a"),
        ("layers = [{ type = \"block\", block = \"r\" }]\n[blocks.r]\nbody = [{ type = \"conv\", filters = 5, kernel = 1 }]",
         "blocks.r: the body changes [3, 8, 8] to [5, 8, 8] and the block has no shortcut to match"),
        ("layers = [{ type = \"block\", block = \"r\", size = 3 }]\n[blocks.r]\nlayers = [{ type = \"relu\" }]",
         "block \"r\" has no parameter 'size'"),
        ("layers = [{ type = \"linear\", out = 10 }", "test.toml:1:"),
        ("layer = []", "unknown key 'layer' in the file"),
        ("# caf\u{e9}\nlayers = []", "test.toml:1: a model file is ASCII text; this line has U+E9"),
        ("layers = [{ type = \"linear\", out = \"99999999 * 99999999\" }]", "layers[0] (linear): out: \"99999999 * 99999999\" is too large"),
        ("layers = [{ type = \"conv\", filters = 4000000, kernel = 1 }]", "layers[0] (conv): gives [4000000, 8, 8] per sample, more than 16777216 values"),
        ("layers = [{ type = \"linear\", out = 10 }]\nparameters = { width = \"x\" }", "parameters.width: expected an integer"),
    ])
    func mistakesNameTheirPlace(text: String, expected: String) {
        do {
            _ = try ModelFile(text: text, source: "test.toml")
                .build(BuildSettings(inputShape: [3, 8, 8], classes: 10, maxBatch: 1))
            Issue.record("no error for \(text)")
        } catch {
            #expect(error.description.hasPrefix("test.toml"), "\(error.description)")
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(!error.description.contains("\n"), "one line: \(error.description)")
        }
    }

    @Test func aGoodFileBuilds() throws {
        let network = try ModelFile(text: Self.good, source: "good.toml")
            .build(BuildSettings(inputShape: [3, 8, 8], classes: 10, maxBatch: 2))
        #expect(network.tensors.map(\.name).contains("stage.1.0.weight"))
        #expect(network.bufferTensors.map(\.name).contains("stage.0.1.running_mean"))
        #expect(network.outputShape == [10])
        // A parameter the file does not declare is refused, naming the ones it has.
        #expect(throws: ModelFileError.self) {
            try ModelFile(text: Self.good, source: "good.toml")
                .build(BuildSettings(inputShape: [3, 8, 8], classes: 10, parameters: ["depth": 2], maxBatch: 2))
        }
    }
}
