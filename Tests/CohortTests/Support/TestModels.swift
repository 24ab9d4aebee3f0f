import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import Foundation

/// Rebuilds a run's network from its `config.json` (for its tensor order).
enum TestModels {
    static func network(for configPath: String) throws -> CohortNN.Network {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath)))
            as! [String: Any]
        let model = CohortNN.ModelKind(rawValue: config["model"] as! String)!
        let shape = model.isRecurrent ? [1, 28, 28] : [3, 32, 32]
        return CohortNN.Models.make(model, imageShape: shape, hidden: config["hidden"] as! Int, maxBatch: 1)
    }
}
