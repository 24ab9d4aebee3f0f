import CohortTensor

/// Which samples a forward pass sees: the epoch and each sample's index in its data set, set by
/// the trainer before every training forward. Random choices made from them alone (dropout's
/// masks, like augmentation's crops) are the same whichever rank or replica sees the sample.
public final class SampleKeys {
    public var epoch = 0
    public var samples: [Int] = []
    public init() {}
}

/// Dropout (PyTorch's `nn.Dropout(p)`): in training each value is zeroed with probability p
/// and the others scaled by 1/(1 - p); in evaluation the layer passes its input on.
///
/// Sample n's mask is drawn from (seed, stream, epoch, sample index) alone (`SampleKeys`), so N
/// ranks drop the same values as 1 rank with the same global batch. Each dropout layer of a
/// network has its own stream.
public final class Dropout: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let probability: Float
    private let seed: UInt64, stream: UInt64
    private let keys: SampleKeys
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// 1/(1 - p) where kept, 0 where dropped, for the last training forward.
    private let mask: FloatBuffer
    private var training = true

    public init(shape: Shape, probability: Float, seed: UInt64, stream: UInt64, keys: SampleKeys, maxBatch: Int) {
        precondition(probability >= 0 && probability < 1, "dropout probability in [0, 1)")
        inputShape = shape
        self.probability = probability
        self.seed = seed; self.stream = stream; self.keys = keys
        output = FloatBuffer(count: maxBatch * shape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * shape.elementCount)
        mask = FloatBuffer(count: maxBatch * shape.elementCount)
    }

    public func setTraining(_ training: Bool) { self.training = training }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        guard training else { return x }
        precondition(keys.samples.count == batch, "dropout needs the batch's sample indices (SampleKeys)")
        let size = inputShape.elementCount, keep = 1 / (1 - probability)
        for n in 0..<batch {
            var rng = SplitMix64(seed: seed, stream: stream, index: UInt64(keys.epoch) << 32 | UInt64(keys.samples[n]))
            let m = mask.pointer + n * size, p = x + n * size, y = output.pointer + n * size
            for i in 0..<size {
                m[i] = rng.nextUnitFloat() < probability ? 0 : keep
                y[i] = p[i] * m[i]
            }
        }
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        guard training else { return dy }
        let count = batch * inputShape.elementCount
        for i in 0..<count { inputGrad.pointer[i] = dy[i] * mask.pointer[i] }
        return UnsafePointer(inputGrad.pointer)
    }
}
