import ArgumentParser
import CohortAnalysis
import CohortBase
import CohortData
import CohortNN
import Foundation

/// `cohort predict`: a trained model's top classes for images.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The top classes, with probabilities, that a trained model gives PNG images or test images.",
        discussion: """
        Each PNG (8-bit grey, grey + alpha, RGB, RGBA or palette) becomes the model's input as \
        the data set's own images are: colour to grey as BT.601 luma or grey to colour by \
        copying, resized to the model's size by bilinear interpolation, alpha dropped, then \
        normalised as in training. --index takes images from the run's test set instead.
        """)

    @Option(name: .customLong("run"), help: "Run directory, one of its checkpoints, or a .safetensors file in either.")
    var path: String
    @Option(help: ArgumentHelp("Test images of the run's data set, by index (e.g. 0,5,17).", valueName: "indices"))
    var index: String?
    @Option(help: "Directory with the data set's files, for --index (default: the run's).")
    var dataDir: String?
    @Option(help: "Classes shown per image.")
    var top = 3
    @Argument(help: "PNG files.")
    var files: [String] = []

    func validate() throws {
        guard !files.isEmpty || index != nil else { throw ValidationError("give PNG files or --index N,...") }
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
            let names = (0..<test.classes).map(trained.dataset.className)
            var inputs: [(name: String, pixels: [UInt8])] = []
            for file in files {
                let image = try PNGReader.read(file)
                inputs.append((file, image.converted(channels: test.channels, height: test.height, width: test.width)))
            }
            for i in index.flatMap(indices) ?? [] {
                guard i < test.count else {
                    throw CohortError.settings("--index \(i): the test set has \(test.count) images (0...\(test.count - 1))")
                }
                let size = test.sampleSize
                inputs.append(("test image \(i) (\(names[Int(test.labels[i])]))", Array(test.pixels[(i * size)..<((i + 1) * size)])))
            }
            for input in inputs {
                let probabilities = classProbabilities(of: input.pixels, like: test, network: trained.network)
                let best = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(top)
                say("\(input.name): " + best.map { String(format: "%@ %.1f%%", names[$0], 100 * probabilities[$0]) }
                    .joined(separator: ", "))
            }
        }
    }

    /// Softmax of the model's output for one image of `like`'s shape, normalised as `like` is.
    func classProbabilities(of pixels: [UInt8], like data: ImageDataset, network: Network) -> [Double] {
        let single = ImageDataset(name: data.name, channels: data.channels, height: data.height, width: data.width,
                                  pixels: pixels, labels: [0], classes: data.classes, mean: data.mean, std: data.std)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: data.sampleSize), y = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { x.deallocate(); y.deallocate() }
        single.fill(indices: [0], x: x, y: y)
        let logits = network.forward(x, batch: 1)
        let scores = (0..<data.classes).map { Double(logits[$0]) }
        let largest = scores.max() ?? 0
        let exps = scores.map { exp($0 - largest) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }
}
