import CohortBase
import CohortTensor
import Foundation

/// The datasets Cohort reads, by their command-line names.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
    case cifar10, mnist, fashionMNIST = "fashion-mnist", synthetic

    /// The shape of one image of the data set (`[C, H, W]`); synthetic data takes the model's.
    public var imageShape: [Int]? {
        switch self {
        case .cifar10: return [3, 32, 32]
        case .mnist, .fashionMNIST: return [1, 28, 28]
        case .synthetic: return nil
        }
    }

    /// The name of each class, by label (CIFAR-10's batches.meta.txt, Fashion-MNIST's paper).
    public func className(_ label: Int) -> String {
        switch self {
        case .cifar10:
            let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            return names.indices.contains(label) ? names[label] : "class \(label)"
        case .fashionMNIST:
            let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
            return names.indices.contains(label) ? names[label] : "class \(label)"
        case .mnist: return "\(label)"
        case .synthetic: return "class \(label)"
        }
    }
}

/// Where a dataset's files are looked for, in order:
/// `--data-dir DIR`, `$COHORT_DATA/NAME`, `./data/NAME`, `/usr/share/datasets/NAME`
/// (where Debian's `dataset-fashion-mnist` installs its files).
public enum DatasetSource {
    public static func searchPath(for kind: DatasetKind, environment: [String: String]) -> [String] {
        var places: [String] = []
        if let root = environment["COHORT_DATA"], !root.isEmpty { places.append("\(root)/\(kind.rawValue)") }
        places.append("./data/\(kind.rawValue)")
        places.append("/usr/share/datasets/\(kind.rawValue)")
        return places
    }

    /// The directory to read `kind` from: `dataDirectory` if given (it must exist),
    /// else the first existing place on the search path.
    public static func directory(for kind: DatasetKind, dataDirectory: String?,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        var isDirectory: ObjCBool = false
        if let dir = dataDirectory {
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CohortError.failure("--data-dir \(dir): no such directory")
            }
            return dir
        }
        let places = searchPath(for: kind, environment: environment)
        for place in places where FileManager.default.fileExists(atPath: place, isDirectory: &isDirectory)
            && isDirectory.boolValue {
            return place
        }
        throw CohortError.failure("\(kind.rawValue): no data found; looked in \(places.joined(separator: ", ")). "
                        + "Pass --data-dir DIR or set COHORT_DATA.")
    }

    /// Reads both splits of `kind`. `synthetic` is generated from `seed` in the shape
    /// `syntheticShape` with `syntheticCounts` (train, test) samples.
    public static func load(_ kind: DatasetKind, dataDirectory: String?, seed: UInt64,
                            syntheticShape: Shape = [3, 32, 32],
                            syntheticCounts: (train: Int, test: Int) = (10_000, 2_000)) throws -> DatasetSplits {
        switch kind {
        case .synthetic:
            return Synthetic.splits(shape: syntheticShape, trainCount: syntheticCounts.train,
                                    testCount: syntheticCounts.test, seed: seed)
        case .cifar10:
            return try CIFAR10.loadSplits(directory: directory(for: kind, dataDirectory: dataDirectory))
        case .mnist, .fashionMNIST:
            return try IDX.loadSplits(directory: directory(for: kind, dataDirectory: dataDirectory), name: kind.rawValue)
        }
    }
}
