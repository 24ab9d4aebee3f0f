import CohortData
import CohortNN
import Foundation

/// Occlusion sensitivity (Zeiler & Fergus, section 4.2): a grey square slides over an image
/// and the model's probability of the true class is recorded at every position. Where the
/// probability drops, the model looks.
public enum Occlusion {
    public struct Map {
        /// Probability of the true class with the square's top-left corner at
        /// `(rowStarts[i], columnStarts[j])`, row-major `[rows, columns]`.
        public let probabilities: [Float]
        public let rowStarts: [Int], columnStarts: [Int]
        /// The probability without occlusion.
        public let unoccluded: Float
        public var rows: Int { rowStarts.count }
        public var columns: Int { columnStarts.count }
    }

    /// Square corners from 0 in steps of `stride`, with the last one flush with the edge.
    static func starts(extent: Int, size: Int, stride: Int) -> [Int] {
        var result = Array(Swift.stride(from: 0, through: max(0, extent - size), by: stride))
        if let last = result.last, last < extent - size { result.append(extent - size) }
        return result
    }

    /// Sample `index` of `data`, occluded by a `size`×`size` square of byte value `grey` in
    /// every channel at every position `stride` apart.
    public static func map(_ network: Network, data: ImageDataset, index: Int, size: Int, stride: Int,
                           grey: UInt8 = 128) -> Map {
        precondition(size > 0 && stride > 0 && size <= min(data.height, data.width), "occluder must fit the image")
        let rows = starts(extent: data.height, size: size, stride: stride)
        let columns = starts(extent: data.width, size: size, stride: stride)
        let sampleSize = data.sampleSize, plane = data.height * data.width
        let original = try! data.values(index)  // decoded: reading cannot fail
        // The unoccluded image first, then one variant per position.
        var pixels = original
        pixels.reserveCapacity((1 + rows.count * columns.count) * sampleSize)
        for y0 in rows {
            for x0 in columns {
                var variant = original
                for c in 0..<data.channels {
                    for y in y0..<(y0 + size) {
                        for x in x0..<(x0 + size) { variant[c * plane + y * data.width + x] = Float(grey) }
                    }
                }
                pixels += variant
            }
        }
        let label = data.labels[index]
        let store = MemorySamples(values: pixels, sampleSize: sampleSize, element: data.samples.element)
        let variants = ImageDataset(name: data.name, shape: data.imageShape, samples: store,
                                    labels: [Int32](repeating: label, count: pixels.count / sampleSize),
                                    classes: data.classes, classNames: data.classNames, normalization: data.normalization)
        // p(true class) = exp(-cross-entropy), one sample at a time.
        let classes = network.outputShape.elementCount
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: 1)
        var target = Int32(label), probabilities: [Float] = []
        forEachBatch(of: variants, network: network) { _, n, x in
            let logits = network.forward(x, batch: n)
            for s in 0..<n {
                probabilities.append(Float(Foundation.exp(-loss.evaluate(logits: logits + s * classes, labels: &target, batch: 1).lossSum)))
            }
        }
        return Map(probabilities: Array(probabilities.dropFirst()), rowStarts: rows, columnStarts: columns,
                   unoccluded: probabilities[0])
    }
}
