import CohortTensor
import Foundation

/// What a run trains: a model file and the values the run gives its parameters.
public struct ModelSpec: Equatable, Sendable {
    public let file: ModelFile
    public let parameters: [String: Int]

    /// `parameters` must all be the file's (`ModelDescription.build` refuses others).
    public init(file: ModelFile, parameters: [String: Int] = [:]) {
        self.file = file
        self.parameters = parameters
    }

    /// `--hidden` and `--width` as the file's parameters `hidden` and `width` where it has them
    /// (the recurrent models' state size, the CNN's filter multiplier), `parameters` over them.
    public init(file: ModelFile, hidden: Int, width: Int, parameters: [String: Int] = [:]) {
        let declared = file.description.parameters
        var values = ["hidden": hidden, "width": width].filter { declared[$0.key] != nil }
        values.merge(parameters) { $1 }
        self.init(file: file, parameters: values)
    }

    /// The name runs and reports use: the file's `name`, else its source.
    public var name: String { file.description.name ?? file.source }

    /// Whether the model reads the rows of one-channel images as time steps (recurrent models).
    public var readsRows: Bool { file.description.readsRows }

    /// The image shape of synthetic data for it: the file's `input`, else MNIST's for a model
    /// that reads rows and CIFAR-10's for the others.
    public var syntheticShape: [Int] { file.description.input ?? (readsRows ? [1, 28, 28] : [3, 32, 32]) }

    public func build(inputShape: Shape, classes: Int, maxBatch: Int, sharing: FloatBuffer? = nil,
                      precision: FloatFormat = .fp32, seed: UInt64 = 0) throws(ModelFileError) -> Network {
        try file.build(BuildSettings(inputShape: inputShape, classes: classes, parameters: parameters, maxBatch: maxBatch,
                                     sharing: sharing, precision: precision, seed: seed))
    }

    /// The network for samples of `format` (the data's input, classes, tokens and targets).
    public func build(on format: SampleFormat, maxBatch: Int, sharing: FloatBuffer? = nil, precision: FloatFormat = .fp32,
                      seed: UInt64 = 0) throws(ModelFileError) -> Network {
        var settings = BuildSettings(inputShape: format.inputShape, classes: format.classes, parameters: parameters,
                                     maxBatch: maxBatch, sharing: sharing, precision: precision, seed: seed)
        settings.vocabulary = format.vocabulary
        settings.targetsPerSample = format.targetsPerSample
        return try file.build(settings)
    }

    /// `"n=5,filters=32"` -> `["n": 5, "filters": 32]` (`--model-param`).
    public static func parseParameters(_ text: String) throws(ModelFileError) -> [String: Int] {
        var values: [String: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let value = Int(parts[1]) else {
                throw ModelFileError("--model-param \(text): expected NAME=INTEGER[,NAME=INTEGER...]")
            }
            guard values.updateValue(value, forKey: parts[0]) == nil else {
                throw ModelFileError("--model-param \(text): \(parts[0]) is given twice")
            }
        }
        return values
    }
}

/// What the data gives a model per sample and asks of it: the input's shape (an image
/// `[C, H, W]`, or a window's T tokens `[T]`), the classes, the values tokens take (where the
/// input is tokens), and the targets per sample (1 label, or one at each of T positions, where
/// the model gives `[T, classes]`).
public struct SampleFormat: Equatable, Sendable {
    public var inputShape: Shape, classes: Int, vocabulary: Int?, targetsPerSample: Int

    public init(inputShape: Shape, classes: Int, vocabulary: Int? = nil, targetsPerSample: Int = 1) {
        self.inputShape = inputShape; self.classes = classes; self.vocabulary = vocabulary
        self.targetsPerSample = targetsPerSample
    }
}
