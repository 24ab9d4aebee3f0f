import CohortBase
import CohortData
import CohortNN
import CohortRun
import CohortTensor
import Foundation

/// A language model trained on a text (`--dataset text`), read back with its vocabulary, that
/// continues a prompt byte by byte (`cohort generate`).
///
/// Each new token is chosen from the logits at the last position of the context: the last T
/// tokens (T the run's `--block-size`). A shorter context is padded after its end, which no
/// position before the padding sees, since every attention layer is causal. Greedy takes the
/// largest logit (the first on ties), as the peer's `--sample`; with a temperature τ the
/// probabilities are `softmax(z / τ)` over the `topK` largest logits (all if nil) and one token
/// is drawn from them with `SplitMix64(seed, stream 4)`, so the same seed gives the same text.
public struct TextGenerator {
    public let network: Network
    /// The byte value of each token.
    public let vocabulary: [UInt8]
    /// T: the context the model reads.
    public let context: Int

    /// The model of the run at `path` (a run directory, a checkpoint or a .safetensors file in either).
    public init(path: String) throws {
        let (directory, weights) = try TrainedModel.locate(path)
        var config = try RunRecord.read(directory: directory).config
        config.out = directory
        guard config.dataset == .text, let vocabulary = try DataRecord.read(directory: directory)?.vocabulary else {
            throw CohortError.settings("\(directory): not a run on a text (--dataset text); generate continues text")
        }
        let model = try config.modelSpec(resumed: true)
        let format = SampleFormat(inputShape: [config.blockSize], classes: vocabulary.count, vocabulary: vocabulary.count,
                                  targetsPerSample: config.blockSize)
        let network: Network
        do { network = try model.build(on: format, maxBatch: 1) } catch { throw CohortError.settings(error.description) }
        if network.allLayers.contains(where: { ($0 as? Attention)?.causal == false }) {
            throw CohortError.settings("\(model.name): its attention is not causal, so every position sees the ones after it; "
                                       + "generate continues text with causal models only")
        }
        try SafeTensors.load(weights, into: network)
        self.init(network: network, vocabulary: vocabulary, context: config.blockSize)
    }

    public init(network: Network, vocabulary: [UInt8], context: Int) {
        network.training = false
        self.network = network; self.vocabulary = vocabulary; self.context = context
    }

    /// How each next token is chosen.
    public struct Sampling: Sendable {
        /// nil: greedy.
        public var temperature: Double?
        public var topK: Int?
        public var seed: UInt64
        public init(temperature: Double? = nil, topK: Int? = nil, seed: UInt64 = 0) {
            self.temperature = temperature; self.topK = topK; self.seed = seed
        }
    }

    /// The `prompt`'s tokens, refused if it holds a byte the text never had.
    public func tokens(of prompt: [UInt8]) throws -> [Int] {
        var lookup = [Int?](repeating: nil, count: 256)
        for (token, byte) in vocabulary.enumerated() { lookup[Int(byte)] = token }
        return try prompt.map { byte in
            guard let token = lookup[Int(byte)] else {
                throw CohortError.settings(String(format: "--prompt: the byte 0x%02x is not in the run's text", byte))
            }
            return token
        }
    }

    /// `count` more bytes after `prompt` (which must not be empty).
    public func continuation(of prompt: [UInt8], count: Int, sampling: Sampling = Sampling()) throws -> [UInt8] {
        precondition(!prompt.isEmpty, "a prompt to continue")
        var tokens = try self.tokens(of: prompt)
        let classes = vocabulary.count
        var rng = SplitMix64(seed: sampling.seed, stream: 4)
        let x = FloatBuffer(count: context)
        var generated: [UInt8] = []
        for _ in 0..<count {
            let window = tokens.suffix(context)
            x.pointer.update(repeating: 0, count: context)
            for (i, token) in window.enumerated() { x[i] = Float(token) }
            let logits = network.forward(x.pointer, batch: 1) + (window.count - 1) * classes
            let next = Self.choose(UnsafeBufferPointer(start: logits, count: classes), sampling: sampling, rng: &rng)
            tokens.append(next)
            generated.append(vocabulary[next])
        }
        return generated
    }

    /// The token `sampling` takes from `logits`.
    static func choose(_ logits: UnsafeBufferPointer<Float>, sampling: Sampling, rng: inout SplitMix64) -> Int {
        var best = 0
        for k in 1..<logits.count where logits[k] > logits[best] { best = k }
        guard let temperature = sampling.temperature else { return best }
        // The k largest logits (ties kept by index order), then softmax(z / τ) over them, in double.
        let order = (0..<logits.count).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let kept = order.prefix(min(sampling.topK ?? logits.count, logits.count))
        let top = Double(logits[best])
        let weights = kept.map { Foundation.exp((Double(logits[$0]) - top) / temperature) }
        var u = Double(rng.next() >> 11) * 0x1p-53 * weights.reduce(0, +)
        for (token, weight) in zip(kept, weights) {
            u -= weight
            if u < 0 { return token }
        }
        return kept.last!
    }
}
