import CohortBase
import CohortData
@testable import CohortNN
import CohortOptim
import CohortRun
import CohortTensor
import Foundation
import Testing

/// The layers of transformers, the peers' two transformers and the GPT's training step, against
/// PyTorch on the same inputs and parameters (`Fixtures/make_transformer_fixtures.py`). Both sides
/// compute in float32, each with its own summation order: every value is a sum of at most a few
/// hundred products of values of order 1, so they differ by a few units of float's 6e-8 relative,
/// far inside `expectClose`'s 1e-5 + 1e-4·|b|; a wrong formula, mask or scale is off by far more.
@Suite struct TransformerTests {
    /// `layer` as the only layer of a network named `name`: forward the fixture's `x`, backward
    /// its `dy`; `y`, `dx` (unless the input is tokens) and every parameter gradient compared.
    func compare(_ layer: Layer, fixture: String, name: String = "layer", prefix: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
        let c = Fixtures.transformerCase(fixture)
        let x = FixtureTensor(c["x"]), dy = FixtureTensor(c["dy"]), y = FixtureTensor(c["y"])
        let batch = x.shape[0]
        let network = Network(layers: [(name, layer)], maxBatch: batch)
        // The fixture's names are the module's own: the network's without the layer's name.
        let torchName = { (full: String) in full == name ? prefix : prefix + full.dropFirst(name.count + 1) }
        loadFixtureParameters(c["params"] as! [String: Any], into: network, torchName: torchName,
                              sourceLocation: sourceLocation)
        network.zeroGradients()
        expectClose(array(network.forward(x.data, batch: batch), y.data.count), y.data, "\(fixture) y",
                    sourceLocation: sourceLocation)
        let dx = network.backward(dy.data, batch: batch, needsInputGradient: true)
        if let expected = c["dx"] {
            let dxExpected = FixtureTensor(expected)
            expectClose(array(dx!, dxExpected.data.count), dxExpected.data, "\(fixture) dx", sourceLocation: sourceLocation)
        }
        expectFixtureGradients(c["grads"] as! [String: Any], of: network, torchName: torchName, fixture,
                               sourceLocation: sourceLocation)
    }

    static func shape(_ fixture: String) -> [Int] { FixtureTensor(Fixtures.transformerCase(fixture)["x"]).shape }

    @Test func layerNorm() {
        let s = Self.shape("layernorm_sequence"), v = Self.shape("layernorm_vector")
        compare(LayerNorm(shape: Array(s.dropFirst()), maxBatch: s[0]), fixture: "layernorm_sequence")
        compare(LayerNorm(shape: Array(v.dropFirst()), epsilon: 1e-3, maxBatch: v[0]), fixture: "layernorm_vector")
    }

    @Test func gelu() {
        let s = Self.shape("gelu")
        compare(GELU(shape: Array(s.dropFirst()), maxBatch: s[0]), fixture: "gelu")
        compare(GELU(shape: Array(s.dropFirst()), tanh: true, maxBatch: s[0]), fixture: "gelu_tanh")
    }

    @Test func linearAtEveryPosition() {
        let s = Self.shape("linear_positions")
        compare(Linear(inFeatures: s[2], outFeatures: 4, maxBatch: s[0], positions: s[1]), fixture: "linear_positions")
        let network = Network(layers: [("fc", Linear(inFeatures: s[2], outFeatures: 6, maxBatch: s[0], positions: s[1],
                                                      bias: false))], maxBatch: s[0])
        #expect(network.tensors.map(\.name) == ["fc.weight"])
        compare(Linear(inFeatures: s[2], outFeatures: 6, maxBatch: s[0], positions: s[1], bias: false),
                fixture: "linear_positions_nobias")
    }

    @Test(arguments: ["attention_causal", "attention_full"])
    func attention(fixture: String) {
        let s = Self.shape(fixture), config = Fixtures.transformerCase(fixture)["config"] as! [String: Any]
        compare(Attention(length: s[1], dimension: s[2], heads: config["heads"] as! Int, causal: config["causal"] as! Bool,
                          maxBatch: s[0]), fixture: fixture)
    }

    /// A bare `nn.Parameter` named `pos`: the tensor takes the layer's name, with 6 rows for 5 positions.
    @Test func positions() {
        let s = Self.shape("positions")
        compare(Positions(length: s[1], dimension: s[2], positions: 6, maxBatch: s[0]), fixture: "positions",
                name: "pos", prefix: "pos")
        let network = Network(layers: [("pos", Positions(length: s[1], dimension: s[2], positions: 6, maxBatch: 1))],
                              maxBatch: 1)
        #expect(network.tensors.map(\.name) == ["pos"] && network.tensors[0].shape == [6, s[2]])
    }

