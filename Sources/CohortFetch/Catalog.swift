import CohortBase
import CohortData
import Foundation

/// What `cohort data fetch` downloads for a data set: its files, where they are published,
/// and the MD5 sums published with them.
public struct Catalog: Sendable {
    public struct File: Sendable {
        public var name: String
        public var md5: String
    }

    public let dataset: DatasetKind
    /// The address the files are published under (a file's URL is this + its name).
    public let official: String
    public var files: [File]
    /// The archive holds the data set's files, unpacked from its `cifar-10-batches-bin/` folder.
    public let isArchive: Bool

    /// The data sets' own addresses and sums: MNIST's page (LeCun, Cortes, Burges), Zalando's
    /// Fashion-MNIST repository, and the CIFAR-10 page (Krizhevsky), which publishes the
    /// binary version as one tar.gz.
    public static func standard(_ dataset: DatasetKind) throws -> Catalog {
        switch dataset {
        case .mnist:
            return idx(dataset, official: "http://yann.lecun.com/exdb/mnist/",
                       sums: ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"])
        case .fashionMNIST:
            return idx(dataset, official: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                       sums: ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                              "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"])
        case .cifar10:
            return Catalog(dataset: dataset, official: "https://www.cs.toronto.edu/~kriz/", files: [
                File(name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530"),
            ], isArchive: true)
        case .synthetic:
            throw CohortError.settings("synthetic data is generated from the seed; there is nothing to fetch")
        case .folder, .arrays, .pack:
            throw CohortError.settings("\(dataset.rawValue) is your own data in --data-dir; there is nothing to fetch")
        case .text:
            throw CohortError.settings("text is your own file, --data-file; there is nothing to fetch")
        }
    }

    /// An IDX data set's four gzip files (`IDX.fileStems`), with their sums in that order.
    static func idx(_ dataset: DatasetKind, official: String, sums: [String]) -> Catalog {
        Catalog(dataset: dataset, official: official,
                files: zip(IDX.fileStems, sums).map { File(name: "\($0).gz", md5: $1) }, isArchive: false)
    }

    /// The sums of `text` (lines `MD5  NAME`, as `md5sum` writes them) in place of the
    /// published ones, for mirrors that keep repacked copies; every file must be listed.
    public mutating func useChecksums(_ text: String, source: String) throws {
        var sums: [String: String] = [:]
        for (number, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count == 2, words[0].count == 32, words[0].allSatisfy(\.isHexDigit) else {
                throw CohortError.settings("\(source):\(number + 1): expected 'MD5  NAME', got '\(line)'")
            }
            sums[String(words[1]).trimmingCharacters(in: CharacterSet(charactersIn: "*"))] = words[0].lowercased()
        }
        for index in files.indices {
            guard let sum = sums[files[index].name] else {
                throw CohortError.settings("\(source): no sum for \(files[index].name)")
            }
            files[index].md5 = sum
        }
    }
}
