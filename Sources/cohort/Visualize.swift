import ArgumentParser
import CohortBase
import CohortAnalysis

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pictures and statistics of a trained model: filters, ReLU statistics, deconvnet, occlusion.",
        discussion: """
        For the CNN: the first convolution's filters, mean and std of every ReLU over the \
        test set, the deconvnet of Zeiler and Fergus (top 9 test images per feature map and \
        their projections to pixel space) and occlusion maps. For rnn/lstm/gru: hidden-state \
        statistics per step. Writes PNGs, visualize.json and visualize.md to --out.
        """)

    @Option(name: .customLong("run"), help: "Run directory (with config.json and model.safetensors).")
    var runDirectory: String?
    @Option(help: "A .safetensors file instead, beside its run's config.json.")
    var checkpoint: String?
    @Option(help: "Directory with the dataset's files (default: the run's).")
    var dataDir: String?
    @Option(help: "Output directory (default: RUN/visualize).")
    var out: String?
    @Option(help: "Use only the first N test images.")
    var limit: Int?
    @Option(help: "Feature maps shown per conv layer in the deconvnet.")
    var maps: Int = 8
    @Option(help: "Test images in the occlusion picture.")
    var occlusionImages: Int = 4
    @Option(help: "Side of the grey occluding square, in pixels.")
    var occlusionSize: Int = 8
    @Option(help: "Step of the occluding square, in pixels.")
    var occlusionStride: Int = 2

    var settings: VisualizeSettings {
        var s = VisualizeSettings()
        s.maps = maps; s.occlusionImages = occlusionImages; s.occlusionSize = occlusionSize; s.occlusionStride = occlusionStride
        return s
    }

    func validate() throws {
        guard (runDirectory == nil) != (checkpoint == nil) else { throw ValidationError("give one of --run DIR or --checkpoint FILE") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive, got \(limit)") }
        try validating { try settings.validate() }
    }

    func run() throws {
        try reportingErrors {
            let path = runDirectory ?? checkpoint!
            let trained = try TrainedModel(path: path, dataDirectory: dataDir, testLimit: limit)
            let directory = out ?? "\(trained.runDirectory)/visualize"
            _ = try Visualizer.run(trained, settings: settings, directory: directory) { say($0) }
            say("visualize: written to \(directory) (visualize.md, visualize.json and the pictures)")
        }
    }
}