    @Test func sequenceMean() {
        let s = Self.shape("sequence_mean")
        compare(SequenceMean(length: s[1], dimension: s[2], maxBatch: s[0]), fixture: "sequence_mean")
    }

    @Test func embedding() {
        let s = Self.shape("embedding"), config = Fixtures.transformerCase("embedding")["config"] as! [String: Int]
        compare(Embedding(vocabulary: config["vocab"]!, dimension: config["dim"]!, length: s[1], maxBatch: s[0]),
                fixture: "embedding")
    }

    /// The peer's `Block` as a model file writes it: two residual stages whose layers keep the
    /// block's own names (`ln1.weight`, `attn.qkv.weight`, `mlp.0.weight`).
    @Test func decoderBlockFromAModelFile() throws {
        let c = Fixtures.transformerCase("decoder_block")
        let x = FixtureTensor(c["x"]), y = FixtureTensor(c["y"]), dy = FixtureTensor(c["dy"]), dx = FixtureTensor(c["dx"])
        let file = try ModelFile(text: """
            parameters = { heads = 2, embd = 8 }
            layers = [
              { type = "residual", body = [{ type = "layernorm", name = "ln1" },
                                           { type = "attention", name = "attn", heads = "heads", causal = true }] },
              { type = "residual", body = [{ type = "layernorm", name = "ln2" }, { type = "block", name = "mlp", block = "mlp" }] },
            ]
            [blocks.mlp]
            layers = [{ type = "linear", out = "4 * embd" }, { type = "gelu" }, { type = "linear", out = "embd" }]
            """, source: "block.toml")
        var settings = BuildSettings(inputShape: [x.shape[1], x.shape[2]], classes: x.shape[2], maxBatch: x.shape[0])
        settings.targetsPerSample = x.shape[1]
        let network = try file.build(settings)
        loadFixtureParameters(c["params"] as! [String: Any], into: network)
        expectClose(array(network.forward(x.data, batch: x.shape[0]), y.data.count), y.data, "block y")
        let inputGrad = try #require(network.backward(dy.data, batch: x.shape[0], needsInputGradient: true))
        expectClose(array(inputGrad, dx.data.count), dx.data, "block dx")
        expectFixtureGradients(c["grads"] as! [String: Any], of: network, "block")
    }

    /// The built-in gpt-char with the fixture's sizes: PyTorch's logits, its mean cross-entropy over
    /// every position of every window, and every parameter's gradient.
    @Test func gptCharEqualsThePeersGPT() throws {
        let c = Fixtures.transformerCase("gpt"), config = c["config"] as! [String: Int]
        let x = FixtureTensor(c["x"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let (batch, block, vocab) = (x.shape[0], config["block"]!, config["vocab"]!)
        var settings = BuildSettings(inputShape: [block], classes: vocab,
                                     parameters: ["layers": config["layers"]!, "heads": config["heads"]!, "embd": config["embd"]!],
                                     maxBatch: batch)
        settings.vocabulary = vocab
        settings.targetsPerSample = block
        let network = try ModelFile.builtin(.gptChar).build(settings)
        loadFixtureParameters(c["params"] as! [String: Any], into: network)
        let logits = network.forward(x.data, batch: batch)
        expectClose(array(logits, batch * block * vocab), FixtureTensor(c["logits"]).data, "gpt logits")
        let loss = SoftmaxCrossEntropy(classes: vocab, maxBatch: batch * block)
        network.zeroGradients()
        let (result, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: batch * block,
                                                     scale: 1 / Float(batch * block))
        #expect(abs(result.lossSum / Double(batch * block) - (c["loss"] as! Double)) < 1e-5)
        network.backward(dLogits, batch: batch)
        expectFixtureGradients(c["grads"] as! [String: Any], of: network, "gpt")
    }

    /// The built-in transformer-rows with the fixture's sizes against the peer's RowTransformer.
    @Test func transformerRowsEqualsThePeersRowTransformer() throws {
        let c = Fixtures.transformerCase("row_transformer"), config = c["config"] as! [String: Int]
        let x = FixtureTensor(c["x"]), labels = (c["labels"] as! [Int]).map(Int32.init)
        let classes = config["classes"]!
        let network = try ModelSpec(file: .builtin(.transformerRows),
                                    parameters: ["layers": config["layers"]!, "heads": config["heads"]!, "embd": config["embd"]!])
            .build(inputShape: Array(x.shape.dropFirst()), classes: classes, maxBatch: x.shape[0])
        loadFixtureParameters(c["params"] as! [String: Any], into: network)
        let logits = network.forward(x.data, batch: x.shape[0])
        expectClose(array(logits, x.shape[0] * classes), FixtureTensor(c["logits"]).data, "rows logits")
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: x.shape[0])
        network.zeroGradients()
        let (result, dLogits) = loss.forwardBackward(logits: logits, labels: labels, batch: x.shape[0],
                                                     scale: 1 / Float(x.shape[0]))
        #expect(abs(result.lossSum / Double(x.shape[0]) - (c["loss"] as! Double)) < 1e-5)
        network.backward(dLogits, batch: x.shape[0])
        expectFixtureGradients(c["grads"] as! [String: Any], of: network, "rows")
    }

    /// gpt-char's defaults on a text of 73 byte values with 64-byte windows: the peer's
    /// state_dict, name for name and shape for shape, and its 820,224 parameters.
    @Test func gptCharHasThePeersTensors() throws {
        let c = Fixtures.transformerCase("gpt_char_state")
        var settings = BuildSettings(inputShape: [64], classes: 73, maxBatch: 1)
        settings.vocabulary = 73
        settings.targetsPerSample = 64
        let network = try ModelFile.builtin(.gptChar).build(settings)
        // By name (PyTorch lists a module's own `pos` before its submodules' tensors; files are keyed by name).
        let expected = Dictionary(uniqueKeysWithValues: (c["tensors"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int]) })
        #expect(Dictionary(uniqueKeysWithValues: network.tensors.map { ($0.name, $0.shape) }) == expected)
        #expect(network.parameterCount == c["parameters"] as! Int)
        #expect(network.parameterCount == 820_224)
    }

