import CohortBase
import CohortTensor
import Foundation

/// The data sets Cohort reads, by their command-line names: what each is, in one place.
/// The built-in sets have a fixed shape, classes and folder name; the user's own (`folder`,
/// `arrays`, `pack`) take theirs from the files `--data-dir` names.
public enum DatasetKind: String, CaseIterable, Codable, Sendable {
    case cifar10, mnist, fashionMNIST = "fashion-mnist", synthetic, folder, arrays, pack, text

    /// The user's own data, read from `--data-dir`.
    public var isUserData: Bool { self == .folder || self == .arrays || self == .pack }

    /// The shape of one sample (`[C, H, W]`) where the kind fixes it; synthetic data takes the
    /// model's, the user's own data its files'.
    public var imageShape: [Int]? {
        switch self {
        case .cifar10: return [3, 32, 32]
        case .mnist, .fashionMNIST: return [1, 28, 28]
        case .synthetic, .folder, .arrays, .pack, .text: return nil
        }
    }

    /// The number of classes where the kind fixes it (a text's are its byte values).
    public var classes: Int? { isUserData || self == .text ? nil : 10 }

    /// The names of the classes of a built-in set, by label (CIFAR-10's batches.meta.txt,
    /// Fashion-MNIST's paper); the user's own sets name theirs.
    public var classNames: [String]? {
        switch self {
        case .cifar10: return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        case .fashionMNIST:
            return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        case .mnist: return (0..<10).map(String.init)
        case .synthetic: return (0..<10).map { "class \($0)" }
        case .folder, .arrays, .pack, .text: return nil
        }
    }

    /// The folder name a built-in set is looked for under (`data/NAME`); nil for the user's own.
    public var folderName: String? { isUserData || self == .synthetic || self == .text ? nil : rawValue }
}

/// Where a dataset's files are looked for, in order:
/// `--data-dir DIR`, `$COHORT_DATA/NAME`, `./data/NAME`, `/usr/share/datasets/NAME`
/// (where Debian's `dataset-fashion-mnist` installs its files).
public enum DatasetSource {
    public static func searchPath(for kind: DatasetKind, environment: [String: String]) -> [String] {
        guard let name = kind.folderName else { return [] }
        var places: [String] = []
        if let root = environment["COHORT_DATA"], !root.isEmpty { places.append("\(root)/\(name)") }
        places.append("./data/\(name)")
        places.append("/usr/share/datasets/\(name)")
        return places
    }

    /// The directory to read `kind` from: `dataDirectory` if given (it must exist),
    /// else the first existing place on the search path.
    public static func directory(for kind: DatasetKind, dataDirectory: String?,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        var isDirectory: ObjCBool = false
        if let dir = dataDirectory {
            // Arrays may also be one .npz file.
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory),
                  isDirectory.boolValue || kind == .arrays else {
                throw CohortError.failure("--data-dir \(dir): no such directory")
            }
            return dir
        }
        guard !kind.isUserData else {
            throw CohortError.settings("--dataset \(kind.rawValue) reads the files of --data-dir DIR (docs/training.md#your-own-data)")
        }
        let places = searchPath(for: kind, environment: environment)
        for place in places where FileManager.default.fileExists(atPath: place, isDirectory: &isDirectory)
            && isDirectory.boolValue {
            return place
        }
        throw CohortError.failure("\(kind.rawValue): no data found; looked in \(places.joined(separator: ", ")). "
                        + "Pass --data-dir DIR or set COHORT_DATA.")
    }

    /// The user's own data at `path`. What is wrong with its files is an error of the input, as a
    /// bad flag is (exit 64): every rank finds it before training, and a restart would find it again.
    public static func loadUserData(_ kind: DatasetKind, path: String, options: DataOptions) throws -> DatasetSplits {
        do {
            switch kind {
            case .folder: return try ImageFolder.load(path, options: options)
            case .arrays: return try ArrayDataset.load(path, options: options)
            default: return try Pack.load(path, normalize: options.normalize)
            }
        } catch let error as CohortError where error.kind == .failure {
            throw CohortError.settings(error.description)
        }
    }

    /// Reads both splits of `kind`. `synthetic` is generated from `seed` in the shape
    /// `syntheticShape` with `syntheticCounts` (train, test) samples; the user's own data is
    /// read as `options` say (a built-in set takes only their `normalize`).
    public static func load(_ kind: DatasetKind, dataDirectory: String?, seed: UInt64,
                            syntheticShape: Shape = [3, 32, 32],
                            syntheticCounts: (train: Int, test: Int) = Synthetic.defaultCounts,
                            options: DataOptions = DataOptions()) throws -> DatasetSplits {
        var splits: DatasetSplits
        switch kind {
        case .synthetic:
            splits = Synthetic.splits(shape: syntheticShape, trainCount: syntheticCounts.train,
                                      testCount: syntheticCounts.test, seed: seed)
        case .cifar10:
            splits = try CIFAR10.loadSplits(directory: directory(for: kind, dataDirectory: dataDirectory))
        case .mnist, .fashionMNIST:
            splits = try IDX.loadSplits(directory: directory(for: kind, dataDirectory: dataDirectory), name: kind.rawValue)
        case .folder, .arrays, .pack:
            return try loadUserData(kind, path: directory(for: kind, dataDirectory: dataDirectory), options: options)
        case .text:
            guard let file = dataDirectory else {
                throw CohortError.settings("--dataset text reads the bytes of --data-file FILE")
            }
            return try TextCorpus(path: file, blockSize: options.blockSize)
                .splits(name: (file as NSString).lastPathComponent, blockSize: options.blockSize,
                        validationWindows: options.evalWindows)
        }
        if let given = options.normalize { try given.check(channels: splits.train.channels, source: kind.rawValue) }
        splits.train = splits.train.with(classNames: kind.classNames, normalization: options.normalize)
        splits.test = splits.test.with(classNames: kind.classNames, normalization: options.normalize)
        return splits
    }
}
