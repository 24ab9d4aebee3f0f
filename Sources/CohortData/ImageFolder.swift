import CohortBase
import CohortTensor
import Dispatch
import Foundation

/// A data set as a folder of image files (`--dataset folder`), torchvision's `ImageFolder`
/// layout: `DIR/train/CLASS/...` and `DIR/test/CLASS/...` (or `--val-split` without `test/`).
///
/// As torchvision numbers them: the classes are the sorted names of `train/`'s folders (by code
/// point), labelled 0, 1, ...; each class's files are found by walking its folder, symbolic
/// links followed, directories in sorted order and files sorted within each; files are listed
/// class by class. Files ending (in any case) in `.jpg`, `.jpeg` or `.png` are read; other image
/// extensions torchvision knows (`.bmp`, `.tif`, ...) are refused as unsupported; anything else
/// is ignored. Every file is decoded once when the set is opened, so a bad file is found before
/// training; the loader decodes them again as it reads each batch (`EncodedImageSamples`).
public enum ImageFolder {
    static let readable = [".jpg", ".jpeg", ".png"]
    static let unsupported = [".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    public static func load(_ directory: String, options: DataOptions) throws -> DatasetSplits {
        let trainDirectory = "\(directory)/train", testDirectory = "\(directory)/test"
        guard isDirectory(trainDirectory) else {
            throw CohortError.failure("\(directory): no train/ folder (expected DIR/train/CLASS/IMAGE and DIR/test/CLASS/IMAGE)")
        }
        let classes = try classFolders(trainDirectory)
        var skipped: [String] = []
        let trainFiles = try files(in: trainDirectory, classes: classes, options: options, skipped: &skipped)
        var testFiles: [(path: String, label: Int, image: ImageInfo)]?
        if isDirectory(testDirectory) {
            let testClasses = try classFolders(testDirectory, emptyAllowed: true)
            if let extra = testClasses.first(where: { !classes.contains($0) }) {
                throw CohortError.failure("\(testDirectory)/\(extra): a class that \(trainDirectory) does not have")
            }
            testFiles = try files(in: testDirectory, classes: classes, only: Set(testClasses), options: options, skipped: &skipped)
        }
        let all = trainFiles + (testFiles ?? [])
        let transform = try target(of: all.map(\.image), options: options, directory: directory)
        func dataset(_ files: [(path: String, label: Int, image: ImageInfo)]) -> ImageDataset {
            ImageDataset(name: URL(fileURLWithPath: directory).lastPathComponent,
                         shape: [transform.channels, transform.height, transform.width],
                         samples: EncodedImageSamples(paths: files.map(\.path), transform: transform),
                         labels: files.map { Int32($0.label) }, classes: classes.count, classNames: classes,
                         normalization: .identity)
        }
        var splits = try testFiles.map { DatasetSplits(train: dataset(trainFiles), test: dataset($0)) }
            ?? options.heldOut(dataset(trainFiles), source: directory)
        guard splits.test.count > 0 else { throw CohortError.failure("\(testDirectory): no images") }
        splits.skippedFiles = skipped
        return try options.normalized(splits, source: directory)
    }

    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// The folders of `split` in code-point order, as Python's `sorted` gives them.
    static func classFolders(_ split: String, emptyAllowed: Bool = false) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: split) else {
            throw CohortError.failure("\(split): cannot list the folder")
        }
        let folders = sortedByCodePoint(names.filter { isDirectory("\(split)/\($0)") })
        guard !folders.isEmpty || emptyAllowed else { throw CohortError.failure("\(split): no class folders") }
        return folders
    }

    static func sortedByCodePoint(_ names: [String]) -> [String] {
        names.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) { $0.value < $1.value } }
    }

    /// What the first decoding of a file found.
    struct ImageInfo: Sendable { let width: Int, height: Int, channels: Int }

    /// Every image of `classes` (those in `only`, if given) under `split`, labelled by class,
    /// each decoded once (in parallel) to check it.
    static func files(in split: String, classes: [String], only: Set<String>? = nil, options: DataOptions,
                      skipped: inout [String]) throws -> [(path: String, label: Int, image: ImageInfo)] {
        var listed: [(path: String, label: Int)] = []
        for (label, name) in classes.enumerated() where only?.contains(name) ?? true {
            let folder = "\(split)/\(name)"
            var roots: [(root: String, files: [String])] = []
            try walk(folder, visited: [], into: &roots)
            let order = sortedByCodePoint(roots.map(\.root))
            let byRoot = Dictionary(roots.map { ($0.root, $0.files) }, uniquingKeysWith: { $0 + $1 })
            let found = order.flatMap { byRoot[$0]! }
            var kept: [String] = []
            for path in found {
                let lower = path.lowercased()
                if readable.contains(where: lower.hasSuffix) {
                    kept.append(path)
                } else if let ext = unsupported.first(where: lower.hasSuffix) {
                    let reason = "\(path): a \(ext) image; Cohort reads JPEG and PNG"
                    guard options.skipBadFiles else { throw CohortError.failure(reason + " (--skip-bad-files leaves such files out)") }
                    skipped.append(reason)
                }
            }
            guard !kept.isEmpty else { throw CohortError.failure("\(folder): no JPEG or PNG images in this class folder") }
            listed += kept.map { ($0, label) }
        }
        // Decode each file once: its size and colour, or why it cannot be read.
        let paths = listed.map(\.path), parts = ProcessInfo.processInfo.activeProcessorCount
        // Each slot is written by one thread only.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<Result<ImageInfo, CohortError>>.allocate(capacity: paths.count)
        defer { _ = results.deinitialize(); results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for i in stride(from: part, to: paths.count, by: parts) {
                do {
                    let image = try ImageFile.read(paths[i])
                    (results.baseAddress! + i).initialize(to: .success(ImageInfo(width: image.width, height: image.height,
                                                                                  channels: image.channels)))
                } catch let error as CohortError {
                    (results.baseAddress! + i).initialize(to: .failure(error))
                } catch {
                    (results.baseAddress! + i).initialize(to: .failure(.failure("\(paths[i]): \(error)")))
                }
            }
        }
        var out: [(path: String, label: Int, image: ImageInfo)] = []
        for (i, file) in listed.enumerated() {
            switch results[i] {
            case .success(let info): out.append((file.path, file.label, info))
            case .failure(let error):
                guard options.skipBadFiles else {
                    throw CohortError.failure(error.description + " (--skip-bad-files leaves unreadable images out)")
                }
                skipped.append(error.description)
            }
        }
        let present = Set(out.map(\.label))
        if let empty = classes.enumerated().first(where: { (only?.contains($0.element) ?? true) && !present.contains($0.offset) }) {
            throw CohortError.failure("\(split)/\(empty.element): no readable images in this class folder")
        }
        return out
    }

    /// Each folder under `folder` with its files (sorted), as `os.walk(folder, followlinks=True)`
    /// gives them; sorted by folder path they are torchvision's order. A symbolic link back to
    /// a folder on the current path is a loop, refused.
    static func walk(_ folder: String, visited: [UInt64], into roots: inout [(root: String, files: [String])]) throws {
        var info = stat()
        guard stat(folder, &info) == 0 else { throw CohortError.failure("\(folder): cannot read (\(String(cString: strerror(errno))))") }
        let identity = UInt64(info.st_dev) << 40 ^ UInt64(info.st_ino)
        guard !visited.contains(identity) else {
            throw CohortError.failure("\(folder): a symbolic link loop (the folder contains itself)")
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw CohortError.failure("\(folder): cannot list the folder")
        }
        var subfolders: [String] = [], found: [String] = []
        for name in sortedByCodePoint(names) {
            let path = "\(folder)/\(name)"
            var entry = stat()
            guard stat(path, &entry) == 0 else {
                // A dangling symbolic link or one that loops on itself.
                throw CohortError.failure("\(path): cannot read (\(String(cString: strerror(errno))))")
            }
            if (entry.st_mode & S_IFMT) == S_IFDIR { subfolders.append(path) } else { found.append(path) }
        }
        roots.append((folder, found))
        for subfolder in subfolders { try walk(subfolder, visited: visited + [identity], into: &roots) }
    }

    /// The sample shape every image is brought to: grey if all are grey, else colour; the
    /// size `--image-size` gives, or the one size all images have.
    static func target(of images: [ImageInfo], options: DataOptions, directory: String) throws -> ImageTransform {
        let channels = images.contains { $0.channels == 3 } ? 3 : 1
        if let size = options.imageSize { return ImageTransform(channels: channels, height: size[0], width: size[1]) }
        let sizes = Set(images.map { "\($0.height)x\($0.width)" })
        guard sizes.count == 1, let first = images.first else {
            throw CohortError.settings("\(directory): images of \(sizes.count) sizes (\(sizes.sorted().prefix(3).joined(separator: ", "))"
                                       + "\(sizes.count > 3 ? ", ..." : "")); pass --image-size HxW to bring them to one")
        }
        return ImageTransform(channels: channels, height: first.height, width: first.width)
    }
}

/// Image files decoded on demand: sample `i` is file `paths[i]` through `transform`.
public final class EncodedImageSamples: SampleStore, @unchecked Sendable {
    public let paths: [String]
    public let transform: ImageTransform
    public var count: Int { paths.count }
    public var sampleSize: Int { transform.channels * transform.height * transform.width }
    public var element: SampleElement { .uint8 }
    public var isDecoded: Bool { false }

    public init(paths: [String], transform: ImageTransform) { self.paths = paths; self.transform = transform }

    public func sample(_ index: Int, scratch: UnsafeMutableRawPointer) throws -> UnsafeRawPointer {
        let image = try ImageFile.read(paths[index])
        transform.apply(image, into: scratch.assumingMemoryBound(to: UInt8.self))
        return UnsafeRawPointer(scratch)
    }
}
