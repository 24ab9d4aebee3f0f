import CohortTensor

/// The built-in models, by their command-line names: the report's CNN, one recurrent layer over
/// the image rows followed by a linear layer, ResNet-20, a transformer over the image rows, and a
/// character-level GPT. Each is a file of `models/`.
public enum ModelKind: String, CaseIterable, Codable, Sendable {
    case cnn, rnn, lstm, gru, resnet20
    case transformerRows = "transformer-rows", gptChar = "gpt-char"

    public var isRecurrent: Bool { self == .rnn || self == .lstm || self == .gru }

    /// The input shape of the report's data for this model: CIFAR-10's for the CNN, MNIST's
    /// for the models that read image rows (synthetic data and benchmarks take it).
    public var standardImageShape: [Int] { isRecurrent || self == .transformerRows ? [1, 28, 28] : [3, 32, 32] }
}

public enum Models {
    /// The built-in model `kind` for per-sample images `[C, H, W]`, built from its model file
    /// (`ModelFile.builtin`). Recurrent models read the H rows of a one-channel image as H steps
    /// of W features (callers check `C == 1`). `hidden` and `width` set the file's parameters of
    /// those names, where it has them: the recurrent models' state size; `width` multiplies the CNN's filters (32·width, 64·width): a larger model for scaling
    /// studies, where the report's is small enough that communication barely shows.
    /// `precision`: what the CNN's convolutions, or the recurrent layer's products, multiply.
    public static func make(_ kind: ModelKind, imageShape: Shape, hidden: Int, width: Int = 1, classes: Int = 10,
                            maxBatch: Int, sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32) -> Network {
        do {
            return try ModelSpec(file: .builtin(kind), hidden: hidden, width: width)
                .build(inputShape: imageShape, classes: classes, maxBatch: maxBatch, sharing: sharing, precision: precision)
        } catch {
            preconditionFailure("\(error)")
        }
    }
}
