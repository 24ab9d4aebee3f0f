import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import Foundation

/// Rebuilds a run's network from its `config.json` and `model.toml` (for its tensor order).
enum TestModels {
    static func network(for configPath: String) throws -> CohortNN.Network {
        let directory = (configPath as NSString).deletingLastPathComponent
        var config = try RunRecord.read(directory: directory).config
        config.out = directory
        let model = try config.modelSpec(resumed: true)
        return try model.build(inputShape: config.dataset.imageShape ?? model.syntheticShape, classes: 10, maxBatch: 1)
    }
}

extension TestModels {
    /// The report's CNN with other filter counts (small ones keep fixtures and checks fast):
    /// the built-in model file with its two widths replaced.
    static func cnn(channels: Int, size: Int, filters: (Int, Int) = (32, 64), maxBatch: Int) -> CohortNN.Network {
        let text = ModelFile.builtin(.cnn).text
            .replacingOccurrences(of: "\"32 * width\"", with: String(filters.0))
            .replacingOccurrences(of: "\"64 * width\"", with: String(filters.1))
        precondition(text != ModelFile.builtin(.cnn).text || filters == (32, 64), "the CNN's file changed")
        return try! ModelFile(text: text, source: "test cnn")
            .build(BuildSettings(inputShape: [channels, size, size], classes: 10, maxBatch: maxBatch))
    }

    /// The built-in recurrent model `kind` over `[steps, inputSize]` inputs.
    static func sequence(_ kind: ModelKind, steps: Int, inputSize: Int, hidden: Int, maxBatch: Int) -> CohortNN.Network {
        try! ModelFile.builtin(kind).build(BuildSettings(inputShape: [steps, inputSize], classes: 10,
                                                         parameters: ["hidden": hidden], maxBatch: maxBatch))
    }
}
