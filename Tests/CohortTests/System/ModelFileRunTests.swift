import CohortBase
import CohortNN
@testable import CohortRun
import Foundation
import Testing

extension SystemTests {
    /// A network from a model file through the whole program: trained, resumed from the run's
    /// own copy of the file, evaluated, visualized; started from given weights; and refused with
    /// one line and exit 64 when the file or the weights are wrong.
    @Suite(.serialized) struct ModelFileRunTests {
        let scratch = ScratchDirectory("cohort-model-file")

        /// A small residual network with batch norm on 3x16x16 synthetic images.
        func modelFile(_ name: String = "net.toml", filters: Int = 8) throws -> String {
            let path = "\(scratch.path)/\(name)"
            let text = """
                name = "small-resnet"
                input = [3, 16, 16]
                parameters = { filters = \(filters) }
                layers = [
                  { type = "conv", name = "conv1", filters = "filters", kernel = 3, padding = 1, bias = false },
                  { type = "batchnorm", name = "bn1" },
                  { type = "relu" },
                  { type = "block", name = "layer1", block = "basic", repeat = 2, out = "2 * filters", first = { stride = 2 } },
                  { type = "globalavgpool" },
                  { type = "flatten" },
                  { type = "linear", name = "fc", out = "classes" },
                ]
                [blocks.basic]
                parameters = { out = 8, stride = 1 }
                body = [
                  { type = "conv", name = "conv1", filters = "out", kernel = 3, stride = "stride", padding = 1, bias = false },
                  { type = "batchnorm", name = "bn1" },
                  { type = "relu" },
                  { type = "conv", name = "conv2", filters = "out", kernel = 3, padding = 1, bias = false },
                  { type = "batchnorm", name = "bn2" },
                ]
                shortcut = [{ type = "conv", filters = "out", kernel = 1, stride = "stride", bias = false }, { type = "batchnorm" }]
                after = [{ type = "relu" }]
                """
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func train(_ model: String, out: String, _ extra: [String] = []) throws -> ProcessOutcome {
            try CohortBinary.run(["train", "--model", model, "--dataset", "synthetic", "--limit", "128", "--test-limit", "64",
                                  "--batch-size", "32", "--epochs", "1", "--optimizer", "sgd", "--momentum", "0.9",
                                  "--lr", "0.05", "--threads", "1", "--quiet", "--out", out] + extra)
        }

        /// The run keeps the file: resumed after the file is gone, and read by evaluate and
        /// visualize, which find its ReLUs inside the blocks and say why there is no deconvnet.
        @Test func aRunKeepsItsModelFile() throws {
            let file = try modelFile()
            let out = "\(scratch.path)/run"
            let first = try train(file, out: out, ["--save-initial"])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(try String(contentsOfFile: "\(out)/model.toml", encoding: .utf8)
                    == String(contentsOfFile: file, encoding: .utf8))
            let saved = try SafeTensors.read("\(out)/model.safetensors")
            #expect(saved["layer1.0.shortcut.1.running_var"]?.shape == [16])
            #expect(saved["bn1.num_batches_tracked"]?.values == [4])
            try FileManager.default.removeItem(atPath: file)
            let resumed = try CohortBinary.run(["train", "--resume", out, "--epochs", "2", "--quiet"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try SafeTensors.read("\(out)/model.safetensors")["bn1.num_batches_tracked"]?.values == [8])
            let evaluate = try CohortBinary.run(["evaluate", "--run", out])
            #expect(evaluate.status == 0 && evaluate.stdout.contains("64 test image(s)"), "\(evaluate.stdout)\(evaluate.stderr)")
            let visualize = try CohortBinary.run(["visualize", "--run", out, "--occlusion-images", "1"])
            #expect(visualize.status == 0, "\(visualize.stderr)")
            let markdown = try String(contentsOfFile: "\(out)/visualize/visualize.md", encoding: .utf8)
            // conv1's ReLU, and each of the two blocks' two: five.
            #expect(markdown.contains("| ReLU5 |") && !markdown.contains("| ReLU6 |"), "\(markdown)")
            #expect(markdown.contains("No deconvnet: it runs through convolutions, ReLUs and max-pooling only"), "\(markdown)")
        }

        /// `--init` starts from the file's weights and buffers (the run's initial parameters are
        /// its bits); a file of another model is refused before training, naming the tensor.
        @Test func initStartsFromGivenWeights() throws {
            let file = try modelFile("init.toml")
            let source = "\(scratch.path)/source"
            #expect(try train(file, out: source, ["--seed", "11"]).status == 0)
            let started = "\(scratch.path)/started"
            let run = try train(file, out: started, ["--init", "\(source)/model.safetensors", "--save-initial"])
            #expect(run.status == 0, "\(run.stderr)")
            let given = try SafeTensors.read("\(source)/model.safetensors")
            let initial = try SafeTensors.read("\(started)/initial.safetensors")
            #expect(given == initial)

            let wide = try modelFile("wide.toml", filters: 4)
            let refused = try train(wide, out: "\(scratch.path)/refused", ["--init", "\(source)/model.safetensors"])
            #expect(refused.status == 64)
            #expect(refused.stderr.contains("--init \(source)/model.safetensors: tensor conv1.weight has shape [8, 3, 3, 3], "
                                            + "the model needs [4, 3, 3, 3]"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(scratch.path)/refused"))
        }

        /// A mistake in the file: one line naming the place, exit 64, nothing written.
        @Test func aBadModelFileIsRefusedBeforeTraining() throws {
            let path = "\(scratch.path)/bad.toml"
            try "layers = [{ type = \"conv\", filters = 4, kernel = 3 }, { type = \"linear\", out = 10 }, { type = \"pool\" }]"
                .write(toFile: path, atomically: true, encoding: .utf8)
            let result = try train(path, out: "\(scratch.path)/bad")
            #expect(result.status == 64)
            #expect(result.stderr.contains("\(path): layers[2] (pool): unknown layer type \"pool\""), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(scratch.path)/bad"))
        }
    }
}
