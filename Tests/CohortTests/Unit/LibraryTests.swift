@testable import Cohort
import CohortData
import CohortNN
import CohortRun
import Foundation
import Testing

/// The library's public face (`import Cohort`): models built in Swift are the model files they
/// write, arrays become data sets only when they fit, and a training run on them trains,
/// reports each epoch and saves weights that load back.
@Suite struct LibraryTests {
    let scratch = ScratchDirectory("cohort-library")

    /// Safetensors bytes of `model` built for `shape` with seed 0: names, shapes and initial values.
    func weights(_ model: Model, shape: [Int] = [3, 32, 32]) throws -> Data {
        SafeTensors.encode(try model.spec.build(inputShape: shape, classes: 10, maxBatch: 1))
    }

    /// The report's CNN written in Swift is the built-in cnn, tensor for tensor and bit for bit.
    @Test func theCNNInSwiftIsTheBuiltInCNN() throws {
        let inSwift = try Model("cnn") {
            Conv2D(filters: 32, kernel: 5, padding: 2, name: "conv1")
            ReLU()
            MaxPool(kernel: 2)
            Conv2D(filters: 64, kernel: 5, padding: 2, name: "conv2")
            ReLU()
            MaxPool(kernel: 2)
            Flatten()
            Linear(name: "fc")
        }
        #expect(try weights(inSwift) == weights(Model.builtin("cnn")))
        #expect(try Model.builtin("cnn").spec.build(inputShape: [3, 32, 32], classes: 10, maxBatch: 1).parameterCount == 94_666)
    }

    /// Residual blocks (one with a projection shortcut, written with a loop) and every other
    /// layer type give what the same network written by hand as a model file gives.
    @Test func residualBlocksAndLoopsWriteTheModelFile() throws {
        let inSwift = try Model("small") {
            Conv2D(filters: 8, kernel: 3, padding: 1, bias: false, name: "stem")
            BatchNorm(name: "bn")
            ReLU()
            for (index, stride) in [1, 2].enumerated() {
                Residual(name: "res\(index + 1)") {
                    Conv2D(filters: 8 * (index + 1), kernel: 3, stride: stride, padding: 1, bias: false)
                    BatchNorm()
                    ReLU()
                    Conv2D(filters: 8 * (index + 1), kernel: 3, padding: 1, bias: false)
                    BatchNorm()
                } shortcut: {
                    if stride > 1 {
                        Conv2D(filters: 8 * (index + 1), kernel: 1, stride: stride, bias: false)
                        BatchNorm()
                    }
                } after: {
                    ReLU()
                }
            }
            AvgPool(kernel: 2)
            GlobalAvgPool()
            Flatten()
            Dropout(0.25)
            Linear(out: 12, name: "hidden")
            ReLU()
            Linear(name: "fc")
        }
        let byHand = """
            name = "small"
            layers = [
              { type = "conv", name = "stem", filters = 8, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm", name = "bn" },
              { type = "relu" },
              { type = "block", name = "res1", block = "plain" },
              { type = "block", name = "res2", block = "projected" },
              { type = "avgpool", kernel = 2 },
              { type = "globalavgpool" },
              { type = "flatten" },
              { type = "dropout", p = 0.25 },
              { type = "linear", name = "hidden", out = 12 },
              { type = "relu" },
              { type = "linear", name = "fc", out = "classes" },
            ]
            [blocks.plain]
            body = [
              { type = "conv", filters = 8, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm" },
              { type = "relu" },
              { type = "conv", filters = 8, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm" },
            ]
            after = [{ type = "relu" }]
            [blocks.projected]
            body = [
              { type = "conv", filters = 16, kernel = 3, stride = 2, padding = 1, bias = false },
              { type = "batchnorm" },
              { type = "relu" },
              { type = "conv", filters = 16, kernel = 3, padding = 1, bias = false },
              { type = "batchnorm" },
            ]
            shortcut = [{ type = "conv", filters = 16, kernel = 1, stride = 2, bias = false }, { type = "batchnorm" }]
            after = [{ type = "relu" }]
            """
        let file = try Model(file: ModelFile(text: byHand, source: "by hand"))
        #expect(try weights(inSwift) == weights(file))
        #expect(inSwift.description.contains("[blocks.block2]"), "\(inSwift.description)")
    }

    /// A recurrent model in Swift is the built-in lstm.
    @Test func theLSTMInSwiftIsTheBuiltInLSTM() throws {
        let inSwift = try Model("lstm") {
            Recurrent(.lstm, hidden: 128, name: "rnn")
            Linear(name: "fc")
        }
        #expect(try weights(inSwift, shape: [1, 28, 28]) == weights(Model.builtin("lstm"), shape: [1, 28, 28]))
    }

