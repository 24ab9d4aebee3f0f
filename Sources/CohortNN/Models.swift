import CohortTensor

/// The models Cohort trains, by their command-line names: the report's CNN, and one
/// recurrent layer over the image rows followed by a linear layer.
public enum ModelKind: String, CaseIterable, Codable, Sendable {
    case cnn, rnn, lstm, gru

    public var isRecurrent: Bool { self != .cnn }

    /// The input shape of the report's data for this model: CIFAR-10's for the CNN, MNIST's
    /// for recurrent models (synthetic data and benchmarks take it).
    public var standardImageShape: [Int] { isRecurrent ? [1, 28, 28] : [3, 32, 32] }
}

public enum Models {
    /// The report's CNN for `[C, S, S]` inputs (S divisible by 4):
    /// conv 5×5 (32, pad 2) -> ReLU1 -> max-pool 2 -> conv 5×5 (64, pad 2) -> ReLU2 -> max-pool 2
    /// -> flatten -> linear(64·(S/4)², classes). Parameter names as the reference's `SeedCNN`.
    /// `filters` changes the two convolutions' widths (32, 64 by default); `precision` is
    /// what they multiply (the rest is float; conv1, on the image's few channels, stays float:
    /// `Conv2D.kernelPrecision`).
    public static func cnn(channels: Int, size: Int, classes: Int = 10, filters: (Int, Int) = (32, 64),
                           maxBatch: Int, sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32) -> Network {
        let half = size / 2, quarter = size / 4
        let (f1, f2) = filters
        return Network(layers: [
            ("conv1", Conv2D(inChannels: channels, outChannels: f1, height: size, width: size,
                             kernel: 5, padding: 2, maxBatch: maxBatch, precision: precision)),
            (nil, ReLU(shape: [f1, size, size], maxBatch: maxBatch)),
            (nil, MaxPool2D(channels: f1, height: size, width: size, kernel: 2, maxBatch: maxBatch)),
            ("conv2", Conv2D(inChannels: f1, outChannels: f2, height: half, width: half,
                             kernel: 5, padding: 2, maxBatch: maxBatch, precision: precision)),
            (nil, ReLU(shape: [f2, half, half], maxBatch: maxBatch)),
            (nil, MaxPool2D(channels: f2, height: half, width: half, kernel: 2, maxBatch: maxBatch)),
            (nil, Flatten(shape: [f2, quarter, quarter])),
            ("fc", Linear(inFeatures: f2 * quarter * quarter, outFeatures: classes, maxBatch: maxBatch)),
        ], maxBatch: maxBatch, sharing: sharing)
    }

    /// Rows of an `[1, T, I]` image as time steps -> RNN/LSTM/GRU(hidden) -> last hidden
    /// -> linear(hidden, classes). Parameter names as the reference's `SeqNet` (`rnn.*`, `fc.*`).
    /// `precision` is what the recurrent layer's products multiply (the rest is float).
    public static func sequence(_ cell: CellKind, steps: Int, inputSize: Int, hidden: Int,
                                classes: Int = 10, maxBatch: Int, inputShape: Shape? = nil,
                                sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32) -> Network {
        Network(layers: [
            ("rnn", Recurrent(kind: cell, inputSize: inputSize, hidden: hidden, steps: steps,
                              maxBatch: maxBatch, inputShape: inputShape, precision: precision)),
            ("fc", Linear(inFeatures: hidden, outFeatures: classes, maxBatch: maxBatch)),
        ], maxBatch: maxBatch, sharing: sharing)
    }

    /// The model `kind` for per-sample images `[C, H, W]`. Recurrent models read the
    /// H rows of a one-channel image as H steps of W features (callers check `C == 1`).
    /// `width` multiplies the CNN's filters (32·width, 64·width): a larger model for
    /// scaling studies, where the report's is small enough that communication barely shows.
    /// `precision`: what the CNN's convolutions, or the recurrent layer's products, multiply.
    public static func make(_ kind: ModelKind, imageShape: Shape, hidden: Int, width: Int = 1, classes: Int = 10,
                            maxBatch: Int, sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32) -> Network {
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        switch kind {
        case .cnn:
            return cnn(channels: c, size: h, classes: classes, filters: (32 * width, 64 * width), maxBatch: maxBatch,
                       sharing: sharing, precision: precision)
        case .rnn, .lstm, .gru:
            precondition(c == 1, "recurrent models read one-channel images")
            return sequence(CellKind(rawValue: kind.rawValue)!, steps: h, inputSize: w, hidden: hidden,
                            classes: classes, maxBatch: maxBatch, inputShape: imageShape, sharing: sharing,
                            precision: precision)
        }
    }
}
