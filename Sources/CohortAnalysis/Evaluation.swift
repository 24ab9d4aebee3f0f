import CohortBase
import CohortData
import CohortNN
import Foundation

/// A trained model's figures on a labelled set: mean loss, accuracy, accuracy per class and
/// the confusion matrix, as `evaluation.json` records them. On a text's windows every position
/// is one target: the figures are per position, the classes the text's bytes.
public struct Evaluation: Codable, Equatable, Sendable {
    public var images: Int
    public var loss: Double
    public var accuracy: Double
    public var classNames: [String]
    /// Correct / images of each true class (nil for a class with no image).
    public var classAccuracy: [Double?]
    /// `confusion[t][p]`: images of true class t predicted as p.
    public var confusion: [[Int]]

    enum CodingKeys: String, CodingKey {
        case images, loss, accuracy, classNames = "class_names", classAccuracy = "class_accuracy", confusion
    }

    /// Runs `network` over all of `data` in batches, as training's evaluation does; with
    /// test-time augmentation, each batch also as its other views, the views' probabilities
    /// averaged (`SoftmaxCrossEntropy.evaluate(views:)`).
    public init(network: Network, data: ImageDataset, classNames: [String], augmentation: TestTimeAugmentation = .none) {
        let classes = data.classes, batch = network.maxBatch, targets = data.targetsPerSample
        precondition(targets == 1 || augmentation.views == 1, "test-time augmentation of images only")
        let loss = SoftmaxCrossEntropy(classes: classes, maxBatch: batch * targets)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var lossSum = 0.0
        // Each view's images and logits ([batch, K]), and the predicted class of each image.
        var view = [Float](repeating: 0, count: augmentation.views > 1 ? batch * data.sampleSize : 0)
        var logits = [Float](repeating: 0, count: augmentation.views * batch * classes)
        var predictions = [Int](repeating: 0, count: batch * targets)
        forEachBatch(of: data, network: network) { _, n, x, labels in
            if augmentation.views == 1 {
                let output = network.forward(x, batch: n)
                lossSum += loss.evaluate(logits: output, labels: labels, batch: n * targets).lossSum
                for row in 0..<(n * targets) {
                    predictions[row] = Self.argmax(UnsafeBufferPointer(start: output + row * classes, count: classes))
                }
            } else {
                view.withUnsafeMutableBufferPointer { view in
                    logits.withUnsafeMutableBufferPointer { logits in
                        for v in 0..<augmentation.views {
                            view.baseAddress!.update(from: x, count: n * data.sampleSize)
                            augmentation.makeView(v, of: view.baseAddress!, count: n, channels: data.channels,
                                                  height: data.height, width: data.width)
                            (logits.baseAddress! + v * batch * classes)
                                .update(from: network.forward(view.baseAddress!, batch: n), count: n * classes)
                        }
                        let views = (0..<augmentation.views).map { UnsafePointer(logits.baseAddress! + $0 * batch * classes) }
                        lossSum += predictions.withUnsafeMutableBufferPointer {
                            loss.evaluate(views: views, labels: labels, batch: n, predictions: $0.baseAddress!).lossSum
                        }
                    }
                }
            }
            for row in 0..<(n * targets) { confusion[Int(labels[row])][predictions[row]] += 1 }
        }
        let correct = (0..<classes).map { confusion[$0][$0] }
        images = data.count
        let scored = Double(max(1, data.count * targets))
        self.loss = lossSum / scored
        accuracy = Double(correct.reduce(0, +)) / scored
        self.classNames = classNames
        classAccuracy = (0..<classes).map { c in
            let total = confusion[c].reduce(0, +)
            return total > 0 ? Double(correct[c]) / Double(total) : nil
        }
        self.confusion = confusion
    }

    /// The first index of the largest score (as `SoftmaxCrossEntropy` counts a correct answer).
    static func argmax(_ scores: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<scores.count where scores[i] > scores[best] { best = i }
        return best
    }

    /// The confusion matrix as an SVG: a cell per (true, predicted) pair, shaded by the share of
    /// the true class's images, with the count written in it and the class names on the axes.
    public func confusionSVG() -> String {
        let n = confusion.count, cell = 44.0, left = 120.0, top = 60.0
        let width = left + cell * Double(n) + 20, height = top + cell * Double(n) + 40
        let title = "Confusion matrix: \(images) images, accuracy \(String(format: "%.2f%%", 100 * accuracy))"
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="20" font-size="14">\(title)</text>
        <text x="\(left + cell * Double(n) / 2)" y="\(height - 8)" font-size="12" text-anchor="middle">predicted</text>

        """
        for t in 0..<n {
            let total = max(1, confusion[t].reduce(0, +))
            let y = top + cell * Double(t)
            svg += "<text x=\"\(left - 6)\" y=\"\(y + cell / 2 + 4)\" font-size=\"11\" text-anchor=\"end\">"
                + "\(Self.escaped(classNames[t]))</text>\n"
            for p in 0..<n {
                let share = Double(confusion[t][p]) / Double(total)
                let shade = Int(255 - 200 * share), x = left + cell * Double(p)
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(shade),\(shade),255)\" "
                    + "stroke=\"#ccc\"/><text x=\"\(x + cell / 2)\" y=\"\(y + cell / 2 + 4)\" font-size=\"10\" "
                    + "text-anchor=\"middle\">\(confusion[t][p])</text>\n"
            }
        }
        for p in 0..<n {
            let x = left + cell * Double(p) + cell / 2
            svg += "<text x=\"\(x)\" y=\"\(top - 6)\" font-size=\"10\" text-anchor=\"middle\">"
                + "\(Self.escaped(classNames[p]))</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
