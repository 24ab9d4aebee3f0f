import CohortBase
@testable import CohortNN
import CohortTensor
import Testing

/// The transformers' layers and the GPT's loss over every position, against central finite differences.
extension GradientCheckTests {
    @Test func layerNormGradients() {
        checkLayer(LayerNorm(shape: [3, 5], maxBatch: 2), batch: 2, "layernorm [T, d]")
        checkLayer(LayerNorm(shape: [6], epsilon: 1e-3, maxBatch: 2), batch: 2, "layernorm [d]")
    }

    @Test func geluGradients() {
        checkLayer(GELU(shape: [4, 3], maxBatch: 2), batch: 2, "gelu")
        checkLayer(GELU(shape: [4, 3], tanh: true, maxBatch: 2), batch: 2, "gelu tanh")
    }

    @Test(arguments: [true, false])
    func attentionGradients(causal: Bool) {
        checkLayer(Attention(length: 5, dimension: 6, heads: 2, causal: causal, maxBatch: 2), batch: 2,
                   "attention causal \(causal)")
    }

    @Test func sequenceLayerGradients() {
        checkLayer(Positions(length: 4, dimension: 3, positions: 5, maxBatch: 2), batch: 2, "positions")
        checkLayer(SequenceMean(length: 4, dimension: 3, maxBatch: 2), batch: 2, "mean")
        checkLayer(Linear(inFeatures: 3, outFeatures: 4, maxBatch: 2, positions: 5), batch: 2, "linear at every position")
        checkLayer(Linear(inFeatures: 3, outFeatures: 2, maxBatch: 2, positions: 5, bias: false), batch: 2, "linear, no bias")
    }

    /// The table's gradient; tokens, whole numbers, have none.
    @Test func embeddingGradients() {
        checkLayer(Embedding(vocabulary: 5, dimension: 3, length: 4, maxBatch: 2), batch: 2,
                   input: [0, 3, 3, 4, 1, 2, 0, 3], "embedding")
    }

    /// gpt-char's mean cross-entropy over every position of every window, w.r.t. every parameter.
    @Test func wholeGPT() throws {
        let (batch, block, vocab) = (2, 4, 5)
        var settings = BuildSettings(inputShape: [block], classes: vocab, parameters: ["layers": 1, "heads": 2, "embd": 6],
                                     maxBatch: batch)
        settings.vocabulary = vocab
        settings.targetsPerSample = block
        let network = try ModelFile.builtin(.gptChar).build(settings)
        network.initializeParameters(seed: 3)
        let x = FloatBuffer([0, 4, 2, 2, 1, 3, 0, 4]), labels: [Int32] = [4, 2, 2, 1, 3, 0, 4, 1]
        let rows = batch * block
        let loss = SoftmaxCrossEntropy(classes: vocab, maxBatch: rows)
        checkFiniteDifferences(
            network: network, input: x, epsilon: 1e-2, samples: 40,
            objective: {
                loss.evaluate(logits: network.forward(x.pointer, batch: batch), labels: labels, batch: rows).lossSum / Double(rows)
            },
            gradient: {
                let (_, g) = loss.forwardBackward(logits: network.forward(x.pointer, batch: batch), labels: labels, batch: rows,
                                                  scale: 1 / Float(rows))
                network.backward(g, batch: batch)
                return nil
            }, "gpt-char")
    }
}
