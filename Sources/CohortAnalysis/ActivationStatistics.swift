import CohortData
import CohortNN
import Foundation

/// Mean and standard deviation of a set of activations (population standard deviation,
/// over every element of every sample).
public struct ActivationSummary: Codable, Equatable, Sendable {
    public let name: String
    public let mean: Double, std: Double
    public let count: Int
}

/// Accumulates Σv and Σv² in double precision.
struct RunningMoments {
    var sum = 0.0, sumOfSquares = 0.0, count = 0

    mutating func add(_ p: UnsafePointer<Float>, count n: Int) {
        var s = 0.0, q = 0.0
        for i in 0..<n { let v = Double(p[i]); s += v; q += v * v }
        sum += s; sumOfSquares += q; count += n
    }

    func summary(_ name: String) -> ActivationSummary {
        let mean = count > 0 ? sum / Double(count) : .nan
        let variance = count > 0 ? max(0, sumOfSquares / Double(count) - mean * mean) : .nan
        return ActivationSummary(name: name, mean: mean, std: variance.squareRoot(), count: count)
    }
}

public enum ActivationStatistics {
    /// Every ReLU's output over `data`, blocks' included, named ReLU1, ReLU2, ... in forward
    /// order (the report's names): after each batch's forward pass, each ReLU's last output.
    public static func relus(_ network: Network, data: ImageDataset) -> [ActivationSummary] {
        let relus = network.allLayers.compactMap { $0 as? ReLU }
        guard !relus.isEmpty else { return [] }
        var moments = [RunningMoments](repeating: RunningMoments(), count: relus.count)
        forEachBatch(of: data, network: network) { _, n, x in
            _ = network.forward(x, batch: n)
            for (k, relu) in relus.enumerated() {
                moments[k].add(relu.lastOutput!, count: n * relu.outputShape.elementCount)
            }
        }
        return moments.enumerated().map { k, m in m.summary("ReLU\(k + 1)") }
    }

    /// For a recurrent model: the hidden state h_t's values over `data`, per step t = 1...T.
    public static func hiddenStates(_ network: Network, data: ImageDataset) -> [ActivationSummary] {
        guard let index = network.layers.firstIndex(where: { $0 is Recurrent }),
              let recurrent = network.layers[index] as? Recurrent else { return [] }
        var moments = [RunningMoments](repeating: RunningMoments(), count: recurrent.steps)
        forEachBatch(of: data, network: network) { _, n, x in
            _ = network.forward(x, batch: n, through: index)
            for t in 1...recurrent.steps {
                moments[t - 1].add(recurrent.hiddenState(step: t, batch: n), count: n * recurrent.hidden)
            }
        }
        return moments.enumerated().map { $1.summary("h\($0 + 1)") }
    }
}