    /// `clip_grad_norm_` on three tensors' gradients: the same norm and the same scaled values.
    @Test func clipGradNormEqualsPyTorchs() {
        let c = Fixtures.transformerCase("clip_grad_norm")
        let grads = FloatBuffer(FixtureTensor(c["grads"]).data)
        let norm = GradientClipping.clip(grads.pointer, count: grads.count, maxNorm: Float(c["max_norm"] as! Double))
        #expect(abs(norm - (c["norm"] as! Double)) < 1e-5 * norm)
        expectClose(grads.array, FixtureTensor(c["clipped"]).data, atol: 1e-7, rtol: 1e-6, "clipped")
        // Below the bound nothing changes, bit for bit.
        let small = FloatBuffer([0.1, -0.2, 0.3])
        GradientClipping.clip(small.pointer, count: 3, maxNorm: 1)
        #expect(small.array == [0.1, -0.2, 0.3])
    }

    /// Three of the peer's training steps from its own initial state (its state_dict in a
    /// safetensors file, strictly loaded): AdamW with β = (0.9, 0.99),
    /// decay on matrices only, the gradients clipped to norm 0.5, the rate warming up. Every
    /// parameter within 1e-4 relative (plus 1e-5): the gradients agree to float rounding (above),
    /// and Adam's update `m/√v` divides by the gradients' own size, so after three steps of rate
    /// 3e-3 a difference of rounding stays far below 1e-5 absolute; a tensor decayed that should
    /// not be, or a clip at the wrong norm, moves it by about rate x decay or more.
    ///
    /// But for the keys' bias: its gradient is 0 in exact arithmetic (it adds `q·b` to every score
    /// of a row, which the softmax ignores), so on both sides it is rounding noise, which Adam
    /// scales to steps of about the rate in that noise's direction. Those entries are checked to
    /// have moved by no more than the three rates' sum.
    @Test func threeStepsFromThePeersStart() throws {
        let c = Fixtures.transformerCase("gpt_steps"), config = c["config"] as! [String: Any]
        let (vocab, block, batch) = (config["vocab"] as! Int, config["block"] as! Int, config["batch"] as! Int)
        var settings = BuildSettings(inputShape: [block], classes: vocab,
                                     parameters: ["layers": config["layers"] as! Int, "heads": config["heads"] as! Int,
                                                  "embd": config["embd"] as! Int], maxBatch: batch)
        settings.vocabulary = vocab
        settings.targetsPerSample = block
        let network = try ModelFile.builtin(.gptChar).build(settings)
        // PyTorch's state_dict as a safetensors file, loaded as --init loads one: every name and shape checked.
        try SafeTensors.load(Fixtures.directory.appendingPathComponent("gpt_steps_initial.safetensors").path, into: network)
        let betas = (config["betas"] as! [Double]).map(Float.init)
        let decayed = WeightDecayScope.matrices.ranges(of: network.tensors.map { ($0.offset..<($0.offset + $0.count), $0.shape) })
        let adamw = OptimizerKind.adamw.make(count: network.parameterCount, learningRate: 0,
                                             weightDecay: Float(config["weight_decay"] as! Double), betas: (betas[0], betas[1]),
                                             decayed: decayed)
        var schedule = LearningRateSchedule(peak: config["lr"] as! Double, decay: .constant, epochs: 1, stepsPerEpoch: 3)
        schedule.fixedWarmupSteps = config["warmup_steps"] as? Int
        let loss = SoftmaxCrossEntropy(classes: vocab, maxBatch: batch * block)
        for (step, b) in (c["batches"] as! [[String: [Int]]]).enumerated() {
            let x = b["x"]!.map(Float.init), y = b["y"]!.map(Int32.init)
            network.zeroGradients()
            let (_, dLogits) = loss.forwardBackward(logits: network.forward(x, batch: batch), labels: y,
                                                    batch: batch * block, scale: 1 / Float(batch * block))
            network.backward(dLogits, batch: batch)
            let norm = GradientClipping.clip(network.gradients.pointer, count: network.parameterCount,
                                             maxNorm: Float(config["clip"] as! Double))
            #expect(abs(norm - (c["norms"] as! [Double])[step]) < 1e-4 * norm, "step \(step + 1): gradient norm")
            adamw.learningRate = Float(schedule.rate(atStep: step))
            adamw.step(parameters: network.parameters.pointer, gradients: network.gradients.pointer)
        }
        let (final, initial) = (c["final"] as! [String: Any], c["initial"] as! [String: Any])
        let d = config["embd"] as! Int, rates = (0..<3).reduce(0.0) { $0 + schedule.rate(atStep: $1) }
        for t in network.tensors {
            var ours = Array(network.parameters.array[t.offset..<(t.offset + t.count)])
            var theirs = FixtureTensor(final[t.name]).data
            if t.name.hasSuffix("attn.qkv.bias") {
                let keys = d..<(2 * d), start = FixtureTensor(initial[t.name]).data
                for i in keys { #expect(abs(Double(ours[i] - start[i])) <= rates * 1.001, "\(t.name)[\(i)] (a key's bias)") }
                ours.removeSubrange(keys); theirs.removeSubrange(keys)
            }
            expectClose(ours, theirs, atol: 1e-5, rtol: 1e-4, "after 3 steps: \(t.name)")
        }
    }

    /// `--precision bf16` on a model whose products all stay fp32 (a transformer) is refused with
    /// one line, whatever the CPU (its bf16 check comes before, in `validate`).
    @Test func bf16IsRefusedForATransformer() throws {
        let bytes = (0..<4000).map { UInt8(97 + $0 * 7 % 13) }
        let data = try TextCorpus(bytes: bytes, source: "test", blockSize: 8).splits(name: "t", blockSize: 8, validationWindows: 4)
        var config = TrainingConfig()
        (config.precision, config.batchSize) = (.bf16, 4)
        let spec = ModelSpec(file: .builtin(.gptChar), parameters: ["layers": 1, "heads": 2, "embd": 8])
        do {
            try config.check(spec, on: data)
            Issue.record("bf16 was taken for a model without a bf16 layer")
        } catch let error as CohortError {
            #expect("\(error)".contains("--precision bf16: gpt-char has no convolution or recurrent layer"), "\(error)")
        }
        config.precision = .fp32
        try config.check(spec, on: data)
    }

    /// A text too short for one window in each part is refused naming the file; the vocabulary
    /// is the sorted bytes present; validation windows are spaced as the peer's float32
    /// `linspace(0, m - T - 1, n).long()` places them.
    @Test func textsAreReadAsThePeerReadsThem() throws {
        expectError(.settings) { _ = try TextCorpus(bytes: Array("abcabc".utf8), source: "short.txt", blockSize: 8) }
        let corpus = try TextCorpus(bytes: Array("banana bread, bandana band.".utf8) + Array(repeating: 97, count: 200),
                                    source: "t", blockSize: 4)
        #expect(corpus.vocabulary == Array(" ,.abdenr".utf8))
        #expect(corpus.split == Int(Double(227) * 0.9))
        // kjv.txt's validation part (440,442 bytes): PyTorch 2.15's torch.linspace(0, 440377, 500).long() gives these.
        let offsets = TextCorpus.validationOffsets(count: 440_442, blockSize: 64, windows: 500)
        #expect(offsets.first == 0 && offsets.last == 440_377 && offsets.count == 500)
        #expect(offsets[1] == 882 && offsets[250] == 220_629)
        // 277,110.97 in float32 from PyTorch's double steps (float32 steps would give 277,111).
        #expect(offsets[314] == 277_110 && offsets[393] == 346_829)
    }
}
