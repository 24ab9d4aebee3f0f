import CohortData
import CohortNN
import CohortTensor

/// The deconvolutional network of Zeiler & Fergus ("Visualizing and Understanding
/// Convolutional Networks", 2014): a feature's activation is projected back to pixel space
/// through the layers below it, each reversed: max-pooling by unpooling with the switches
/// of the forward pass, ReLU by rectifying the signal, convolution by the transposed filters.
public enum Deconvnet {
    /// Why the deconvnet cannot run through `network`, if it cannot: it passes convolutions,
    /// ReLUs and max-pooling (and reshapes after them), as Zeiler & Fergus's networks are made.
    public static func obstacle(in network: Network) -> String? {
        for (i, layer) in network.layers.enumerated() {
            switch layer {
            case is Conv2D, is ReLU, is MaxPool2D, is Flatten, is Linear: continue
            default:
                return "it runs through convolutions, ReLUs and max-pooling only, and layer \(i) is a \(type(of: layer))"
            }
        }
        return nil
    }

    /// One projection: the strongest unit of `map` in the feature layer, alone, in pixel space.
    public struct Projection {
        /// `[C, H, W]` in the network's input space.
        public let pixels: [Float]
        /// Where the unit sits in its map, and its activation.
        public let unit: (y: Int, x: Int)
        public let activation: Float
    }

    /// The layer whose output holds conv layer `convIndex`'s features: the ReLU right after
    /// it if there is one (features as the next layer sees them), else the convolution.
    public static func featureLayer(after convIndex: Int, in network: Network) -> Int {
        convIndex + 1 < network.layers.count && network.layers[convIndex + 1] is ReLU ? convIndex + 1 : convIndex
    }

    /// Projects the strongest unit of `map` in layer `featureLayer`'s output, for the one
    /// sample `x[1, C, H, W]`, back to pixel space.
    public static func project(_ network: Network, input x: UnsafePointer<Float>, featureLayer: Int,
                               map: Int) -> Projection {
        let shape = network.layers[featureLayer].outputShape
        precondition(shape.count == 3 && map < shape[0], "layer \(featureLayer) has no feature map \(map)")
        let plane = shape[1] * shape[2]
        let features = network.forward(x, batch: 1, through: featureLayer)
        var best = 0
        for i in 0..<plane where features[map * plane + i] > features[map * plane + best] { best = i }
        let activation = features[map * plane + best]
        // The signal: that one unit, every other unit of every map 0.
        var signal = [Float](repeating: 0, count: shape.elementCount)
        signal[map * plane + best] = activation
        for i in stride(from: featureLayer, through: 0, by: -1) {
            let layer = network.layers[i]
            let count = layer.inputShape.elementCount
            switch layer {
            case let conv as Conv2D:
                signal = signal.withUnsafeBufferPointer {
                    Array(UnsafeBufferPointer(start: conv.transposed($0.baseAddress!, batch: 1), count: count))
                }
            case let pool as MaxPool2D:
                signal = signal.withUnsafeBufferPointer {
                    Array(UnsafeBufferPointer(start: pool.unpool($0.baseAddress!, batch: 1), count: count))
                }
            case is ReLU:
                // Rectify the signal itself (not the forward pass's mask, as backpropagation would).
                signal = signal.map { max(0, $0) }
            default:
                precondition(count == layer.outputShape.elementCount, "the deconvnet passes only conv, pool, ReLU, reshapes")
            }
        }
        return Projection(pixels: signal, unit: (best / shape[2], best % shape[2]), activation: activation)
    }
}

extension Deconvnet {
    /// For each map of the feature layer: the `top` samples of `data` whose strongest unit in
    /// that map is largest, strongest first (ties: the earlier sample).
    public static func topSamples(_ network: Network, data: ImageDataset, featureLayer: Int,
                                  top: Int = 9) -> [[(sample: Int, activation: Float)]] {
        let shape = network.layers[featureLayer].outputShape
        let maps = shape[0], plane = shape[1] * shape[2], size = shape.elementCount
        var best = [[(sample: Int, activation: Float)]](repeating: [], count: maps)
        forEachBatch(of: data, network: network) { start, n, x in
            let features = network.forward(x, batch: n, through: featureLayer)
            for s in 0..<n {
                for m in 0..<maps {
                    let p = features + s * size + m * plane
                    var peak = p[0]
                    for i in 1..<plane where p[i] > peak { peak = p[i] }
                    // Keep the list sorted, strongest first; replace the weakest when full.
                    if best[m].count < top || peak > best[m][best[m].count - 1].activation {
                        let at = best[m].firstIndex { peak > $0.activation } ?? best[m].count
                        best[m].insert((start + s, peak), at: at)
                        if best[m].count > top { best[m].removeLast() }
                    }
                }
            }
        }
        return best
    }
}