    /// Arrays that do not make a data set are refused with a message that names the mismatch.
    @Test func arraysThatDoNotFitAreRefused() throws {
        func refusal<T>(_ make: () throws -> T) -> String {
            do { _ = try make(); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal { try Dataset(pixels: [0, 0, 0], shape: [1, 2, 2], labels: [1], classes: 2) }.contains("3 pixels for 1 images"))
        #expect(refusal { try Dataset(pixels: [0, 0, 0, 0], shape: [1, 2, 2], labels: [2], classes: 2) }.contains("label 2"))
        #expect(refusal { try Dataset(pixels: [0, 0, 0, 0], shape: [4], labels: [0], classes: 2) }.contains("[channels, height, width]"))
        #expect(refusal { try Dataset(pixels: [], shape: [1, 2, 2], labels: [], classes: 1 << 25) }.contains("33554432 classes"))
        #expect(refusal { try Model.builtin("vgg") }.contains("no built-in model vgg"))
        #expect(try Dataset(pixels: [0, 255, 0, 255], shape: [1, 2, 2], labels: [1], classes: 2).count == 1)
    }

    /// One process trains a model built in Swift on arrays: every epoch reported, the run
    /// directory written, the accuracy above chance on an easy task, and the saved weights
    /// load back into a new run of the same model.
    @Test func aProcessTrainsOnItsOwnArrays() throws {
        // Two classes: bright or dark 8x8 images, with noise.
        var rng = SystemRandomNumberGenerator()
        func data(_ count: Int) throws -> Dataset {
            let labels = (0..<count).map { $0 % 2 }
            let pixels = labels.flatMap { label in (0..<64).map { _ in UInt8(label * 128 + Int.random(in: 0..<128, using: &rng)) } }
            return try Dataset(pixels: pixels, shape: [1, 8, 8], labels: labels, classes: 2)
        }
        let (train, test) = (try data(256), try data(64))
        let model = try Model("tiny") {
            Conv2D(filters: 4, kernel: 3, padding: 1)
            ReLU()
            GlobalAvgPool()
            Flatten()
            Linear()
        }
        var settings = TrainingSettings()
        settings.optimizer = .sgd
        settings.lr = 0.1
        settings.momentum = 0.9
        settings.epochs = 3
        settings.batchSize = 32
        settings.out = "\(scratch.path)/run"
        let world = try World()
        let training = try Training(model: model, train: train, test: test, settings: settings, world: world)
        var reported: [EpochMetrics] = []
        let summary = try training.run { reported.append($0) }
        #expect(reported.map(\.epoch) == [1, 2, 3])
        #expect(summary.final.testAccuracy == reported.last?.testAccuracy)
        #expect(summary.best.testAccuracy > 0.9, "\(reported)")
        #expect(FileManager.default.fileExists(atPath: "\(settings.out)/metrics.csv"))
        let saved = "\(scratch.path)/tiny.safetensors"
        try training.saveWeights(to: saved)
        #expect(FileManager.default.contents(atPath: saved) == FileManager.default.contents(atPath: "\(settings.out)/model.safetensors"))

        // Loaded into a new run of the same model (seeded otherwise), they are what it saves.
        settings.out = "\(scratch.path)/again"
        settings.seed = 7
        let again = try Training(model: model, train: train, test: test, settings: settings, world: world)
        let fresh = "\(scratch.path)/fresh.safetensors", loaded = "\(scratch.path)/loaded.safetensors"
        try again.saveWeights(to: fresh)
        try again.loadWeights(from: saved)
        try again.saveWeights(to: loaded)
        #expect(FileManager.default.contents(atPath: fresh) != FileManager.default.contents(atPath: saved))
        #expect(FileManager.default.contents(atPath: loaded) == FileManager.default.contents(atPath: saved))
    }

    /// The peer's GPT written in Swift (a repeated block of residual stages) is the built-in
    /// gpt-char, tensor for tensor and bit for bit, and it learns a text: 40 AdamW steps on a
    /// repetitive one bring the validation loss far below the uniform guess's ln V.
    @Test func theGPTInSwiftIsTheBuiltInGPTAndLearnsAText() throws {
        let gpt = try Model("gpt") {
            Embedding(dim: 16, name: "tok")
            Positions(name: "pos")
            Block(name: "blocks", repeats: 2) {
                ResidualStage {
                    LayerNorm(name: "ln1")
                    Attention(heads: 2, causal: true, name: "attn")
                }
                ResidualStage {
                    LayerNorm(name: "ln2")
                    Block(name: "mlp") {
                        Linear(out: 64)
                        GELU()
                        Linear(out: 16)
                    }
                }
            }
            LayerNorm(name: "ln_f")
            Linear(bias: false, name: "head")
        }
        let path = "\(scratch.path)/text.txt"
        try String(repeating: "the cat sat on the mat. ", count: 400).write(toFile: path, atomically: true, encoding: .utf8)
        let (train, test) = try Dataset.text(at: path, blockSize: 16, validationWindows: 16)
        let format = train.images.sampleFormat
        let builtin = ModelSpec(file: .builtin(.gptChar), parameters: ["layers": 2, "heads": 2, "embd": 16])
        #expect(SafeTensors.encode(try gpt.spec.build(on: format, maxBatch: 1))
                == SafeTensors.encode(try builtin.build(on: format, maxBatch: 1)))

        var settings = TrainingSettings()
        (settings.optimizer, settings.lr, settings.batchSize, settings.steps) = (.adamw, 0.01, 8, 40)
        settings.out = "\(scratch.path)/gpt"
        let training = try Training(model: gpt, train: train, test: test, settings: settings, world: try World())
        let summary = try training.run()
        let vocabulary = Double(train.images.classes)
        #expect(summary.final.testLoss < 0.5 * log(vocabulary), "\(summary.final.testLoss) against ln \(vocabulary)")
    }
}
