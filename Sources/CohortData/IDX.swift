import CohortBase
import Foundation

/// MNIST-format IDX files (MNIST, Fashion-MNIST), gzip-compressed or not.
///
/// Layout: a big-endian magic `0x0000 08 NN` (08 = unsigned bytes, NN = number of
/// dimensions), NN big-endian UInt32 sizes, then the bytes. Images are 3-D
/// `[count, rows, columns]`, labels 1-D `[count]`.
public enum IDX {
    /// Reads one IDX file and checks its rank; returns its dimensions and payload.
    public static func read(_ path: String, dimensions expected: Int) throws -> (dims: [Int], bytes: ArraySlice<UInt8>) {
        let data = try readPossiblyCompressed(path)
        guard data.count >= 4 else { throw CohortError.failure("\(path): too short for an IDX header (\(data.count) bytes)") }
        guard data[0] == 0, data[1] == 0, data[2] == 0x08 else {
            throw CohortError.failure(String(format: "%@: bad IDX magic number 0x%02X%02X%02X%02X (expected 0x000008%02X)",
                                   path, data[0], data[1], data[2], data[3], expected))
        }
        let rank = Int(data[3])
        guard rank == expected else {
            throw CohortError.failure("\(path): IDX file has \(rank) dimensions, expected \(expected)")
        }
        let headerSize = 4 + 4 * rank
        guard data.count >= headerSize else { throw CohortError.failure("\(path): IDX header is truncated") }
        var dims: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
        }
        guard dims.allSatisfy({ $0 > 0 }) else { throw CohortError.failure("\(path): IDX dimensions \(dims) contain a zero") }
        // The product may overflow for a damaged header: stop as soon as it exceeds the data.
        var payload = 1
        for d in dims {
            let (product, overflow) = payload.multipliedReportingOverflow(by: d)
            guard !overflow, product <= data.count - headerSize else {
                throw CohortError.failure("\(path): truncated: IDX dimensions \(dims) promise more data than the file's "
                                + "\(data.count - headerSize) bytes after the header")
            }
            payload = product
        }
        guard data.count - headerSize == payload else {
            throw CohortError.failure("\(path): \(data.count - headerSize - payload) unexpected bytes after the data")
        }
        return (dims, data[headerSize...])
    }

    /// Reads a matching pair of image and label files into an `ImageDataset` of one channel.
    public static func load(images: String, labels: String, name: String, classes: Int = 10) throws -> ImageDataset {
        let (imageDims, pixels) = try read(images, dimensions: 3)
        let (labelDims, labelBytes) = try read(labels, dimensions: 1)
        guard imageDims[0] == labelDims[0] else {
            throw CohortError.failure("\(images): \(imageDims[0]) images but \(labels) has \(labelDims[0]) labels")
        }
        if let bad = labelBytes.firstIndex(where: { Int($0) >= classes }) {
            throw CohortError.failure("\(labels): label \(labelBytes[bad]) at index \(bad - labelBytes.startIndex) is not below \(classes)")
        }
        return ImageDataset(name: name, channels: 1, height: imageDims[1], width: imageDims[2],
                            pixels: Array(pixels), labels: Array(labelBytes), classes: classes)
    }

    /// The four files of an IDX data set (MNIST, Fashion-MNIST): training images and labels,
    /// then test images and labels.
    public static let fileStems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                   "t10k-labels-idx1-ubyte"]

    /// Loads `train-*` and `t10k-*` from `directory`, with or without `.gz`, and checks
    /// that both splits have the same image size.
    public static func loadSplits(directory: String, name: String) throws -> DatasetSplits {
        func find(_ stem: String) throws -> String {
            let candidates = ["\(stem).gz", stem, stem.replacingOccurrences(of: "-idx", with: ".idx") + ".gz",
                              stem.replacingOccurrences(of: "-idx", with: ".idx")]
            for c in candidates where FileManager.default.fileExists(atPath: "\(directory)/\(c)") {
                return "\(directory)/\(c)"
            }
            throw CohortError.failure("\(directory): no \(stem)[.gz] (\(name) needs \(fileStems.joined(separator: ", ")))")
        }
        let train = try load(images: find(fileStems[0]), labels: find(fileStems[1]), name: name)
        let testImages = try find(fileStems[2])
        let test = try load(images: testImages, labels: find(fileStems[3]), name: name)
        guard train.height == test.height, train.width == test.width else {
            throw CohortError.failure("\(testImages): test images are \(test.height)x\(test.width), "
                            + "training images \(train.height)x\(train.width)")
        }
        return DatasetSplits(train: train, test: test)
    }
}
