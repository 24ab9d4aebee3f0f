import ArgumentParser
import CohortAnalysis
import CohortBase
import CohortData
import CohortNN
import Foundation

/// `cohort predict`: a trained model's top classes for images.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The top classes, with probabilities, that a trained model gives image files or test images.",
        discussion: """
        Each JPEG or PNG becomes the model's input as an image folder's images do \
        (docs/training.md#image-folders): converted to grey or colour as PIL's convert, its \
        shorter side resized and its centre cut to the model's size, then normalised as in \
        training (the run's data.json). --index takes images from the run's test set instead.
        """)

    @Option(name: .customLong("run"), help: "Run directory, one of its checkpoints, or a .safetensors file in either.")
    var path: String
    @Option(help: ArgumentHelp("Test images of the run's data set, by index (e.g. 0,5,17).", valueName: "indices"))
    var index: String?
    @Option(help: "Directory with the data set's files, for --index (default: the run's).")
    var dataDir: String?
    @Option(help: "Classes shown per image.")
    var top = 3
    @Argument(help: "JPEG or PNG files.")
    var files: [String] = []

    func validate() throws {
        guard !files.isEmpty || index != nil else { throw ValidationError("give image files or --index N,...") }
        guard top > 0 else { throw ValidationError("--top must be positive, got \(top)") }
        if let index, indices(index) == nil { throw ValidationError("--index takes indices >= 0 separated by commas, got '\(index)'") }
    }

    func indices(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return parts.map { $0! }
    }

    func run() throws {
        try reportingErrors {
            let trained = try TrainedModel(path: path, dataDirectory: dataDir, maxBatch: 1)
            let test = trained.test
            let names = test.classNames
            guard files.isEmpty || test.samples.element == .uint8 else {
                throw CohortError.settings("the run trained on float arrays, not images; use --index")
            }
            let transform = ImageTransform(channels: test.channels, height: test.height, width: test.width)
            var inputs: [(name: String, values: [Float])] = []
            for file in files {
                var pixels = [UInt8](repeating: 0, count: test.sampleSize)
                transform.apply(try ImageFile.read(file), into: &pixels)
                inputs.append((file, pixels.map(Float.init)))
            }
            for i in index.flatMap(indices) ?? [] {
                guard i < test.count else {
                    throw CohortError.settings("--index \(i): the test set has \(test.count) images (0...\(test.count - 1))")
                }
                inputs.append(("test image \(i) (\(names[Int(test.labels[i])]))", try test.values(i)))
            }
            for input in inputs {
                let probabilities = classProbabilities(of: input.values, like: test, network: trained.network)
                let best = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(top)
                say("\(input.name): " + best.map { String(format: "%@ %.1f%%", names[$0], 100 * probabilities[$0]) }
                    .joined(separator: ", "))
            }
        }
    }

    /// Softmax of the model's output for one sample of `like`'s shape (values as stored), normalised as `like` is.
    func classProbabilities(of values: [Float], like data: ImageDataset, network: Network) -> [Double] {
        let store = MemorySamples(values: values, sampleSize: data.sampleSize, element: data.samples.element)
        let single = ImageDataset(name: data.name, shape: data.imageShape, samples: store, labels: [0], classes: data.classes,
                                  classNames: data.classNames, normalization: data.normalization)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: data.sampleSize), y = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { x.deallocate(); y.deallocate() }
        single.fillDecoded(indices: [0], x: x, y: y)
        let logits = network.forward(x, batch: 1)
        let scores = (0..<data.classes).map { Double(logits[$0]) }
        let largest = scores.max() ?? 0
        let exps = scores.map { exp($0 - largest) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }
}
